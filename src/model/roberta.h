// synclap: the RoBERTa text tower exactly as HuggingFace's ClapTextModel: embeddings (word + token type 0 +
// padding-aware positions, LayerNorm), post-LN encoder layers, pooler = tanh(dense(h[:, 0])).
// Parameter and buffer names are HF's (embeddings.word_embeddings.weight,
// encoder.layer.0.attention.self.query.weight, pooler.dense.weight, ...), so checkpoints load by name.
#pragma once
#include <torch/torch.h>

#include "model/clap_config.h"
#include "model/text_tower.h"

namespace synclap {

// RoBERTa position ids: padding tokens get pad_id, real tokens pad_id+1, pad_id+2, ... in order
// (HF create_position_ids_from_input_ids). input_ids [B, L] -> [B, L] int64.
torch::Tensor roberta_position_ids(const torch::Tensor& input_ids, int64_t pad_id);

// attention_mask [B, L] (1 = attend) -> additive mask [B, 1, 1, L]: 0 or the lowest finite value of `dtype`.
torch::Tensor additive_attention_mask(const torch::Tensor& attention_mask, torch::ScalarType dtype);

class RobertaLayerImpl : public torch::nn::Module {
 public:
  explicit RobertaLayerImpl(const TextConfig& c);
  // x [B, L, H]; mask: additive [B, 1, 1, L] (or undefined).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask);

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr}, attn_out{nullptr};
  torch::nn::LayerNorm attn_norm{nullptr};
  torch::nn::Linear intermediate{nullptr}, output{nullptr};
  torch::nn::LayerNorm output_norm{nullptr};

 private:
  int64_t heads_, head_dim_;
  std::string act_;
  double hidden_dropout_, attn_dropout_;
};
TORCH_MODULE(RobertaLayer);

class RobertaTextModel : public TextTower {
 public:
  explicit RobertaTextModel(const TextConfig& c);

  TextOutput encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                    bool output_hidden_states = false) override;
  int64_t hidden_size() const override { return config_.hidden_size; }
  void init_weights(uint64_t seed) override;
  const TextConfig& config() const { return config_; }

  // Embeddings output (after LayerNorm and dropout).
  torch::Tensor embed(const torch::Tensor& input_ids);

  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm embeddings_norm{nullptr};
  torch::nn::ModuleList layers{nullptr};
  torch::nn::Linear pooler{nullptr};
  torch::Tensor position_ids_buffer, token_type_ids_buffer;  // HF's persistent buffers [1, max_positions]

 private:
  TextConfig config_;
};

}  // namespace synclap
