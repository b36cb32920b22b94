// synclap: what every audio tower gives the CLAP model, and the HTS-AT tower in HF's module layout
// (`audio_model.audio_encoder.*`).
#pragma once
#include <torch/torch.h>

#include <memory>

#include "model/clap_config.h"

namespace synclap {

struct AudioOutput {
  torch::Tensor pooler_output;      // [B, audio_hidden]: the projection head's input
  torch::Tensor last_hidden_state;  // tower-specific layout
};

// An audio encoder registered in ClapModel under the name "audio_model".
class AudioTower : public torch::nn::Module {
 public:
  // input_features: [B, C, frames, mel_bins] float; is_longer: [B] bool (fusion models; may be undefined).
  virtual AudioOutput encode(const torch::Tensor& input_features, const torch::Tensor& is_longer) = 0;
  virtual int64_t hidden_size() const = 0;
  // Re-initialises every weight from `seed` (for training from scratch).
  virtual void init_weights(uint64_t seed) = 0;
};

// The tower that config.audio_model_type names ("clap_audio_model" = HTS-AT). Throws Error for unknown types.
std::shared_ptr<AudioTower> make_audio_tower(const ClapConfig& config);

}  // namespace synclap
