#include "model/cnn_tower.h"

namespace synclap {

CnnAudioTower::CnnAudioTower(const ClapConfig& config) {
  const CnnAudioConfig c = CnnAudioConfig::from_json(config.audio_json);
  hidden_size_ = c.hidden_size;
  audio_encoder = register_module("audio_encoder", CnnAudioEncoder(c));
}

AudioOutput CnnAudioTower::encode(const torch::Tensor& input_features, const torch::Tensor& is_longer) {
  HtsatOutput o = audio_encoder->forward(input_features, is_longer);
  return AudioOutput{o.pooler_output, o.last_hidden_state};
}

void CnnAudioTower::init_weights(uint64_t seed) { audio_encoder->init_weights(seed); }

}  // namespace synclap
