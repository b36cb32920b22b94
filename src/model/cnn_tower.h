// synclap: the small CNN audio tower (model/cnn_audio.h) as a CLAP audio tower: a holder whose child is
// named "audio_encoder" (parameter names audio_model.audio_encoder.*, as for HTS-AT).
// Selected by audio_config.model_type "cnn_audio".
#pragma once
#include "model/audio_tower.h"
#include "model/cnn_audio.h"

namespace synclap {

class CnnAudioTower : public AudioTower {
 public:
  explicit CnnAudioTower(const ClapConfig& config);
  AudioOutput encode(const torch::Tensor& input_features, const torch::Tensor& is_longer) override;
  int64_t hidden_size() const override { return hidden_size_; }
  void init_weights(uint64_t seed) override;

  CnnAudioEncoder audio_encoder{nullptr};

 private:
  int64_t hidden_size_;
};

}  // namespace synclap
