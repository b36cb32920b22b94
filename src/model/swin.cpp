// Swin blocks of the HTS-AT audio tower; see swin.h. Semantics follow HF transformers v4.43.4 ClapAudioLayer /
// ClapAudioStage / ClapAudioPatchMerging (eager attention, additive -100 mask for shifted windows).
#include "model/swin.h"

#include <synclap/error.h>

#include <algorithm>
#include <atomic>
#include <cmath>

#include "model/window_attention_cpu.h"

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

namespace {
std::atomic<bool> g_window_kernels{true};
}  // namespace

void set_window_attention_kernels(bool enabled) { g_window_kernels = enabled; }
bool window_attention_kernels_enabled() { return g_window_kernels; }

torch::Tensor linear_fused(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  if (x.dim() == 2) return bias.defined() ? torch::addmm(bias, x, weight.t()) : torch::mm(x, weight.t());
  auto sizes = x.sizes().vec();
  auto x2 = x.reshape({-1, sizes.back()});
  auto y = bias.defined() ? torch::addmm(bias, x2, weight.t()) : torch::mm(x2, weight.t());
  sizes.back() = weight.size(0);
  return y.view(sizes);
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
  if (n != window_size_ * window_size_) throw Error("window attention: windows must hold ws*ws tokens");
  // One GEMM for q, k and v; the 1/sqrt(d) score scale is folded into the query weights.
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  auto w = torch::cat({query->weight * scale, key->weight, value->weight}, 0);
  torch::Tensor b;
  if (query->bias.defined()) b = torch::cat({query->bias * scale, key->bias, value->bias}, 0);
  auto qkv_flat = linear_fused(windows, w, b);  // [BW, N, 3C] = [BW, N, 3, H, d]
  // Relative position bias [H, N, N], plus the shift mask [nW, N, N] when given.
  auto bias = relative_position_bias_table.index_select(0, relative_position_index.view(-1))
                  .view({n, n, h})
                  .permute({2, 0, 1});

  const bool dropping = dropout_ > 0.0 && is_training();
  if (g_window_kernels && !dropping && !torch::GradMode::is_enabled() && windows.device().is_cpu() &&
      qkv_flat.scalar_type() == torch::kFloat) {
    auto qkv_c = qkv_flat.contiguous();
    auto bias_c = bias.to(torch::kFloat).contiguous();
    torch::Tensor mask_c;
    int64_t nw = 1;
    if (mask.defined()) {
      mask_c = mask.to(torch::kFloat).contiguous();
      nw = mask_c.size(0);
      if (bw % nw != 0) throw Error("window attention: window count is not a multiple of the mask's");
    }
    auto ctx = torch::empty({bw, n, c}, qkv_c.options());
    kernels::window_attention(qkv_c.data_ptr<float>(), bias_c.data_ptr<float>(),
                              mask_c.defined() ? mask_c.data_ptr<float>() : nullptr, nw, bw, n, h, d,
                              ctx.data_ptr<float>());
    return ctx;
  }

  // Differentiable path: the scores start as bias (+ mask); the batched GEMM accumulates into them.
  auto qkv = qkv_flat.view({bw, n, 3, h, d}).permute({2, 0, 3, 1, 4}).contiguous();
  auto q = qkv[0].view({bw * h, n, d}), k = qkv[1].view({bw * h, n, d}), v = qkv[2].view({bw * h, n, d});
  torch::Tensor add;
  int64_t nw = 1;
  if (mask.defined()) {
    nw = mask.size(0);
    add = bias.unsqueeze(0) + mask.unsqueeze(1);  // [nW, H, N, N]
  } else {
    add = bias.unsqueeze(0);
  }
  if (bw % nw != 0) throw Error("window attention: window count is not a multiple of the mask's");
  auto scores = add.to(q.scalar_type()).unsqueeze(0).expand({bw / nw, nw, h, n, n}).contiguous().view({bw * h, n, n});
  scores.baddbmm_(q, k.transpose(1, 2));
  auto probs = torch::softmax(scores, -1);
  if (dropping) probs = F::dropout(probs, F::DropoutFuncOptions().p(dropout_).training(true));
  auto ctx = torch::bmm(probs, v);  // [BW*H, N, d]
  return ctx.view({bw, h, n, d}).permute({0, 2, 1, 3}).reshape({bw, n, c});
}

SelfOutputImpl::SelfOutputImpl(int64_t dim) { dense = register_module("dense", torch::nn::Linear(dim, dim)); }

SwinAttentionImpl::SwinAttentionImpl(int64_t dim, int64_t num_heads, int64_t window_size, bool qkv_bias,
                                     double dropout)
    : dropout_(dropout) {
  self = register_module("self", WindowSelfAttention(dim, num_heads, window_size, qkv_bias, dropout));
  output = register_module("output", SelfOutput(dim));
}

torch::Tensor SwinAttentionImpl::forward(const torch::Tensor& windows, const torch::Tensor& mask) {
  auto y = linear_fused(self->forward(windows, mask), output->dense->weight, output->dense->bias);
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
  // The float32 CPU shift mask is built now, so that concurrent forward calls on the CPU only read the module.
  if (shift_ > 0) shift_mask(torch::empty({0}, torch::kFloat));
  if (has_window_order()) {
    // Window position p = ((wy * nWx + wx) * ws + iy) * ws + ix shows the shifted grid cell (wy*ws+iy, wx*ws+ix),
    // i.e. token ((r + shift) % H, (c + shift) % W) of the unshifted grid (the cyclic shift rolls by -shift).
    const int64_t hh = o.height, ww = o.width, nwx = ww / ws_;
    order_ = torch::empty({hh * ww}, torch::kLong);
    inverse_ = torch::empty({hh * ww}, torch::kLong);
    auto ord = order_.accessor<int64_t, 1>();
    auto inv = inverse_.accessor<int64_t, 1>();
    for (int64_t p = 0; p < hh * ww; ++p) {
      const int64_t win = p / (ws_ * ws_), in = p % (ws_ * ws_);
      const int64_t r = (win / nwx) * ws_ + in / ws_, c = (win % nwx) * ws_ + in % ws_;
      const int64_t token = ((r + shift_) % hh) * ww + (c + shift_) % ww;
      ord[p] = token;
      inv[token] = p;
    }
  }
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
  if (!has_window_order()) return forward_general(x);
  auto in = x.index_select(1, order_.to(x.device()));
  return forward_windowed(in).index_select(1, inverse_.to(x.device()));
}

torch::Tensor SwinBlockImpl::forward_windowed(const torch::Tensor& x) {
  const int64_t b = x.size(0), c = x.size(2), hh = o_.height, ww = o_.width;
  if (x.size(1) != hh * ww || c != o_.dim)
    throw Error("swin block: expected [B, " + std::to_string(hh * ww) + ", " + std::to_string(o_.dim) + "] tokens");
  auto windows = layernorm_before(x).view({-1, ws_ * ws_, c});  // [B*nW, N, C]
  torch::Tensor mask;
  if (shift_ > 0) mask = shift_mask(windows);
  auto a = attention->forward(windows, mask).view({b, hh * ww, c});
  auto hs = x + drop_path(a);
  auto y = apply_activation(linear_fused(layernorm_after(hs), intermediate->dense->weight, intermediate->dense->bias),
                            o_.hidden_act);
  y = linear_fused(y, output->dense->weight, output->dense->bias);
  if (o_.hidden_dropout > 0.0 && is_training())
    y = F::dropout(y, F::DropoutFuncOptions().p(o_.hidden_dropout).training(true));
  return hs + y;  // HF applies no drop path on the MLP branch
}

// The general path (grid not a multiple of the window): pad, roll, partition, as HF does.
torch::Tensor SwinBlockImpl::forward_general(const torch::Tensor& x) {
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
  a = a.slice(1, 0, hh).slice(2, 0, ww).reshape({b, hh * ww, c});
  auto hs = x + drop_path(a);
  auto y = apply_activation(linear_fused(layernorm_after(hs), intermediate->dense->weight, intermediate->dense->bias),
                            o_.hidden_act);
  y = linear_fused(y, output->dense->weight, output->dense->bias);
  if (o_.hidden_dropout > 0.0 && is_training())
    y = F::dropout(y, F::DropoutFuncOptions().p(o_.hidden_dropout).training(true));
  return hs + y;
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

torch::Tensor PatchMergingImpl::forward_from_order(const torch::Tensor& x, const torch::Tensor& inverse_order) {
  if (height_ % 2 || width_ % 2) return forward(x.index_select(1, inverse_order));
  const int64_t b = x.size(0), c = x.size(2), h2 = height_ / 2, w2 = width_ / 2;
  // Source positions of the merged layout [h2, w2, (dx, dy)] in grid order, then through the inverse order.
  auto grid = torch::arange(height_ * width_, inverse_order.options()).view({h2, 2, w2, 2}).permute({0, 2, 3, 1});
  auto index = inverse_order.index_select(0, grid.reshape({-1}));
  auto merged = x.index_select(1, index).view({b, h2 * w2, 4 * c});
  return reduction(norm(merged));
}

// ---------------------------------------------------------------------------------------------------------------
SwinStageImpl::SwinStageImpl(const SwinBlockOptions& bo, int64_t depth, bool downsample_after) {
  blocks = register_module("blocks", torch::nn::ModuleList());
  windowed_ = true;
  std::vector<SwinBlock> made;
  for (int64_t i = 0; i < depth; ++i) {
    SwinBlockOptions o = bo;
    o.shift_size = (i % 2 == 0) ? 0 : bo.window_size / 2;
    made.emplace_back(o);
    blocks->push_back(made.back());
    windowed_ = windowed_ && made.back()->has_window_order();
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
  if (windowed_) {
    // Gathers from one order to the next: token order -> block 0 -> ... -> block depth-1 -> token order.
    transitions_.push_back(made.front()->window_order());
    for (size_t i = 1; i < made.size(); ++i)
      transitions_.push_back(made[i - 1]->inverse_window_order().index_select(0, made[i]->window_order()));
    transitions_.push_back(made.back()->inverse_window_order());
    transitions_dev_ = transitions_;
  }
}

torch::Tensor SwinStageImpl::index_on(int64_t which, const torch::Tensor& like) {
  auto& t = transitions_dev_[which];
  if (t.device() != like.device()) t = transitions_[which].to(like.device());
  return t;
}

torch::Tensor SwinStageImpl::forward(const torch::Tensor& x) {
  if (!windowed_) {
    auto h = x;
    for (auto& m : *blocks) h = m->as<SwinBlockImpl>()->forward(h);
    return downsample ? downsample->forward(h) : h;
  }
  const int64_t depth = static_cast<int64_t>(blocks->size());
  auto h = x.index_select(1, index_on(0, x));
  for (int64_t i = 0; i < depth; ++i) {
    if (i > 0) h = h.index_select(1, index_on(i, h));
    h = blocks[i]->as<SwinBlockImpl>()->forward_windowed(h);
  }
  if (downsample) return downsample->forward_from_order(h, index_on(depth, h));
  return h.index_select(1, index_on(depth, h));
}

}  // namespace synclap
