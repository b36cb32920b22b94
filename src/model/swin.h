// Swin-transformer building blocks of the HTS-AT audio tower (window attention with a relative position bias,
// shifted windows, patch merging). Module and parameter names follow HF transformers' ClapAudio* classes so that
// a state dict maps one-to-one:
//   SwinBlock    = ClapAudioLayer        (layernorm_before, attention.self.{query,key,value,relative_position_*},
//                                          attention.output.dense, layernorm_after, intermediate.dense, output.dense)
//   SwinStage    = ClapAudioStage        (blocks.N, downsample)
//   PatchMerging = ClapAudioPatchMerging (reduction, norm)
// Implementation notes: blocks keep their tokens in "window order" (each shifted window = 64 consecutive rows),
// so the cyclic shift and window partition cost one gather per block instead of roll + permute copies both ways;
// q, k and v come from one GEMM; without autograd on the CPU the attention itself runs in a fused kernel
// (window_attention_cpu.h). The HF formulation (pad, roll, partition) remains as forward_general(), used for grids
// that need padding and compared with the fast path in the tests. Forward calls on the CPU do not modify the
// module (safe to run concurrently).
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

// The CPU inference kernels of window attention (window_attention_cpu.h) are used when autograd is off and the
// input is float32 on the CPU; this switch forces the LibTorch path (for tests comparing the two). Default on.
void set_window_attention_kernels(bool enabled);
bool window_attention_kernels_enabled();

// y = x W^T + b over the last dimension, as one GEMM with the bias fused (addmm) for any leading shape.
torch::Tensor linear_fused(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

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
  // x: [B, H*W, dim] tokens in row-major grid order -> same.
  torch::Tensor forward(const torch::Tensor& x);

  // Window order: the tokens rearranged so that each attention window (after the cyclic shift) is N = ws*ws
  // consecutive rows. window_order()[p] = grid index of the token at window position p. Undefined when the grid
  // needs padding (then only forward() works). Tokens are independent outside attention (LayerNorm, MLP,
  // residuals), so consecutive blocks can stay in window order and only re-gather between different orders.
  bool has_window_order() const { return pad_h_ == 0 && pad_w_ == 0; }
  const torch::Tensor& window_order() const { return order_; }        // [H*W] int64, CPU
  const torch::Tensor& inverse_window_order() const { return inverse_; }
  // x: [B, H*W, dim] already in this block's window order -> same order.
  torch::Tensor forward_windowed(const torch::Tensor& x);
  // HF's formulation (pad to whole windows, roll, partition, reverse); forward() uses it when the grid needs
  // padding. Grid order in and out.
  torch::Tensor forward_general(const torch::Tensor& x);

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
  torch::Tensor order_, inverse_;
};
TORCH_MODULE(SwinBlock);

class PatchMergingImpl : public torch::nn::Module {
 public:
  PatchMergingImpl(int64_t dim, int64_t height, int64_t width);
  // [B, H*W, dim] -> [B, ceil(H/2)*ceil(W/2), 2*dim]
  torch::Tensor forward(const torch::Tensor& x);
  // The same from tokens in another order: x[:, p] holds grid token order[p] (inverse_order = its inverse).
  // One gather does the reordering and the 2x2 concatenation together (even dimensions only).
  torch::Tensor forward_from_order(const torch::Tensor& x, const torch::Tensor& inverse_order);
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
  // [B, H*W, dim] tokens in grid order -> output after the optional merging, in grid order.
  torch::Tensor forward(const torch::Tensor& x);
  int64_t out_height() const { return out_h_; }
  int64_t out_width() const { return out_w_; }
  int64_t out_dim() const { return out_dim_; }

  torch::nn::ModuleList blocks{nullptr};
  PatchMerging downsample{nullptr};

 private:
  torch::Tensor index_on(int64_t which, const torch::Tensor& like);

  int64_t out_h_, out_w_, out_dim_;
  bool windowed_ = false;
  // Gathers between consecutive orders: [0] token -> block 0, [i] block i-1 -> block i, [depth] last -> token.
  std::vector<torch::Tensor> transitions_;
  std::vector<torch::Tensor> transitions_dev_;  // the same on the device of the last input
};
TORCH_MODULE(SwinStage);

}  // namespace synclap
