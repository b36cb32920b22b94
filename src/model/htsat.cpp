// HTS-AT audio tower; see htsat.h. Semantics follow HF transformers v4.43.4 ClapAudioEncoder / ClapAudioPatchEmbed.
#include "model/htsat.h"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <synclap/error.h>

#include <algorithm>
#include <cmath>

namespace synclap {

namespace F = torch::nn::functional;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------------------------
// Config

namespace {

int64_t get_int(const json& j, const char* key, int64_t def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) throw Error(std::string("audio_config.") + key + " must be a number");
  return it->get<int64_t>();
}
double get_double(const json& j, const char* key, double def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_number()) throw Error(std::string("audio_config.") + key + " must be a number");
  return it->get<double>();
}
bool get_bool(const json& j, const char* key, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) throw Error(std::string("audio_config.") + key + " must be true or false");
  return it->get<bool>();
}
std::vector<int64_t> get_ints(const json& j, const char* key, std::vector<int64_t> def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_array()) throw Error(std::string("audio_config.") + key + " must be a list of integers");
  std::vector<int64_t> v;
  for (const auto& e : *it) {
    if (!e.is_number_integer()) throw Error(std::string("audio_config.") + key + " must be a list of integers");
    v.push_back(e.get<int64_t>());
  }
  return v;
}
// An int or a pair [a, b].
std::pair<int64_t, int64_t> get_pair(const json& j, const char* key, std::pair<int64_t, int64_t> def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (it->is_number_integer()) return {it->get<int64_t>(), it->get<int64_t>()};
  auto v = get_ints(j, key, {});
  if (v.size() != 2) throw Error(std::string("audio_config.") + key + " must be an integer or a pair");
  return {v[0], v[1]};
}

}  // namespace

HtsatConfig HtsatConfig::from_hf_audio_config(const json& j) {
  if (!j.is_object()) throw Error("audio_config must be a JSON object");
  HtsatConfig c;
  c.window_size = get_int(j, "window_size", c.window_size);
  c.num_mel_bins = get_int(j, "num_mel_bins", c.num_mel_bins);
  c.spec_size = get_int(j, "spec_size", c.spec_size);
  if (j.contains("hidden_act") && !j["hidden_act"].is_null()) {
    if (!j["hidden_act"].is_string()) throw Error("audio_config.hidden_act must be a string");
    c.hidden_act = j["hidden_act"].get<std::string>();
  }
  auto ps = get_pair(j, "patch_size", {c.patch_size, c.patch_size});
  if (ps.first != ps.second) throw Error("audio_config.patch_size: only square patches are supported");
  c.patch_size = ps.first;
  auto st = get_pair(j, "patch_stride", {c.patch_stride_h, c.patch_stride_w});
  c.patch_stride_h = st.first;
  c.patch_stride_w = st.second;
  c.hidden_size = get_int(j, "hidden_size", c.hidden_size);
  c.depths = get_ints(j, "depths", c.depths);
  c.num_attention_heads = get_ints(j, "num_attention_heads", c.num_attention_heads);
  c.enable_fusion = get_bool(j, "enable_fusion", c.enable_fusion);
  c.hidden_dropout_prob = get_double(j, "hidden_dropout_prob", c.hidden_dropout_prob);
  if (j.contains("fusion_type") && !j["fusion_type"].is_null()) {
    if (!j["fusion_type"].is_string()) throw Error("audio_config.fusion_type must be a string or null");
    c.fusion_type = j["fusion_type"].get<std::string>();
  }
  c.patch_embed_input_channels = get_int(j, "patch_embed_input_channels", c.patch_embed_input_channels);
  c.flatten_patch_embeds = get_bool(j, "flatten_patch_embeds", c.flatten_patch_embeds);
  c.patch_embeds_hidden_size = get_int(j, "patch_embeds_hidden_size", c.patch_embeds_hidden_size);
  c.enable_patch_layer_norm = get_bool(j, "enable_patch_layer_norm", c.enable_patch_layer_norm);
  c.drop_path_rate = get_double(j, "drop_path_rate", c.drop_path_rate);
  c.attention_probs_dropout_prob = get_double(j, "attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  c.qkv_bias = get_bool(j, "qkv_bias", c.qkv_bias);
  c.mlp_ratio = get_double(j, "mlp_ratio", c.mlp_ratio);
  c.aff_block_r = get_int(j, "aff_block_r", c.aff_block_r);
  c.layer_norm_eps = get_double(j, "layer_norm_eps", c.layer_norm_eps);
  c.validate();
  return c;
}

json HtsatConfig::to_hf_audio_config() const {
  json j;
  j["model_type"] = "clap_audio_model";
  j["window_size"] = window_size;
  j["num_mel_bins"] = num_mel_bins;
  j["spec_size"] = spec_size;
  j["hidden_act"] = hidden_act;
  j["patch_size"] = patch_size;
  j["patch_stride"] = {patch_stride_h, patch_stride_w};
  j["hidden_size"] = hidden_size;
  j["depths"] = depths;
  j["num_attention_heads"] = num_attention_heads;
  j["num_hidden_layers"] = static_cast<int64_t>(depths.size());
  j["enable_fusion"] = enable_fusion;
  j["hidden_dropout_prob"] = hidden_dropout_prob;
  j["fusion_type"] = fusion_type.empty() ? json(nullptr) : json(fusion_type);
  j["patch_embed_input_channels"] = patch_embed_input_channels;
  j["flatten_patch_embeds"] = flatten_patch_embeds;
  j["patch_embeds_hidden_size"] = patch_embeds_hidden_size;
  j["enable_patch_layer_norm"] = enable_patch_layer_norm;
  j["drop_path_rate"] = drop_path_rate;
  j["attention_probs_dropout_prob"] = attention_probs_dropout_prob;
  j["qkv_bias"] = qkv_bias;
  j["mlp_ratio"] = mlp_ratio;
  j["aff_block_r"] = aff_block_r;
  j["layer_norm_eps"] = layer_norm_eps;
  return j;
}

HtsatConfig HtsatConfig::tiny(bool fusion) {
  HtsatConfig c;
  c.enable_fusion = fusion;
  return c;
}

HtsatConfig HtsatConfig::base(bool fusion) {
  HtsatConfig c;
  c.patch_embeds_hidden_size = 128;
  c.depths = {2, 2, 12, 2};
  c.hidden_size = 1024;
  c.enable_fusion = fusion;
  return c;
}

void HtsatConfig::validate() const {
  auto fail = [](const std::string& m) { throw Error("HTS-AT config: " + m); };
  if (depths.empty()) fail("depths is empty");
  if (depths.size() != num_attention_heads.size()) fail("depths and num_attention_heads differ in length");
  for (size_t i = 0; i < depths.size(); ++i) {
    if (depths[i] <= 0) fail("depths must be positive");
    const int64_t dim = patch_embeds_hidden_size << i;
    if (num_attention_heads[i] <= 0 || dim % num_attention_heads[i] != 0)
      fail("stage " + std::to_string(i) + " width " + std::to_string(dim) + " is not a multiple of its " +
           std::to_string(num_attention_heads[i]) + " heads");
  }
  if (num_mel_bins <= 0 || spec_size <= 0 || spec_size % num_mel_bins != 0)
    fail("spec_size must be a multiple of num_mel_bins");
  if (patch_size <= 0 || patch_stride_h <= 0 || patch_stride_w <= 0) fail("bad patch size / stride");
  if (spec_size % patch_stride_h != 0 || spec_size % patch_stride_w != 0) fail("spec_size % patch_stride != 0");
  if (window_size <= 0) fail("window_size must be positive");
  if (hidden_size != num_features())
    fail("hidden_size " + std::to_string(hidden_size) + " must equal patch_embeds_hidden_size * 2^(stages-1) = " +
         std::to_string(num_features()));
  if (!flatten_patch_embeds) fail("flatten_patch_embeds=false is not supported");
  if (enable_fusion && fusion_type == "channel_map") fail("fusion_type 'channel_map' is not supported");
  if (enable_fusion && patch_embed_input_channels != 1) fail("fusion needs patch_embed_input_channels == 1");
  if (enable_fusion && (aff_block_r <= 0 || patch_embeds_hidden_size / aff_block_r <= 0)) fail("bad aff_block_r");
  if (mlp_ratio <= 0) fail("mlp_ratio must be positive");
  apply_activation(torch::zeros({1}), hidden_act);  // throws for unknown names
}

// ---------------------------------------------------------------------------------------------------------------
// Patch embedding

HtsatPatchEmbedImpl::HtsatPatchEmbedImpl(const HtsatConfig& c) : c_(c) {
  grid_h_ = c.spec_size / c.patch_stride_h;
  grid_w_ = c.spec_size / c.patch_stride_w;
  const int64_t pad_h = (c.patch_size - c.patch_stride_h) / 2, pad_w = (c.patch_size - c.patch_stride_w) / 2;
  const int64_t d = c.patch_embeds_hidden_size;
  proj = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.patch_embed_input_channels, d,
                                                                             {c.patch_size, c.patch_size})
                                                       .stride({c.patch_stride_h, c.patch_stride_w})
                                                       .padding({pad_h, pad_w})));
  if (c.enable_patch_layer_norm) norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  if (c.enable_fusion) {
    fusion_model = register_module("fusion_model", AffBlock(d, c.aff_block_r));
    mel_conv2d = register_module(
        "mel_conv2d", torch::nn::Conv2d(torch::nn::Conv2dOptions(c.patch_embed_input_channels, d,
                                                                 {c.patch_size, c.patch_size * 3})
                                            .stride({c.patch_stride_h, c.patch_stride_w * 3})
                                            .padding({pad_h, pad_w})));
  }
}

torch::Tensor HtsatPatchEmbedImpl::forward(const torch::Tensor& img, const torch::Tensor& longer_idx) {
  if (img.dim() != 4 || img.size(2) != c_.spec_size || img.size(3) != c_.spec_size)
    throw Error("HTS-AT patch embedding: expected [B, C, " + std::to_string(c_.spec_size) + ", " +
                std::to_string(c_.spec_size) + "] input");
  torch::Tensor y;
  if (!c_.enable_fusion) {
    if (img.size(1) != c_.patch_embed_input_channels)
      throw Error("HTS-AT: the unfused model takes " + std::to_string(c_.patch_embed_input_channels) +
                  " input channel(s), got " + std::to_string(img.size(1)));
    y = proj(img);
  } else {
    y = proj(img.slice(1, 0, 1));  // the global (whole clip) channel
    if (longer_idx.defined() && longer_idx.numel() > 0) {
      // Local chunks (channels 1..C-1) of the longer clips through the time-strided conv, side by side in time.
      auto local = img.index_select(0, longer_idx).slice(1, 1);
      const int64_t b = local.size(0), nc = local.size(1);
      if (nc == 0) throw Error("HTS-AT fusion: is_longer rows need the local chunk channels (C = 4)");
      local = mel_conv2d(local.reshape({b * nc, 1, img.size(2), img.size(3)}));
      const int64_t d = local.size(1), h = local.size(2), w = local.size(3);
      local = local.view({b, nc, d, h, w}).permute({0, 2, 3, 1, 4}).reshape({b, d, h, nc * w});
      local = F::pad(local, F::PadFuncOptions({0, y.size(-1) - nc * w}));
      auto fused = fusion_model->forward(y.index_select(0, longer_idx), local);
      y = y.index_copy(0, longer_idx, fused);
    }
  }
  y = y.flatten(2).transpose(1, 2);  // [B, grid_h*grid_w, D], row-major over (freq rows, time columns)
  if (norm) y = norm(y);
  return y;
}

// ---------------------------------------------------------------------------------------------------------------
// Encoder

HtsatAudioEncoderImpl::HtsatAudioEncoderImpl(const HtsatConfig& config) : c_(config) {
  c_.validate();
  patch_embed = register_module("patch_embed", HtsatPatchEmbed(c_));
  layers = register_module("layers", torch::nn::ModuleList());
  int64_t h = patch_embed->grid_h(), w = patch_embed->grid_w();
  for (int64_t i = 0; i < c_.num_stages(); ++i) {
    SwinBlockOptions o;
    o.dim = c_.patch_embeds_hidden_size << i;
    o.num_heads = c_.num_attention_heads[i];
    o.window_size = c_.window_size;
    o.height = h;
    o.width = w;
    o.mlp_ratio = c_.mlp_ratio;
    o.layer_norm_eps = c_.layer_norm_eps;
    o.qkv_bias = c_.qkv_bias;
    o.hidden_act = c_.hidden_act;
    o.attention_dropout = c_.attention_probs_dropout_prob;
    o.hidden_dropout = c_.hidden_dropout_prob;
    o.drop_path = c_.drop_path_rate;
    SwinStage stage(o, c_.depths[i], i + 1 < c_.num_stages());
    h = stage->out_height();
    w = stage->out_width();
    layers->push_back(stage);
  }
  batch_norm = register_module("batch_norm", torch::nn::BatchNorm2d(c_.num_mel_bins));
  norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c_.num_features()})));
}

torch::Tensor HtsatAudioEncoderImpl::normalize_mel(const torch::Tensor& x) {
  // BatchNorm2d with the mel bins as channels: [B, C, T, F] -> [B, F, T, C] -> BN -> back.
  return batch_norm(x.transpose(1, 3)).transpose(1, 3);
}

torch::Tensor HtsatAudioEncoderImpl::reshape_mel2img(const torch::Tensor& normalized) {
  auto x = normalized;
  const int64_t fr = c_.freq_ratio();
  const int64_t spec_w = c_.spec_size * fr, spec_h = c_.spec_size / fr;
  const int64_t t = x.size(2), f = x.size(3);
  if (t > spec_w || f > spec_h)
    throw Error("HTS-AT: input of " + std::to_string(t) + " frames x " + std::to_string(f) +
                " bins is larger than the model's " + std::to_string(spec_w) + " x " + std::to_string(spec_h));
  if (t < spec_w)
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{spec_w, f})
                              .mode(torch::kBicubic)
                              .align_corners(true));
  if (f < spec_h)
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{x.size(2), spec_h})
                              .mode(torch::kBicubic)
                              .align_corners(true));
  const int64_t b = x.size(0), c = x.size(1), tt = x.size(2), ff = x.size(3);
  // [B, C, fr*256, 64] -> [B, C*fr, 256, 64] -> [B, C*fr, 64, 256] -> [B, C, fr*64, 256]
  return x.reshape({b, c * fr, tt / fr, ff}).permute({0, 1, 3, 2}).reshape({b, c, ff * fr, tt / fr});
}

HtsatOutput HtsatAudioEncoderImpl::forward(const torch::Tensor& input_features, const torch::Tensor& is_longer,
                                           bool keep_intermediates) {
  if (input_features.dim() != 4 || input_features.size(3) != c_.num_mel_bins)
    throw Error("HTS-AT: expected input_features [B, C, T, " + std::to_string(c_.num_mel_bins) + "]");
  const int64_t b = input_features.size(0);
  HtsatOutput out;
  auto bn = normalize_mel(input_features);
  auto img = reshape_mel2img(bn);
  torch::Tensor longer_idx;
  if (c_.enable_fusion && is_longer.defined()) {
    if (is_longer.numel() != b) throw Error("HTS-AT: is_longer must have one entry per batch row");
    longer_idx = torch::nonzero(is_longer.reshape({-1}).to(torch::kCPU) != 0).reshape({-1}).to(img.device());
  }
  auto h = patch_embed->forward(img, longer_idx);
  if (keep_intermediates) {
    out.batch_norm_out = bn;
    out.mel2img = img;
    out.patch_embed_out = h;
    out.hidden_states.push_back(
        h.view({b, patch_embed->grid_h(), patch_embed->grid_w(), h.size(2)}).permute({0, 3, 1, 2}));
  }
  for (auto& m : *layers) {
    auto* stage = m->as<SwinStageImpl>();
    h = stage->forward(h);
    if (keep_intermediates)
      out.hidden_states.push_back(
          h.view({b, stage->out_height(), stage->out_width(), h.size(2)}).permute({0, 3, 1, 2}));
  }
  auto last = norm(h);  // [B, L, C]
  const int64_t n_ch = last.size(2);
  const int64_t frames = img.size(2);
  const int64_t down = int64_t{1} << (c_.num_stages() - 1);
  const int64_t freq_shape = frames / down / c_.patch_stride_h;
  const int64_t temporal_shape = frames / down / c_.patch_stride_w;
  auto grid = last.permute({0, 2, 1}).reshape({b, n_ch, freq_shape, temporal_shape});
  // HF's "group 2D" layout: the fr frequency groups (= the fr time blocks of the fold) go side by side in time.
  const int64_t c_freq_bin = freq_shape / c_.freq_ratio();
  out.last_hidden_state = grid.reshape({b, n_ch, freq_shape / c_freq_bin, c_freq_bin, temporal_shape})
                              .permute({0, 1, 3, 2, 4})
                              .reshape({b, n_ch, c_freq_bin, -1});
  out.pooler_output = last.mean(1);  // the mean over all final tokens (same set as HF's avgpool)
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Initialisation for training from scratch

namespace {

torch::Tensor trunc_normal(at::IntArrayRef shape, double std, at::Generator& gen) {
  auto x = torch::empty(shape, torch::kFloat).normal_(0.0, std, gen);
  for (int i = 0; i < 16; ++i) {
    auto outside = x.abs() > 2.0 * std;
    if (!outside.any().item<bool>()) break;
    x = torch::where(outside, torch::empty(shape, torch::kFloat).normal_(0.0, std, gen), x);
  }
  return x;
}

}  // namespace

void HtsatAudioEncoderImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto set = [](torch::Tensor& dst, const torch::Tensor& src) { dst.copy_(src.to(dst.options())); };
  for (const auto& item : named_modules()) {
    auto& m = item.value();
    if (auto* lin = m->as<torch::nn::LinearImpl>()) {
      set(lin->weight, trunc_normal(lin->weight.sizes(), 0.02, gen));
      if (lin->bias.defined()) lin->bias.zero_();
    } else if (auto* conv = m->as<torch::nn::Conv2dImpl>()) {
      // PyTorch's default range for convolutions: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
      const double bound = 1.0 / std::sqrt(static_cast<double>(conv->weight[0].numel()));
      set(conv->weight, torch::empty(conv->weight.sizes(), torch::kFloat).uniform_(-bound, bound, gen));
      if (conv->bias.defined())
        set(conv->bias, torch::empty(conv->bias.sizes(), torch::kFloat).uniform_(-bound, bound, gen));
    } else if (auto* ln = m->as<torch::nn::LayerNormImpl>()) {
      ln->weight.fill_(1.0);
      ln->bias.zero_();
    } else if (auto* bn = m->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
      bn->reset_running_stats();
    } else if (auto* att = m->as<WindowSelfAttentionImpl>()) {
      set(att->relative_position_bias_table, trunc_normal(att->relative_position_bias_table.sizes(), 0.02, gen));
    }
  }
}

}  // namespace synclap
