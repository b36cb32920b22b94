// Attentional feature fusion (AFF, 2-D) of the fused HTS-AT patch embedding: HF transformers' ClapAudioAFFBlock.
//   a = x + residual;  w = sigmoid(local_att(a) + global_att(a));  out = 2*x*w + 2*residual*(1 - w)
// local_att  = [Conv1x1(C->C/r), BN, ReLU, Conv1x1(C/r->C), BN]                 (names local_att.{0,1,3,4})
// global_att = [AdaptiveAvgPool(1), Conv1x1(C->C/r), BN, ReLU, Conv1x1, BN]     (names global_att.{1,2,4,5})
// Internal header (LibTorch types).
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace synclap {

class AffBlockImpl : public torch::nn::Module {
 public:
  AffBlockImpl(int64_t channels, int64_t downsize_ratio);
  // x, residual: [B, C, H, W] -> [B, C, H, W]
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& residual);

  torch::nn::Sequential local_att{nullptr}, global_att{nullptr};
};
TORCH_MODULE(AffBlock);

}  // namespace synclap
