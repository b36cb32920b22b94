#include "model/htsat_tower.h"

#include "synclap/error.h"

namespace synclap {

HtsatAudioTower::HtsatAudioTower(const ClapConfig& config) : hidden_size_(config.audio_hidden_size) {
  audio_encoder = register_module("audio_encoder", HtsatAudioEncoder(HtsatConfig::from_hf_audio_config(config.audio_json)));
}

HtsatOutput HtsatAudioTower::forward_full(const torch::Tensor& input_features, const torch::Tensor& is_longer) {
  return audio_encoder->forward(input_features, is_longer, /*keep_intermediates=*/true);
}

AudioOutput HtsatAudioTower::encode(const torch::Tensor& input_features, const torch::Tensor& is_longer) {
  HtsatOutput o = audio_encoder->forward(input_features, is_longer);
  return AudioOutput{o.pooler_output, o.last_hidden_state};
}

void HtsatAudioTower::init_weights(uint64_t seed) { audio_encoder->init_weights(seed); }

}  // namespace synclap
