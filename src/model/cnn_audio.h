// A small convolutional audio tower that trains fast on a CPU, with the HTS-AT tower's interface:
// input_features [B, C, T, 64] log-mel (dB) -> pooled [B, hidden].
//
//   BatchNorm over the mel bins (as HTS-AT) -> `channels.size()` blocks of [Conv3x3 stride 2 (+ Conv3x3 stride 1
//   when convs_per_block = 2), BatchNorm, ReLU] -> mean over frequency -> `temporal_layers` residual dilated
//   convolutions over time (optional) -> max + mean over time (PANNs-style) -> dropout -> Linear to
//   `hidden_size` (only when it differs from the last block's width).
// With the default widths a frame of the last map hears 1.87 s (187 input frames of 10 ms); a bar at 120 BPM is
// 2 s. Three temporal layers (kernel 3, dilations 1, 2, 4 over that map's frames, 0.32 s apart) widen it to 6.35 s,
// several bars, where grooves, bass lines and chord changes live. Cost of a 10 s clip: about 150 MFLOP with one
// convolution per block, 526 with two (configs/cnn-cpu.json), and 38 more for three temporal layers; receptive
// fields and costs of any config: `python3 bench/quality/cnn_cost.py CONFIG` (HTS-AT tiny: ~12 GFLOP). Any number
// of frames works;
// only the first `in_channels` input channels are used (channel 0 = the whole clip in fused inputs).
// Internal header (LibTorch types).
#pragma once
#include <torch/torch.h>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <vector>

#include "model/htsat.h"  // HtsatOutput

namespace synclap {

struct CnnAudioConfig {
  int64_t num_mel_bins = 64;
  int64_t in_channels = 1;
  std::vector<int64_t> channels{16, 32, 64, 128, 256};
  int64_t convs_per_block = 1;  // 1 or 2
  int64_t hidden_size = 256;
  double dropout = 0.1;
  int64_t temporal_layers = 0;  // residual dilated Conv1d + BatchNorm + ReLU layers over time (0: none)

  // Keys as written by to_json (missing keys keep the defaults). Throws Error on bad values.
  static CnnAudioConfig from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;  // {"model_type": "cnn_audio", ...}
  void validate() const;
};

class CnnAudioBlockImpl : public torch::nn::Module {
 public:
  CnnAudioBlockImpl(int64_t in, int64_t out, int64_t convs);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr};
};
TORCH_MODULE(CnnAudioBlock);

// x + ReLU(BatchNorm(Conv1d(x, kernel 3, dilation d))) over [B, C, T]; the BatchNorm's scale starts at 0, so
// each layer starts as the identity.
class CnnTemporalLayerImpl : public torch::nn::Module {
 public:
  CnnTemporalLayerImpl(int64_t channels, int64_t dilation);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv1d conv{nullptr};
  torch::nn::BatchNorm1d bn{nullptr};
};
TORCH_MODULE(CnnTemporalLayer);

class CnnAudioEncoderImpl : public torch::nn::Module {
 public:
  explicit CnnAudioEncoderImpl(const CnnAudioConfig& config);
  // Output fields as HtsatOutput: pooler_output [B, hidden]; last_hidden_state = last feature map
  // [B, C_last, F', T']; with keep_intermediates: batch_norm_out, hidden_states (one map per block).
  // is_longer is accepted for interface compatibility and ignored.
  HtsatOutput forward(const torch::Tensor& input_features, const torch::Tensor& is_longer = {},
                      bool keep_intermediates = false);
  // Kaiming-normal convolutions, N(0, 0.02) linear, unit BatchNorm (zero scale in the temporal layers);
  // everything from `seed`.
  void init_weights(uint64_t seed);
  const CnnAudioConfig& config() const { return c_; }

  torch::nn::BatchNorm2d batch_norm{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::ModuleList temporal{nullptr};  // null when temporal_layers == 0
  torch::nn::Linear fc{nullptr};  // null when hidden_size == channels.back()

 private:
  CnnAudioConfig c_;
};
TORCH_MODULE(CnnAudioEncoder);

}  // namespace synclap
