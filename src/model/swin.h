// Swin-transformer building blocks of the HTS-AT audio tower (window attention with a relative position bias,
// shifted windows, patch merging). Module and parameter names follow HF transformers' ClapAudio* classes so that
// a state dict maps one-to-one:
//   SwinBlock    = ClapAudioLayer        (layernorm_before, attention.self.{query,key,value,relative_position_*},
//                                          attention.output.dense, layernorm_after, intermediate.dense, output.dense)
//   SwinStage    = ClapAudioStage        (blocks.N, downsample)
//   PatchMerging = ClapAudioPatchMerging (reduction, norm)
// Internal header (LibTorch types).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>

namespace synclap {

// Settings shared by every block of the tower.
struct SwinBlockOptions {
  int64_t dim = 96;
  int64_t num_heads = 4;
  int64_t window_size = 8;
  int64_t shift_size = 0;               // 0 or window_size / 2
  int64_t height = 64, width = 64;      // token grid of the stage (fixed by the geometry)
  double mlp_ratio = 4.0;
  double layer_norm_eps = 1e-5;
  bool qkv_bias = true;
  std::string hidden_act = "gelu";      // gelu (erf) | gelu_new | relu | silu | swish | gelu_fast
  double attention_dropout = 0.0;       // HF: attention_probs_dropout_prob (probs and attention.output)
  double hidden_dropout = 0.0;          // HF: hidden_dropout_prob (after output.dense)
  double drop_path = 0.0;               // stochastic depth, HF: config.drop_path_rate (same for every block)
};

// Applies the activation named by HF's `hidden_act`.
torch::Tensor apply_activation(const torch::Tensor& x, const std::string& name);

// Window self-attention: ClapAudioSelfAttention + ClapAudioSelfOutput behind one module pair.
class WindowSelfAttentionImpl : public torch::nn::Module {
 public:
  WindowSelfAttentionImpl(int64_t dim, int64_t num_heads, int64_t window_size, bool qkv_bias, double dropout);
  // windows: [num_windows_total, N = ws*ws, dim]; mask: [num_windows_per_image, N, N] additive, or undefined.
  torch::Tensor forward(const torch::Tensor& windows, const torch::Tensor& mask);

  torch::nn::Linear query{nullptr}, key{nullptr}, value{nullptr};
  torch::Tensor relative_position_bias_table;  // [(2ws-1)^2, heads]
  torch::Tensor relative_position_index;       // [N, N] int64 (buffer)

 private:
  int64_t num_heads_, head_dim_, window_size_;
  double dropout_;
};
TORCH_MODULE(WindowSelfAttention);

class SelfOutputImpl : public torch::nn::Module {
 public:
  explicit SelfOutputImpl(int64_t dim);
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(SelfOutput);

// `attention` = {self, output}.
class SwinAttentionImpl : public torch::nn::Module {
 public:
  SwinAttentionImpl(int64_t dim, int64_t num_heads, int64_t window_size, bool qkv_bias, double dropout);
  torch::Tensor forward(const torch::Tensor& windows, const torch::Tensor& mask);
  WindowSelfAttention self{nullptr};
  SelfOutput output{nullptr};

 private:
  double dropout_;
};
TORCH_MODULE(SwinAttention);

// A module holding one Linear called `dense` (ClapAudioIntermediate / ClapAudioOutput).
class DenseHolderImpl : public torch::nn::Module {
 public:
  DenseHolderImpl(int64_t in, int64_t out);
  torch::nn::Linear dense{nullptr};
};
TORCH_MODULE(DenseHolder);

class SwinBlockImpl : public torch::nn::Module {
 public:
  explicit SwinBlockImpl(const SwinBlockOptions& o);
  // x: [B, H*W, dim] -> [B, H*W, dim]
  torch::Tensor forward(const torch::Tensor& x);

  // Effective geometry after HF's rule "no shift and one window when the grid is not larger than the window".
  int64_t window_size() const { return ws_; }
  int64_t shift_size() const { return shift_; }

  torch::nn::LayerNorm layernorm_before{nullptr}, layernorm_after{nullptr};
  SwinAttention attention{nullptr};
  DenseHolder intermediate{nullptr}, output{nullptr};

 private:
  torch::Tensor shift_mask(const torch::Tensor& like);
  torch::Tensor drop_path(const torch::Tensor& x);

  SwinBlockOptions o_;
  int64_t ws_, shift_;
  int64_t pad_h_, pad_w_;
  torch::Tensor mask_cache_;  // [nW, N, N] for shifted blocks (not a buffer: HF does not store it)
};
TORCH_MODULE(SwinBlock);

class PatchMergingImpl : public torch::nn::Module {
 public:
  PatchMergingImpl(int64_t dim, int64_t height, int64_t width);
  // [B, H*W, dim] -> [B, ceil(H/2)*ceil(W/2), 2*dim]
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Linear reduction{nullptr};
  torch::nn::LayerNorm norm{nullptr};

 private:
  int64_t dim_, height_, width_;
};
TORCH_MODULE(PatchMerging);

class SwinStageImpl : public torch::nn::Module {
 public:
  // `downsample`: whether a PatchMerging follows the blocks (all stages but the last).
  SwinStageImpl(const SwinBlockOptions& block_options, int64_t depth, bool downsample);
  // Returns (output after the optional merging, output before merging).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
  int64_t out_height() const { return out_h_; }
  int64_t out_width() const { return out_w_; }
  int64_t out_dim() const { return out_dim_; }

  torch::nn::ModuleList blocks{nullptr};
  PatchMerging downsample{nullptr};

 private:
  int64_t out_h_, out_w_, out_dim_;
};
TORCH_MODULE(SwinStage);

}  // namespace synclap
