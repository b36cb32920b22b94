// AFF block; see aff.h. Parameter names follow the nn.Sequential indices of HF's ClapAudioAFFBlock.
#include "model/aff.h"

#include <synclap/error.h>

namespace synclap {

namespace nn = torch::nn;

AffBlockImpl::AffBlockImpl(int64_t channels, int64_t downsize_ratio) {
  if (channels <= 0 || downsize_ratio <= 0 || channels / downsize_ratio <= 0)
    throw Error("AFF block: bad channels " + std::to_string(channels) + " / ratio " + std::to_string(downsize_ratio));
  const int64_t inter = channels / downsize_ratio;
  auto conv1x1 = [](int64_t in, int64_t out) { return nn::Conv2d(nn::Conv2dOptions(in, out, 1).stride(1).padding(0)); };
  local_att = register_module(
      "local_att", nn::Sequential(conv1x1(channels, inter), nn::BatchNorm2d(inter), nn::ReLU(),
                                  conv1x1(inter, channels), nn::BatchNorm2d(channels)));
  global_att = register_module(
      "global_att", nn::Sequential(nn::AdaptiveAvgPool2d(nn::AdaptiveAvgPool2dOptions(1)), conv1x1(channels, inter),
                                   nn::BatchNorm2d(inter), nn::ReLU(), conv1x1(inter, channels),
                                   nn::BatchNorm2d(channels)));
}

torch::Tensor AffBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& residual) {
  auto a = x + residual;
  // global_att by hand: in training, a BatchNorm over a single pooled row has no batch statistics (PyTorch
  // refuses it, so HF cannot train on a batch with one longer clip); such a row is normalised with the
  // running statistics instead.
  auto g = a;
  for (const auto& m : global_att->children()) {
    auto* bn = m->as<nn::BatchNorm2dImpl>();
    if (bn && is_training() && g.size(0) == 1) {
      g = torch::batch_norm(g, bn->weight, bn->bias, bn->running_mean, bn->running_var, /*training=*/false,
                            bn->options.momentum().value_or(0.1), bn->options.eps(), /*cudnn_enabled=*/false);
    } else if (bn) {
      g = bn->forward(g);
    } else if (auto* conv = m->as<nn::Conv2dImpl>()) {
      g = conv->forward(g);
    } else if (auto* pool = m->as<nn::AdaptiveAvgPool2dImpl>()) {
      g = pool->forward(g);
    } else if (m->as<nn::ReLUImpl>()) {
      g = torch::relu(g);
    } else {
      throw Error("AFF block: unexpected module in global_att");
    }
  }
  auto w = torch::sigmoid(local_att->forward(a) + g);
  return 2 * x * w + 2 * residual * (1 - w);
}

}  // namespace synclap
