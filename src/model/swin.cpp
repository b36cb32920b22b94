// Swin blocks of the HTS-AT audio tower; see swin.h. Semantics follow HF transformers v4.43.4 ClapAudioLayer /
// ClapAudioStage / ClapAudioPatchMerging (eager attention, additive -100 mask for shifted windows).
#include "model/swin.h"

#include <synclap/error.h>

#include <algorithm>
#include <cmath>

namespace synclap {

namespace F = torch::nn::functional;

torch::Tensor apply_activation(const torch::Tensor& x, const std::string& name) {
  if (name == "gelu") return torch::gelu(x);
  if (name == "relu") return torch::relu(x);
  if (name == "silu" || name == "swish") return torch::silu(x);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh" || name == "gelu_fast") return torch::gelu(x, "tanh");
  if (name == "quick_gelu") return x * torch::sigmoid(1.702 * x);
  if (name == "tanh") return torch::tanh(x);
  throw Error("unsupported activation '" + name + "'");
}

// ---------------------------------------------------------------------------------------------------------------
WindowSelfAttentionImpl::WindowSelfAttentionImpl(int64_t dim, int64_t num_heads, int64_t window_size, bool qkv_bias,
                                                 double dropout)
    : num_heads_(num_heads), window_size_(window_size), dropout_(dropout) {
  if (num_heads <= 0 || dim % num_heads != 0)
    throw Error("swin attention: hidden size " + std::to_string(dim) + " is not a multiple of the number of heads " +
                std::to_string(num_heads));
  head_dim_ = dim / num_heads;
  const int64_t ws = window_size;
  relative_position_bias_table =
      register_parameter("relative_position_bias_table", torch::zeros({(2 * ws - 1) * (2 * ws - 1), num_heads}));
  // index[i, j] for tokens i=(hi,wi), j=(hj,wj) inside a window: ((hi-hj)+ws-1)*(2ws-1) + (wi-wj)+ws-1
  auto index = torch::empty({ws * ws, ws * ws}, torch::kLong);
  auto acc = index.accessor<int64_t, 2>();
  for (int64_t i = 0; i < ws * ws; ++i)
    for (int64_t j = 0; j < ws * ws; ++j) {
      const int64_t dh = i / ws - j / ws + ws - 1, dw = i % ws - j % ws + ws - 1;
      acc[i][j] = dh * (2 * ws - 1) + dw;
    }
  relative_position_index = register_buffer("relative_position_index", index);
  query = register_module("query", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(qkv_bias)));
  key = register_module("key", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(qkv_bias)));
  value = register_module("value", torch::nn::Linear(torch::nn::LinearOptions(dim, dim).bias(qkv_bias)));
}

torch::Tensor WindowSelfAttentionImpl::forward(const torch::Tensor& windows, const torch::Tensor& mask) {
  const int64_t bw = windows.size(0), n = windows.size(1), c = windows.size(2);
  const int64_t h = num_heads_, d = head_dim_;
  // One GEMM for q, k and v.
  auto w = torch::cat({query->weight, key->weight, value->weight}, 0);
  torch::Tensor b;
  if (query->bias.defined()) b = torch::cat({query->bias, key->bias, value->bias}, 0);
  auto qkv = torch::linear(windows, w, b).view({bw, n, 3, h, d}).permute({2, 0, 3, 1, 4});  // [3, BW, H, N, d]
  auto q = qkv[0], k = qkv[1], v = qkv[2];
  auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(d));  // [BW, H, N, N]

  // Relative position bias [H, N, N], plus the shift mask [nW, N, N] when given.
  auto bias = relative_position_bias_table.index_select(0, relative_position_index.view(-1))
                  .view({n, n, h})
                  .permute({2, 0, 1});
  if (mask.defined()) {
    const int64_t nw = mask.size(0);
    auto add = bias.unsqueeze(0) + mask.unsqueeze(1);  // [nW, H, N, N]
    scores = (scores.view({bw / nw, nw, h, n, n}) + add.unsqueeze(0)).view({bw, h, n, n});
  } else {
    scores = scores + bias.unsqueeze(0);
  }
  auto probs = torch::softmax(scores, -1);
  if (dropout_ > 0.0 && is_training()) probs = F::dropout(probs, F::DropoutFuncOptions().p(dropout_).training(true));
  auto ctx = torch::matmul(probs, v);                // [BW, H, N, d]
  return ctx.permute({0, 2, 1, 3}).reshape({bw, n, c});
}

SelfOutputImpl::SelfOutputImpl(int64_t dim) { dense = register_module("dense", torch::nn::Linear(dim, dim)); }

SwinAttentionImpl::SwinAttentionImpl(int64_t dim, int64_t num_heads, int64_t window_size, bool qkv_bias,
                                     double dropout)
    : dropout_(dropout) {
  self = register_module("self", WindowSelfAttention(dim, num_heads, window_size, qkv_bias, dropout));
  output = register_module("output", SelfOutput(dim));
}

torch::Tensor SwinAttentionImpl::forward(const torch::Tensor& windows, const torch::Tensor& mask) {
  auto y = output->dense(self->forward(windows, mask));
  if (dropout_ > 0.0 && is_training()) y = F::dropout(y, F::DropoutFuncOptions().p(dropout_).training(true));
  return y;
}

DenseHolderImpl::DenseHolderImpl(int64_t in, int64_t out) {
  dense = register_module("dense", torch::nn::Linear(in, out));
}

// ---------------------------------------------------------------------------------------------------------------
SwinBlockImpl::SwinBlockImpl(const SwinBlockOptions& o) : o_(o), ws_(o.window_size), shift_(o.shift_size) {
  if (o.height <= 0 || o.width <= 0 || o.window_size <= 0) throw Error("swin block: bad geometry");
  // HF: a grid not larger than the window is one window, without shift.
  if (std::min(o.height, o.width) <= o.window_size) {
    shift_ = 0;
    ws_ = std::min(o.height, o.width);
  }
  // The relative position table is sized for the configured window; HF cannot run a smaller one either.
  if (ws_ != o.window_size)
    throw Error("swin block: token grid " + std::to_string(o.height) + "x" + std::to_string(o.width) +
                " is smaller than the attention window " + std::to_string(o.window_size));
  pad_h_ = (ws_ - o.height % ws_) % ws_;
  pad_w_ = (ws_ - o.width % ws_) % ws_;
  layernorm_before = register_module(
      "layernorm_before", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(o.layer_norm_eps)));
  // The attention module keeps the configured window size (its bias table size depends on it, as in HF).
  attention = register_module("attention",
                              SwinAttention(o.dim, o.num_heads, o.window_size, o.qkv_bias, o.attention_dropout));
  layernorm_after = register_module(
      "layernorm_after", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.dim}).eps(o.layer_norm_eps)));
  const auto hidden = static_cast<int64_t>(o.mlp_ratio * static_cast<double>(o.dim));
  intermediate = register_module("intermediate", DenseHolder(o.dim, hidden));
  output = register_module("output", DenseHolder(hidden, o.dim));
}

torch::Tensor SwinBlockImpl::shift_mask(const torch::Tensor& like) {
  if (mask_cache_.defined() && mask_cache_.device() == like.device() && mask_cache_.dtype() == like.dtype())
    return mask_cache_;
  const int64_t hp = o_.height + pad_h_, wp = o_.width + pad_w_;
  auto region = [&](int64_t i, int64_t len) -> int64_t {
    if (i < len - ws_) return 0;
    if (i < len - shift_) return 1;
    return 2;
  };
  auto img = torch::empty({hp, wp}, torch::kFloat);
  auto a = img.accessor<float, 2>();
  for (int64_t r = 0; r < hp; ++r)
    for (int64_t c = 0; c < wp; ++c) a[r][c] = static_cast<float>(region(r, hp) * 3 + region(c, wp));
  auto win = img.view({hp / ws_, ws_, wp / ws_, ws_}).permute({0, 2, 1, 3}).reshape({-1, ws_ * ws_});  // [nW, N]
  auto diff = win.unsqueeze(1) - win.unsqueeze(2);
  auto mask = torch::zeros_like(diff).masked_fill(diff != 0, -100.0);
  mask_cache_ = mask.to(like.device(), like.scalar_type()).contiguous();
  return mask_cache_;
}

torch::Tensor SwinBlockImpl::drop_path(const torch::Tensor& x) {
  if (o_.drop_path <= 0.0 || !is_training()) return x;
  const double keep = 1.0 - o_.drop_path;
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  auto r = (torch::rand(shape, x.options()) + keep).floor_();
  return x / keep * r;
}

torch::Tensor SwinBlockImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(2), hh = o_.height, ww = o_.width;
  if (x.size(1) != hh * ww || c != o_.dim)
    throw Error("swin block: expected [B, " + std::to_string(hh * ww) + ", " + std::to_string(o_.dim) + "] tokens");
  auto h = layernorm_before(x).view({b, hh, ww, c});
  if (pad_h_ > 0 || pad_w_ > 0) h = F::pad(h, F::PadFuncOptions({0, 0, 0, pad_w_, 0, pad_h_}));
  const int64_t hp = hh + pad_h_, wp = ww + pad_w_;
  if (shift_ > 0) h = torch::roll(h, {-shift_, -shift_}, {1, 2});
  auto windows =
      h.view({b, hp / ws_, ws_, wp / ws_, ws_, c}).permute({0, 1, 3, 2, 4, 5}).reshape({-1, ws_ * ws_, c});
  torch::Tensor mask;
  if (shift_ > 0) mask = shift_mask(windows);
  auto a = attention->forward(windows, mask);
  a = a.view({b, hp / ws_, wp / ws_, ws_, ws_, c}).permute({0, 1, 3, 2, 4, 5}).reshape({b, hp, wp, c});
  if (shift_ > 0) a = torch::roll(a, {shift_, shift_}, {1, 2});
  if (pad_h_ > 0 || pad_w_ > 0) a = a.slice(1, 0, hh).slice(2, 0, ww);
  a = a.reshape({b, hh * ww, c});
  auto hs = x + drop_path(a);
  auto y = apply_activation(intermediate->dense(layernorm_after(hs)), o_.hidden_act);
  y = output->dense(y);
  if (o_.hidden_dropout > 0.0 && is_training())
    y = F::dropout(y, F::DropoutFuncOptions().p(o_.hidden_dropout).training(true));
  return hs + y;  // HF applies no drop path on the MLP branch
}

// ---------------------------------------------------------------------------------------------------------------
PatchMergingImpl::PatchMergingImpl(int64_t dim, int64_t height, int64_t width)
    : dim_(dim), height_(height), width_(width) {
  reduction = register_module("reduction", torch::nn::Linear(torch::nn::LinearOptions(4 * dim, 2 * dim).bias(false)));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4 * dim})));
}

torch::Tensor PatchMergingImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(2);
  auto h = x.view({b, height_, width_, c});
  const int64_t ph = height_ % 2, pw = width_ % 2;
  if (ph || pw) h = F::pad(h, F::PadFuncOptions({0, 0, 0, pw, 0, ph}));
  const int64_t h2 = (height_ + ph) / 2, w2 = (width_ + pw) / 2;
  // Concatenation order of HF: (even row, even col), (odd row, even col), (even row, odd col), (odd row, odd col)
  // == the 2x2 neighbourhood ordered column-major, which one permute produces.
  auto merged = h.view({b, h2, 2, w2, 2, c}).permute({0, 1, 3, 4, 2, 5}).reshape({b, h2 * w2, 4 * c});
  return reduction(norm(merged));
}

// ---------------------------------------------------------------------------------------------------------------
SwinStageImpl::SwinStageImpl(const SwinBlockOptions& bo, int64_t depth, bool downsample_after) {
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < depth; ++i) {
    SwinBlockOptions o = bo;
    o.shift_size = (i % 2 == 0) ? 0 : bo.window_size / 2;
    blocks->push_back(SwinBlock(o));
  }
  out_h_ = bo.height;
  out_w_ = bo.width;
  out_dim_ = bo.dim;
  if (downsample_after) {
    downsample = register_module("downsample", PatchMerging(bo.dim, bo.height, bo.width));
    out_h_ = (bo.height + 1) / 2;
    out_w_ = (bo.width + 1) / 2;
    out_dim_ = 2 * bo.dim;
  }
}

std::pair<torch::Tensor, torch::Tensor> SwinStageImpl::forward(const torch::Tensor& x) {
  auto h = x;
  for (auto& m : *blocks) h = m->as<SwinBlockImpl>()->forward(h);
  if (downsample) return {downsample->forward(h), h};
  return {h, h};
}

}  // namespace synclap
