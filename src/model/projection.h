// synclap: the CLAP projection head (HF ClapProjectionLayer): linear1 -> activation -> linear2,
// mapping a tower's pooled output into the joint embedding space (L2 normalisation is done by the model).
#pragma once
#include <torch/torch.h>

#include <string>

namespace synclap {

// The activations HF configs name: "relu", "gelu" (erf), "gelu_new" / "gelu_pytorch_tanh" (tanh approximation),
// "silu" / "swish", "tanh". Throws Error for others.
torch::Tensor hf_activation(const std::string& name, const torch::Tensor& x);

class ProjectionHeadImpl : public torch::nn::Module {
 public:
  ProjectionHeadImpl(int64_t in_dim, int64_t out_dim, std::string activation = "relu");
  torch::Tensor forward(const torch::Tensor& x);
  // Re-initialises the weights from `seed` (normal with std 1/sqrt(fan_in), zero biases).
  void init_weights(uint64_t seed);

  torch::nn::Linear linear1{nullptr}, linear2{nullptr};

 private:
  std::string activation_;
};
TORCH_MODULE(ProjectionHead);

// A CPU generator seeded with `seed` (deterministic initialisation).
at::Generator make_generator(uint64_t seed);

}  // namespace synclap
