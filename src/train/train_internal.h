// synclap: the trainer's building blocks (internal: LibTorch types). Each is tested on its own.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace synclap {

class Distributed;

// Parameter groups by HF/synclap parameter name: audio_model.* -> "audio", text_model.* -> "text",
// everything else (projections, logit scales) -> "heads".
std::string param_group_of(const std::string& name);
// No weight decay for 1-d tensors (norms, biases, BatchNorm), logit scales and anything named *norm*/*bias*.
bool param_no_decay(const std::string& name, const torch::Tensor& p);

// Learning-rate factor at `step` (0-based) of `total` steps: linear warm-up over `warmup` steps to 1, then
// "cosine" (to min_ratio at the last step), "linear" (likewise) or "constant".
double lr_factor(int64_t step, int64_t total, int64_t warmup, const std::string& schedule, double min_ratio);

struct ContrastiveLoss {
  torch::Tensor loss;      // this process's share (the shares of all processes sum to the global loss)
  torch::Tensor accuracy;  // share of this process's rows whose diagonal entry is the row maximum (both ways)
};
// Symmetric InfoNCE over the global batch. audio/text: this process's L2-normalised embeddings [B, D];
// log_scale_a / log_scale_t: the learned log temperatures (logits_per_audio = exp(a) * A T^T, logits_per_text
// = exp(t) * T A^T). With `dist` (world size W) the embeddings are gathered with gradient and this process
// takes only its B rows of each matrix, divided by 2 * W * B, so the gradients sum over processes to those
// of one process holding the whole batch. Without `dist`: the mean of the two cross-entropies.
// match_keys (optional, [B, K], exact in float64, e.g. caption hashes split into 32-bit halves): pairs whose key
// rows are equal also count as matches, and each row's target is spread evenly over its matches (the
// "same_caption" positives); the accuracy then counts a row as right when its maximum is any match. Without
// them (or when every key differs) the loss is the plain InfoNCE above, number for number.
ContrastiveLoss contrastive_loss(const torch::Tensor& audio, const torch::Tensor& text, const torch::Tensor& log_scale_a,
                                 const torch::Tensor& log_scale_t, Distributed* dist = nullptr,
                                 const torch::Tensor& match_keys = torch::Tensor());
// Match keys for contrastive_loss from the batch's captions: [B, 2] float64, a 64-bit hash of each text as two
// 32-bit halves (equal captions give equal rows).
torch::Tensor caption_match_keys(const std::vector<std::string>& captions);

// A label-prompt class set (TrainConfig::label_prompts): the label's values in the training items, sorted
// (string labels as they are, numbers as JSON writes them; lists, null and "" are not classes), and each value's
// prompt text. class_of() gives an item's class index, or -1 when it has no such value.
struct LabelPromptSet {
  std::string label;
  double weight = 1.0;
  std::vector<std::string> classes, prompts;
  int64_t class_of(const nlohmann::json& labels) const;
};
LabelPromptSet make_label_prompt_set(const std::string& label, const std::string& text_template, double weight,
                                     const std::vector<nlohmann::json>& item_labels);

// An exponential moving average of a model's floating-point state (parameters and buffers, by name): after the
// n-th update (n = 0, 1, ...) avg = d * avg + (1 - d) * current with d = min(decay, (1 + n) / (10 + n)), so the
// early, far-from-trained weights fade quickly. swap() exchanges the model's values with the averages in place
// (again to undo); an Applied guard holds the average in the model for a scope (validation, saving RUN/final).
// save()/load() keep it across --resume. Integer buffers are not averaged (the model's own are used).
class WeightAverage {
 public:
  WeightAverage(const std::vector<std::pair<std::string, torch::Tensor>>& state, double decay);
  static double decay_at(double decay, int64_t n) { return std::min(decay, double(1 + n) / double(10 + n)); }
  void update(int64_t n);
  void swap();
  void save(const std::string& path) const;
  void load(const std::string& path);

  // The average in the model while the guard lives; nothing when given no average.
  class Applied {
   public:
    explicit Applied(WeightAverage* w) : w_(w) {
      if (w_) w_->swap();
    }
    ~Applied() {
      if (w_) w_->swap();
    }
    Applied(const Applied&) = delete;
    Applied& operator=(const Applied&) = delete;

   private:
    WeightAverage* w_;
  };

 private:
  std::vector<torch::Tensor> model_;                        // the model's tensors
  std::vector<std::pair<std::string, torch::Tensor>> avg_;  // their averages, by name
  double decay_;
};

// A line chart as a standalone SVG: several named series of (x, y) points sharing the axes.
struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;
};
std::string line_chart_svg(const std::vector<ChartSeries>& series, const std::string& title, const std::string& x_label,
                           bool log_y = false, int width = 640, int height = 300);

}  // namespace synclap
