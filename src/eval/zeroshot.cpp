// Zero-shot classification: prompt templates, template ensembles in embedding space, accuracies and a
// confusion matrix (see include/synclap/eval.h).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "synclap/error.h"
#include "synclap/eval.h"

namespace synclap {

std::string fill_template(const std::string& templ, const std::string& class_name) {
  std::string out;
  bool placed = false;
  for (size_t i = 0; i < templ.size();) {
    if (templ.compare(i, 2, "{}") == 0) {
      out += class_name;
      i += 2;
      placed = true;
    } else if (templ.compare(i, 7, "{label}") == 0) {
      out += class_name;
      i += 7;
      placed = true;
    } else {
      out += templ[i++];
    }
  }
  if (!placed) out += (out.empty() ? "" : " ") + class_name;
  return out;
}

std::vector<std::string> make_prompts(const std::vector<std::string>& templates,
                                      const std::vector<std::string>& classes) {
  if (templates.empty()) throw Error("zero-shot: no prompt templates");
  std::vector<std::string> out;
  out.reserve(templates.size() * classes.size());
  for (const auto& c : classes)
    for (const auto& t : templates) out.push_back(fill_template(t, c));
  return out;
}

Embeddings class_embeddings(const Embeddings& prompts, int64_t classes, int64_t per_class) {
  if (classes <= 0 || per_class <= 0 || prompts.rows != classes * per_class)
    throw Error("zero-shot: " + std::to_string(prompts.rows) + " prompt embeddings for " + std::to_string(classes) +
                " classes x " + std::to_string(per_class) + " templates");
  Embeddings out;
  out.rows = classes;
  out.dim = prompts.dim;
  out.data.assign(size_t(classes * prompts.dim), 0.f);
  std::vector<double> acc(size_t(prompts.dim));
  for (int64_t c = 0; c < classes; ++c) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t t = 0; t < per_class; ++t) {
      const float* r = prompts.row(c * per_class + t);
      double n = 0;
      for (int64_t d = 0; d < prompts.dim; ++d) n += double(r[d]) * r[d];
      n = n > 0 ? 1.0 / std::sqrt(n) : 0.0;
      for (int64_t d = 0; d < prompts.dim; ++d) acc[size_t(d)] += r[d] * n;
    }
    double n = 0;
    for (double v : acc) n += v * v;
    n = n > 0 ? 1.0 / std::sqrt(n) : 0.0;
    for (int64_t d = 0; d < prompts.dim; ++d) out.data[size_t(c * prompts.dim + d)] = float(acc[size_t(d)] * n);
  }
  return out;
}

ZeroShotResult zero_shot_from_scores(const std::vector<float>& scores, int64_t items,
                                     const std::vector<int64_t>& labels, const std::vector<std::string>& classes) {
  const int64_t C = int64_t(classes.size());
  if (C <= 0) throw Error("zero-shot: no classes");
  if (int64_t(scores.size()) != items * C || int64_t(labels.size()) != items)
    throw Error("zero-shot: " + std::to_string(labels.size()) + " labels and " + std::to_string(scores.size()) +
                " scores for " + std::to_string(items) + " items x " + std::to_string(C) + " classes");
  ZeroShotResult r;
  r.classes = classes;
  r.items = items;
  r.scores = scores;
  r.confusion.assign(size_t(C * C), 0);
  r.per_class_count.assign(size_t(C), 0);
  r.per_class_accuracy.assign(size_t(C), 0.0);
  r.predictions.resize(size_t(items));
  const int64_t k5 = std::min<int64_t>(5, C);
  int64_t hit1 = 0, hit5 = 0;
  for (int64_t i = 0; i < items; ++i) {
    const int64_t y = labels[size_t(i)];
    if (y < 0 || y >= C) throw Error("zero-shot: label " + std::to_string(y) + " out of range");
    const float* s = scores.data() + i * C;
    for (int64_t c = 0; c < C; ++c)
      if (std::isnan(s[c])) throw Error("zero-shot: NaN score");
    int64_t best = 0;
    for (int64_t c = 1; c < C; ++c)
      if (s[c] > s[best]) best = c;
    // rank of the true class: classes that beat it (ties: lower index first, as for the prediction)
    int64_t before = 0;
    for (int64_t c = 0; c < C; ++c)
      if (c != y && (s[c] > s[y] || (s[c] == s[y] && c < y))) ++before;
    r.predictions[size_t(i)] = best;
    hit1 += best == y;
    hit5 += before < k5;
    r.confusion[size_t(y * C + best)]++;
    r.per_class_count[size_t(y)]++;
  }
  if (items > 0) {
    r.top1 = double(hit1) / double(items);
    r.top5 = double(hit5) / double(items);
  }
  double bal = 0;
  int64_t present = 0;
  for (int64_t c = 0; c < C; ++c) {
    if (r.per_class_count[size_t(c)] == 0) continue;
    r.per_class_accuracy[size_t(c)] = double(r.confusion[size_t(c * C + c)]) / double(r.per_class_count[size_t(c)]);
    bal += r.per_class_accuracy[size_t(c)];
    ++present;
  }
  r.balanced_accuracy = present ? bal / double(present) : 0.0;
  return r;
}

ZeroShotResult zero_shot(const Embeddings& audio, const Embeddings& class_emb, const std::vector<int64_t>& labels,
                         const std::vector<std::string>& classes) {
  if (class_emb.rows != int64_t(classes.size()))
    throw Error("zero-shot: " + std::to_string(class_emb.rows) + " class embeddings for " +
                std::to_string(classes.size()) + " classes");
  return zero_shot_from_scores(cosine_matrix(audio, class_emb), audio.rows, labels, classes);
}

}  // namespace synclap
