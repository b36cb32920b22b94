// synclap: parameter groups, learning-rate schedule and the contrastive loss.
#include <algorithm>
#include <cmath>
#include <set>

#include "io/torch/checkpoint.h"
#include "io/torch/tensor_io.h"
#include "synclap/error.h"
#include "synclap/eval.h"
#include "synclap/util.h"
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
                                 const torch::Tensor& log_scale_t, Distributed* dist, const torch::Tensor& match_keys) {
  if (audio.dim() != 2 || text.dim() != 2 || audio.sizes() != text.sizes())
    throw Error("contrastive loss: audio and text embeddings must both be [B, D]");
  const int64_t b = audio.size(0);
  if (match_keys.defined() && (match_keys.dim() != 2 || match_keys.size(0) != b))
    throw Error("contrastive loss: match keys must be [B, K] for B items");
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
  torch::Tensor sum, hits;
  if (!match_keys.defined()) {
    sum = F::cross_entropy(logits_a, targets, F::CrossEntropyFuncOptions().reduction(torch::kSum)) +
          F::cross_entropy(logits_t, targets, F::CrossEntropyFuncOptions().reduction(torch::kSum));
    torch::NoGradGuard ng;
    hits = (logits_a.argmax(1) == targets).to(torch::kFloat).sum() + (logits_t.argmax(1) == targets).to(torch::kFloat).sum();
  } else {
    // Every pair with equal keys is a match; each row's target spreads evenly over its matches (its own pair
    // always among them). Matching is symmetric, so the text rows use the same targets.
    torch::Tensor soft;
    {
      torch::NoGradGuard ng;
      auto keys = match_keys.to(torch::kDouble);
      auto all_keys = (dist && world > 1) ? dist->all_gather_with_grad(keys) : keys;
      auto eq = (keys.unsqueeze(1) == all_keys.unsqueeze(0)).all(2).to(logits_a.scalar_type());  // [B, W*B]
      soft = eq / eq.sum(1, true);
    }
    sum = -(soft * F::log_softmax(logits_a, F::LogSoftmaxFuncOptions(1))).sum() -
          (soft * F::log_softmax(logits_t, F::LogSoftmaxFuncOptions(1))).sum();
    torch::NoGradGuard ng;
    hits = (soft.gather(1, logits_a.argmax(1, true)) > 0).to(torch::kFloat).sum() +
           (soft.gather(1, logits_t.argmax(1, true)) > 0).to(torch::kFloat).sum();
  }
  ContrastiveLoss out;
  out.loss = sum / double(2 * world * b);
  out.accuracy = hits / double(2 * b);
  return out;
}

namespace {
std::string class_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return v.dump();
  return "";
}
}  // namespace

int64_t LabelPromptSet::class_of(const nlohmann::json& labels) const {
  if (!labels.is_object()) return -1;
  auto it = labels.find(label);
  if (it == labels.end()) return -1;
  const std::string v = class_text(*it);
  if (v.empty()) return -1;
  auto pos = std::lower_bound(classes.begin(), classes.end(), v);
  return pos != classes.end() && *pos == v ? int64_t(pos - classes.begin()) : -1;
}

LabelPromptSet make_label_prompt_set(const std::string& label, const std::string& text_template, double weight,
                                     const std::vector<nlohmann::json>& item_labels) {
  LabelPromptSet s;
  s.label = label;
  s.weight = weight;
  std::set<std::string> values;
  for (const auto& l : item_labels)
    if (l.is_object() && l.contains(label)) {
      const std::string v = class_text(l[label]);
      if (!v.empty()) values.insert(v);
    }
  if (values.size() < 2)
    throw Error("label_prompts: label \"" + label + "\" has " + std::to_string(values.size()) +
                " value(s) in the training items; a class prompt loss needs at least 2");
  s.classes.assign(values.begin(), values.end());
  for (const auto& c : s.classes) s.prompts.push_back(fill_template(text_template, c));  // as zero-shot fills them
  return s;
}

torch::Tensor caption_match_keys(const std::vector<std::string>& captions) {
  auto keys = torch::empty({int64_t(captions.size()), 2}, torch::kDouble);
  auto acc = keys.accessor<double, 2>();
  for (size_t i = 0; i < captions.size(); ++i) {
    const uint64_t h = fnv1a64(captions[i]);
    acc[int64_t(i)][0] = double(h >> 32);
    acc[int64_t(i)][1] = double(h & 0xffffffffULL);
  }
  return keys;
}

WeightAverage::WeightAverage(const std::vector<std::pair<std::string, torch::Tensor>>& state, double decay)
    : decay_(decay) {
  torch::NoGradGuard ng;
  for (const auto& [name, t] : state) {
    if (!t.is_floating_point()) continue;
    model_.push_back(t);
    avg_.emplace_back(name, t.detach().clone());
  }
}

void WeightAverage::update(int64_t n) {
  torch::NoGradGuard ng;
  const double d = decay_at(decay_, n);
  for (size_t i = 0; i < avg_.size(); ++i) avg_[i].second.mul_(d).add_(model_[i].detach(), 1.0 - d);
}

void WeightAverage::swap() {
  torch::NoGradGuard ng;
  for (size_t i = 0; i < avg_.size(); ++i) {
    auto tmp = model_[i].detach().clone();
    model_[i].detach().copy_(avg_[i].second);
    avg_[i].second.copy_(tmp);
  }
}

void WeightAverage::save(const std::string& path) const {
  write_tensors(path, avg_, {{"synclap_ema_decay", std::to_string(decay_)}});
}

void WeightAverage::load(const std::string& path) {
  torch::NoGradGuard ng;
  load_state(avg_, {path});
}

}  // namespace synclap
