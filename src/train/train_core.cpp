// synclap: parameter groups, learning-rate schedule and the contrastive loss.
#include <cmath>

#include "synclap/error.h"
#include "train/distributed.h"
#include "train/train_internal.h"

namespace synclap {

std::string param_group_of(const std::string& name) {
  if (name.rfind("audio_model.", 0) == 0) return "audio";
  if (name.rfind("text_model.", 0) == 0) return "text";
  return "heads";
}

bool param_no_decay(const std::string& name, const torch::Tensor& p) {
  if (p.dim() < 2) return true;
  if (name.find("logit_scale") != std::string::npos) return true;
  if (name.find("norm") != std::string::npos || name.find("bias") != std::string::npos) return true;
  return false;
}

double lr_factor(int64_t step, int64_t total, int64_t warmup, const std::string& schedule, double min_ratio) {
  if (warmup > 0 && step < warmup) return double(step + 1) / double(warmup);
  if (schedule == "constant") return 1.0;
  // The decay spans the steps after the warm-up; it would reach min_ratio at step `total`, one past the last,
  // so no step is spent at the floor.
  const int64_t span = std::max<int64_t>(1, total - warmup);
  const double t = std::min(1.0, std::max(0.0, double(step - warmup) / double(span)));
  if (schedule == "linear") return min_ratio + (1.0 - min_ratio) * (1.0 - t);
  // cosine
  return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(M_PI * t));
}

ContrastiveLoss contrastive_loss(const torch::Tensor& audio, const torch::Tensor& text, const torch::Tensor& log_scale_a,
                                 const torch::Tensor& log_scale_t, Distributed* dist) {
  if (audio.dim() != 2 || text.dim() != 2 || audio.sizes() != text.sizes())
    throw Error("contrastive loss: audio and text embeddings must both be [B, D]");
  const int64_t b = audio.size(0);
  const int world = dist ? dist->world_size() : 1;
  const int rank = dist ? dist->rank() : 0;
  torch::Tensor all_audio = audio, all_text = text;
  if (dist && world > 1) {
    all_audio = dist->all_gather_with_grad(audio);
    all_text = dist->all_gather_with_grad(text);
  }
  auto targets = torch::arange(b, torch::TensorOptions().dtype(torch::kLong).device(audio.device())) + int64_t(rank) * b;
  auto logits_a = log_scale_a.exp() * torch::matmul(audio, all_text.t());  // [B, W*B]
  auto logits_t = log_scale_t.exp() * torch::matmul(text, all_audio.t());
  namespace F = torch::nn::functional;
  auto sum = F::cross_entropy(logits_a, targets, F::CrossEntropyFuncOptions().reduction(torch::kSum)) +
             F::cross_entropy(logits_t, targets, F::CrossEntropyFuncOptions().reduction(torch::kSum));
  ContrastiveLoss out;
  out.loss = sum / double(2 * world * b);
  torch::NoGradGuard ng;
  auto hits = (logits_a.argmax(1) == targets).to(torch::kFloat).sum() + (logits_t.argmax(1) == targets).to(torch::kFloat).sum();
  out.accuracy = hits / double(2 * b);
  return out;
}

}  // namespace synclap
