// synclap: the trainer's building blocks (internal: LibTorch types). Each is tested on its own.
#pragma once
#include <torch/torch.h>

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
ContrastiveLoss contrastive_loss(const torch::Tensor& audio, const torch::Tensor& text, const torch::Tensor& log_scale_a,
                                 const torch::Tensor& log_scale_t, Distributed* dist = nullptr);

// A line chart as a standalone SVG: several named series of (x, y) points sharing the axes.
struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;
};
std::string line_chart_svg(const std::vector<ChartSeries>& series, const std::string& title, const std::string& x_label,
                           bool log_y = false, int width = 640, int height = 300);

}  // namespace synclap
