#include "model/projection.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "synclap/error.h"

namespace synclap {

torch::Tensor hf_activation(const std::string& name, const torch::Tensor& x) {
  if (name == "relu") return torch::relu(x);
  if (name == "gelu") return torch::gelu(x);
  if (name == "gelu_new" || name == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  if (name == "silu" || name == "swish") return torch::silu(x);
  if (name == "tanh") return torch::tanh(x);
  throw Error("unsupported activation '" + name + "'");
}

at::Generator make_generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }

ProjectionHeadImpl::ProjectionHeadImpl(int64_t in_dim, int64_t out_dim, std::string activation)
    : activation_(std::move(activation)) {
  hf_activation(activation_, torch::zeros({1}));  // fail early on an unknown name
  linear1 = register_module("linear1", torch::nn::Linear(in_dim, out_dim));
  linear2 = register_module("linear2", torch::nn::Linear(out_dim, out_dim));
}

torch::Tensor ProjectionHeadImpl::forward(const torch::Tensor& x) {
  return linear2->forward(hf_activation(activation_, linear1->forward(x)));
}

void ProjectionHeadImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = make_generator(seed);
  for (auto* l : {&linear1, &linear2}) {
    const double fan_in = double((*l)->weight.size(1));
    (*l)->weight.normal_(0.0, 1.0 / std::sqrt(fan_in), gen);
    (*l)->bias.zero_();
  }
}

}  // namespace synclap
