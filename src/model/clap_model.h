// synclap: the CLAP model (HF ClapModel): an audio tower and a text tower, each followed by a projection
// head into the joint space, L2 normalisation, and two learned temperatures (logit_scale_a for
// logits_per_audio, logit_scale_t for logits_per_text). The module tree mirrors HF's names, so
// named_parameters() + named_buffers() map one-to-one onto HF state-dict keys:
//   logit_scale_a, logit_scale_t, text_model.*, text_projection.linear{1,2}.*, audio_model.audio_encoder.*,
//   audio_projection.linear{1,2}.*
// Internal header (LibTorch types); the public API is synclap/model.h.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/audio_tower.h"
#include "model/clap_config.h"
#include "model/projection.h"
#include "model/text_tower.h"

namespace synclap {

// The text tower that config.text.model_type names.
std::shared_ptr<TextTower> make_text_tower(const TextConfig& config);

struct ClapOutput {
  torch::Tensor audio_pooler, text_pooler;      // tower outputs (projection inputs)
  torch::Tensor audio_projected, text_projected;  // projections before normalisation
  torch::Tensor audio_embeds, text_embeds;      // L2-normalised
  torch::Tensor logits_per_audio;               // [Ba, Bt] = audio @ text^T * exp(logit_scale_a)
  torch::Tensor logits_per_text;                // [Bt, Ba] = text @ audio^T * exp(logit_scale_t)
};

class ClapModelImpl : public torch::nn::Module {
 public:
  explicit ClapModelImpl(const ClapConfig& config);

  const ClapConfig& config() const { return config_; }

  // Both towers and the logits. input_ids/attention_mask [Bt, L]; input_features [Ba, C, T, F];
  // is_longer [Ba] or [Ba, 1] (bool or integer; may be undefined for unfused models).
  ClapOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                     const torch::Tensor& input_features, const torch::Tensor& is_longer);

  // L2-normalised embeddings of one side (HF get_audio_features / get_text_features + normalisation).
  torch::Tensor audio_embeddings(const torch::Tensor& input_features, const torch::Tensor& is_longer);
  torch::Tensor text_embeddings(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);

  // Scaled similarities of normalised embeddings.
  torch::Tensor logits_per_audio(const torch::Tensor& audio_embeds, const torch::Tensor& text_embeds) const;
  torch::Tensor logits_per_text(const torch::Tensor& text_embeds, const torch::Tensor& audio_embeds) const;

  // Every parameter and buffer, by HF name, in registration order (HF's state-dict order).
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  int64_t num_parameters() const;
  int64_t embedding_dim() const { return config_.projection_dim; }

  // Re-initialises towers, heads and temperatures from `seed` for training from scratch
  // (logit scales = ln(logit_scale_init_value)).
  void init_weights(uint64_t seed);

  torch::Tensor logit_scale_a, logit_scale_t;
  std::shared_ptr<TextTower> text_model;
  ProjectionHead text_projection{nullptr};
  std::shared_ptr<AudioTower> audio_model;
  ProjectionHead audio_projection{nullptr};

 private:
  ClapConfig config_;
};
TORCH_MODULE(ClapModel);

// Rows of `x` divided by max(||row||, 1e-12) (torch.nn.functional.normalize(dim=-1)).
torch::Tensor l2_normalize(const torch::Tensor& x);

}  // namespace synclap
