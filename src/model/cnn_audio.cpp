// Small CNN audio tower; see cnn_audio.h.
#include "model/cnn_audio.h"

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <synclap/error.h>

#include <cmath>

namespace synclap {

namespace nn = torch::nn;
using nlohmann::json;

CnnAudioConfig CnnAudioConfig::from_json(const json& j) {
  if (!j.is_object()) throw Error("cnn audio config must be a JSON object");
  CnnAudioConfig c;
  try {
    if (j.contains("model_type") && j["model_type"] != "cnn_audio")
      throw Error("cnn audio config: model_type is '" + j["model_type"].dump() + "', not \"cnn_audio\"");
    c.num_mel_bins = j.value("num_mel_bins", c.num_mel_bins);
    c.in_channels = j.value("in_channels", c.in_channels);
    c.channels = j.value("channels", c.channels);
    c.convs_per_block = j.value("convs_per_block", c.convs_per_block);
    c.hidden_size = j.value("hidden_size", c.hidden_size);
    c.dropout = j.value("dropout", c.dropout);
    c.temporal_layers = j.value("temporal_layers", c.temporal_layers);
  } catch (const json::exception& e) {
    throw Error(std::string("cnn audio config: ") + e.what());
  }
  c.validate();
  return c;
}

json CnnAudioConfig::to_json() const {
  json j{{"model_type", "cnn_audio"}, {"num_mel_bins", num_mel_bins}, {"in_channels", in_channels},
         {"channels", channels},      {"convs_per_block", convs_per_block}, {"hidden_size", hidden_size},
         {"dropout", dropout}};
  if (temporal_layers > 0) j["temporal_layers"] = temporal_layers;  // older configs stay as they were
  return j;
}

void CnnAudioConfig::validate() const {
  auto fail = [](const std::string& m) { throw Error("cnn audio config: " + m); };
  if (num_mel_bins <= 0) fail("num_mel_bins must be positive");
  if (in_channels <= 0) fail("in_channels must be positive");
  if (channels.empty()) fail("channels is empty");
  for (auto ch : channels)
    if (ch <= 0) fail("channels must be positive");
  if (convs_per_block != 1 && convs_per_block != 2) fail("convs_per_block must be 1 or 2");
  if (hidden_size <= 0) fail("hidden_size must be positive");
  if (!(dropout >= 0.0 && dropout < 1.0)) fail("dropout must be in [0, 1)");
  if (temporal_layers < 0 || temporal_layers > 8) fail("temporal_layers must be in [0, 8]");
}

CnnAudioBlockImpl::CnnAudioBlockImpl(int64_t in, int64_t out, int64_t convs) {
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(in, out, 3).stride(2).padding(1).bias(false)));
  bn1 = register_module("bn1", nn::BatchNorm2d(out));
  if (convs == 2) {
    conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(out, out, 3).stride(1).padding(1).bias(false)));
    bn2 = register_module("bn2", nn::BatchNorm2d(out));
  }
}

torch::Tensor CnnAudioBlockImpl::forward(const torch::Tensor& x) {
  auto y = torch::relu(bn1(conv1(x)));
  if (conv2) y = torch::relu(bn2(conv2(y)));
  return y;
}

CnnTemporalLayerImpl::CnnTemporalLayerImpl(int64_t channels, int64_t dilation) {
  conv = register_module(
      "conv", nn::Conv1d(nn::Conv1dOptions(channels, channels, 3).dilation(dilation).padding(dilation).bias(false)));
  bn = register_module("bn", nn::BatchNorm1d(channels));
}

torch::Tensor CnnTemporalLayerImpl::forward(const torch::Tensor& x) { return x + torch::relu(bn(conv(x))); }

CnnAudioEncoderImpl::CnnAudioEncoderImpl(const CnnAudioConfig& config) : c_(config) {
  c_.validate();
  batch_norm = register_module("batch_norm", nn::BatchNorm2d(c_.num_mel_bins));
  blocks = register_module("blocks", nn::ModuleList());
  int64_t in = c_.in_channels;
  for (auto ch : c_.channels) {
    blocks->push_back(CnnAudioBlock(in, ch, c_.convs_per_block));
    in = ch;
  }
  if (c_.temporal_layers > 0) {
    temporal = register_module("temporal", nn::ModuleList());
    for (int64_t i = 0; i < c_.temporal_layers; ++i) temporal->push_back(CnnTemporalLayer(in, int64_t(1) << i));
  }
  if (c_.hidden_size != in) fc = register_module("fc", nn::Linear(in, c_.hidden_size));
}

HtsatOutput CnnAudioEncoderImpl::forward(const torch::Tensor& input_features, const torch::Tensor& /*is_longer*/,
                                         bool keep_intermediates) {
  if (input_features.dim() != 4 || input_features.size(3) != c_.num_mel_bins ||
      input_features.size(1) < c_.in_channels)
    throw Error("cnn audio: expected input_features [B, >=" + std::to_string(c_.in_channels) + ", T, " +
                std::to_string(c_.num_mel_bins) + "]");
  HtsatOutput out;
  auto x = input_features.slice(1, 0, c_.in_channels);
  // BatchNorm over the mel bins: [B, C, T, F] -> [B, F, T, C] -> BN -> back.
  x = batch_norm(x.transpose(1, 3)).transpose(1, 3).contiguous();
  if (keep_intermediates) out.batch_norm_out = x;
  for (auto& m : *blocks) {
    x = m->as<CnnAudioBlockImpl>()->forward(x);
    if (keep_intermediates) out.hidden_states.push_back(x);
  }
  out.last_hidden_state = x.transpose(2, 3);  // [B, C, F', T'] (frequency rows, time columns, as HTS-AT)
  auto t = x.mean(3);                          // mean over frequency -> [B, C, T']
  if (temporal)
    for (auto& m : *temporal) t = m->as<CnnTemporalLayerImpl>()->forward(t);
  auto pooled = std::get<0>(t.max(2)) + t.mean(2);
  if (c_.dropout > 0.0 && is_training())
    pooled = nn::functional::dropout(pooled, nn::functional::DropoutFuncOptions().p(c_.dropout).training(true));
  out.pooler_output = fc ? fc(pooled) : pooled;
  return out;
}

void CnnAudioEncoderImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (const auto& item : named_modules()) {
    auto& m = item.value();
    if (auto* conv = m->as<nn::Conv2dImpl>()) {
      const double fan_out = static_cast<double>(conv->weight.size(0) * conv->weight[0][0].numel());
      conv->weight.copy_(torch::empty(conv->weight.sizes()).normal_(0.0, std::sqrt(2.0 / fan_out), gen));
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* conv1d = m->as<nn::Conv1dImpl>()) {
      const double fan_out = static_cast<double>(conv1d->weight.size(0) * conv1d->weight.size(2));
      conv1d->weight.copy_(torch::empty(conv1d->weight.sizes()).normal_(0.0, std::sqrt(2.0 / fan_out), gen));
    } else if (auto* bn1d = m->as<nn::BatchNorm1dImpl>()) {
      bn1d->weight.zero_();  // a temporal layer starts as the identity
      bn1d->bias.zero_();
      bn1d->reset_running_stats();
    } else if (auto* lin = m->as<nn::LinearImpl>()) {
      lin->weight.copy_(torch::empty(lin->weight.sizes()).normal_(0.0, 0.02, gen));
      lin->bias.zero_();
    } else if (auto* bn = m->as<nn::BatchNorm2dImpl>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
      bn->reset_running_stats();
    }
  }
}

}  // namespace synclap
