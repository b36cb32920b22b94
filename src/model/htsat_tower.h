// synclap: HF's ClapAudioModel: a holder whose only child is the HTS-AT encoder, named "audio_encoder",
// so that parameter names are audio_model.audio_encoder.* as in HF checkpoints.
#pragma once
#include "model/audio_tower.h"
#include "model/htsat.h"

namespace synclap {

class HtsatAudioTower : public AudioTower {
 public:
  explicit HtsatAudioTower(const ClapConfig& config);
  AudioOutput encode(const torch::Tensor& input_features, const torch::Tensor& is_longer) override;
  int64_t hidden_size() const override { return hidden_size_; }
  void init_weights(uint64_t seed) override;
  // Every intermediate (for parity tests).
  HtsatOutput forward_full(const torch::Tensor& input_features, const torch::Tensor& is_longer);

  HtsatAudioEncoder audio_encoder{nullptr};

 private:
  int64_t hidden_size_;
};

}  // namespace synclap
