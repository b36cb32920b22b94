// HTS-AT audio tower (hierarchical token-semantic audio transformer: a Swin transformer over the log-mel folded
// into a 256x256 image), exactly as HF transformers v4.43.4 `ClapAudioEncoder`, with the optional attentional
// feature fusion (AFF, "aff_2d") of the fused LAION-CLAP checkpoints.
//
// Parameter and buffer names equal HF's names below `audio_model.audio_encoder.`, e.g.
//   patch_embed.proj.weight, patch_embed.norm.bias, patch_embed.mel_conv2d.weight,
//   patch_embed.fusion_model.local_att.0.weight, layers.0.blocks.1.attention.self.relative_position_bias_table,
//   layers.0.downsample.reduction.weight, batch_norm.running_mean, norm.weight
// so a checkpoint maps by name (named_parameters() / named_buffers()).
//
// Forward pass (input [B, C, 1001, 64] log-mel in dB, C = 1 unfused, 4 fused):
//   BatchNorm over the 64 mel bins -> bicubic resize of the time axis to 1024 (align_corners) -> fold into
//   [B, C, 256, 256] (img[c, 64k+f, t] = resized[c, 256k+t, f]) -> patch embedding (4x4/4 conv, LayerNorm; fused:
//   the is_longer rows fuse channels 1..3 through the 4x12/4x12 `mel_conv2d` and the AFF block) -> 4 Swin stages
//   (window 8, shifted windows in odd blocks, patch merging between stages) -> LayerNorm -> mean over the final
//   8x8 token grid = pooler_output [B, hidden].
// Internal header (LibTorch types).
#pragma once
#include <torch/torch.h>

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "model/aff.h"
#include "model/swin.h"

namespace synclap {

struct HtsatConfig {
  int64_t num_mel_bins = 64;
  int64_t spec_size = 256;
  int64_t patch_size = 4;
  int64_t patch_stride_h = 4, patch_stride_w = 4;
  int64_t patch_embed_input_channels = 1;
  int64_t patch_embeds_hidden_size = 96;  // width of stage 0; stage i has width * 2^i
  std::vector<int64_t> depths{2, 2, 6, 2};
  std::vector<int64_t> num_attention_heads{4, 8, 16, 32};
  int64_t window_size = 8;
  double mlp_ratio = 4.0;
  bool qkv_bias = true;
  std::string hidden_act = "gelu";
  double layer_norm_eps = 1e-5;           // LayerNorms inside the Swin blocks (the others use 1e-5 fixed, as HF)
  int64_t hidden_size = 768;              // must equal patch_embeds_hidden_size * 2^(stages-1)
  bool enable_fusion = false;
  std::string fusion_type;                // "" (HF: None) or "aff_2d"; "channel_map" is not supported
  int64_t aff_block_r = 4;
  bool enable_patch_layer_norm = true;
  bool flatten_patch_embeds = true;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.0;
  double drop_path_rate = 0.0;

  // Reads HF's `audio_config` object (missing keys take HF ClapAudioConfig defaults). Throws Error on
  // values this implementation cannot run.
  static HtsatConfig from_hf_audio_config(const nlohmann::json& audio_config);
  // The HF-style keys this config uses (enough for from_hf_audio_config to read it back).
  nlohmann::json to_hf_audio_config() const;
  // Reference geometries: tiny (96, [2,2,6,2]), base (128, [2,2,12,2]).
  static HtsatConfig tiny(bool fusion = false);
  static HtsatConfig base(bool fusion = false);

  int64_t num_stages() const { return static_cast<int64_t>(depths.size()); }
  int64_t num_features() const { return patch_embeds_hidden_size << (num_stages() - 1); }
  int64_t freq_ratio() const { return spec_size / num_mel_bins; }
  void validate() const;  // throws Error
};

struct HtsatOutput {
  torch::Tensor pooler_output;      // [B, hidden]
  torch::Tensor last_hidden_state;  // [B, hidden, 2, 32] (HF's "group 2D" layout after the final LayerNorm)
  // Only with keep_intermediates: HF's reshaped hidden_states: [0] = patch embedding [B, D, 64, 64],
  // [i] = output of stage i-1 (after its patch merging) [B, C_i, H_i, W_i]; and the three tensors below.
  std::vector<torch::Tensor> hidden_states;
  torch::Tensor batch_norm_out;     // [B, C, T, 64] input after the mel-bin BatchNorm
  torch::Tensor mel2img;            // [B, C, 256, 256] patch-embedding input
  torch::Tensor patch_embed_out;    // [B, 4096, D] patch embedding (after fusion and LayerNorm)
};

// ClapAudioPatchEmbed: proj (+ norm) and, with fusion, fusion_model (AFF) + mel_conv2d.
class HtsatPatchEmbedImpl : public torch::nn::Module {
 public:
  explicit HtsatPatchEmbedImpl(const HtsatConfig& c);
  // img: [B, C, 256, 256]; longer_idx: int64 indices of the rows to fuse (fusion only; may be empty).
  torch::Tensor forward(const torch::Tensor& img, const torch::Tensor& longer_idx);

  torch::nn::Conv2d proj{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  AffBlock fusion_model{nullptr};
  torch::nn::Conv2d mel_conv2d{nullptr};
  int64_t grid_h() const { return grid_h_; }
  int64_t grid_w() const { return grid_w_; }

 private:
  HtsatConfig c_;
  int64_t grid_h_, grid_w_;
};
TORCH_MODULE(HtsatPatchEmbed);

class HtsatAudioEncoderImpl : public torch::nn::Module {
 public:
  explicit HtsatAudioEncoderImpl(const HtsatConfig& config);
  // input_features: [B, C, T<=1024, 64] float; is_longer: B elements (bool or integer, any shape; only read
  // with fusion; may be undefined, meaning all false).
  HtsatOutput forward(const torch::Tensor& input_features, const torch::Tensor& is_longer,
                      bool keep_intermediates = false);

  // Re-initialises every parameter from `seed` (Swin-style: truncated normal 0.02 for Linear/Conv and the
  // relative position tables, zero biases, unit LayerNorm/BatchNorm), for training from scratch.
  void init_weights(uint64_t seed);

  const HtsatConfig& config() const { return c_; }

  HtsatPatchEmbed patch_embed{nullptr};
  torch::nn::ModuleList layers{nullptr};
  torch::nn::BatchNorm2d batch_norm{nullptr};
  torch::nn::LayerNorm norm{nullptr};

  // Pieces of forward(), exposed for tests and tools.
  torch::Tensor normalize_mel(const torch::Tensor& input_features);  // BatchNorm over mel bins, input layout
  torch::Tensor reshape_mel2img(const torch::Tensor& normalized);      // -> [B, C, 256, 256]

 private:
  HtsatConfig c_;
};
TORCH_MODULE(HtsatAudioEncoder);

}  // namespace synclap
