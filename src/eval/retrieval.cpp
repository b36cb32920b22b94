// Retrieval metrics (text->audio and audio->text) from a similarity matrix, with several captions per clip
// handled as in the Clotho / AudioCaps evaluation of LAION-CLAP (see include/synclap/eval.h).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "synclap/error.h"
#include "synclap/eval.h"

namespace synclap {
namespace {

// floor(median(x)) over 0-based ranks, + 1 (LAION-CLAP's median_rank).
double median_rank_1based(std::vector<int64_t> ranks0) {
  if (ranks0.empty()) return 0;
  std::sort(ranks0.begin(), ranks0.end());
  const size_t n = ranks0.size();
  const double med = n % 2 ? double(ranks0[n / 2]) : 0.5 * double(ranks0[n / 2 - 1] + ranks0[n / 2]);
  return std::floor(med) + 1;
}

}  // namespace

std::vector<float> cosine_matrix(const Embeddings& a, const Embeddings& b) {
  if (a.dim != b.dim) throw Error("cosine_matrix: embedding sizes differ (" + std::to_string(a.dim) + " vs " +
                                  std::to_string(b.dim) + ")");
  auto norms = [](const Embeddings& e) {
    std::vector<double> n(size_t(e.rows));
    for (int64_t i = 0; i < e.rows; ++i) {
      double s = 0;
      const float* r = e.row(i);
      for (int64_t d = 0; d < e.dim; ++d) s += double(r[d]) * r[d];
      n[size_t(i)] = s > 0 ? 1.0 / std::sqrt(s) : 0.0;
    }
    return n;
  };
  const auto na = norms(a), nb = norms(b);
  std::vector<float> out(size_t(a.rows * b.rows));
  for (int64_t i = 0; i < a.rows; ++i)
    for (int64_t j = 0; j < b.rows; ++j) {
      double s = 0;
      const float *x = a.row(i), *y = b.row(j);
      for (int64_t d = 0; d < a.dim; ++d) s += double(x[d]) * y[d];
      out[size_t(i * b.rows + j)] = float(s * na[size_t(i)] * nb[size_t(j)]);
    }
  return out;
}

RetrievalResult retrieval_metrics(const float* sim, int64_t texts, int64_t clips,
                                  const std::vector<int64_t>& text_clip) {
  if (texts <= 0 || clips <= 0) throw Error("retrieval: need at least one text and one clip");
  if (int64_t(text_clip.size()) != texts)
    throw Error("retrieval: " + std::to_string(text_clip.size()) + " clip indices for " + std::to_string(texts) +
                " texts");
  for (int64_t t = 0; t < texts; ++t) {
    if (text_clip[size_t(t)] < 0 || text_clip[size_t(t)] >= clips)
      throw Error("retrieval: text " + std::to_string(t) + " names clip " + std::to_string(text_clip[size_t(t)]) +
                  " of " + std::to_string(clips));
  }
  for (int64_t i = 0; i < texts * clips; ++i)
    if (std::isnan(sim[i])) throw Error("retrieval: the similarity matrix holds NaN");

  RetrievalResult res;
  res.texts = texts;
  res.clips = clips;

  // Text -> audio: rank of the correct clip = 1 + number of other clips scoring >= it.
  std::vector<int64_t> t2a0(static_cast<size_t>(texts));
  double map_t2a = 0;
  for (int64_t t = 0; t < texts; ++t) {
    const float* row = sim + t * clips;
    const int64_t c = text_clip[size_t(t)];
    const float s = row[c];
    int64_t before = 0;
    for (int64_t j = 0; j < clips; ++j)
      if (j != c && row[j] >= s) ++before;
    t2a0[size_t(t)] = before;
    if (before < 10) map_t2a += 1.0 / double(before + 1);
  }
  res.text_ranks.resize(size_t(texts));
  for (int64_t t = 0; t < texts; ++t) res.text_ranks[size_t(t)] = t2a0[size_t(t)] + 1;
  auto fill = [](RetrievalMetrics& m, const std::vector<int64_t>& ranks0) {
    m.queries = int64_t(ranks0.size());
    if (ranks0.empty()) return;
    double r1 = 0, r5 = 0, r10 = 0, sum = 0;
    for (int64_t r : ranks0) {
      r1 += r < 1;
      r5 += r < 5;
      r10 += r < 10;
      sum += double(r + 1);
    }
    const double n = double(ranks0.size());
    m.r1 = r1 / n;
    m.r5 = r5 / n;
    m.r10 = r10 / n;
    m.mean_rank = sum / n;
    m.median_rank = median_rank_1based(ranks0);
  };
  fill(res.text_to_audio, t2a0);
  res.text_to_audio.map10 = map_t2a / double(texts);

  // Audio -> text: for each clip, rank all texts by sim[t][clip]. A caption's 0-based rank is the number
  // of non-caption texts scoring >= it plus the number of its own captions ranked before it
  // (own captions in score order, ties by index: their mutual order does not change the metrics).
  std::vector<std::vector<int64_t>> captions_of(static_cast<size_t>(clips));
  for (int64_t t = 0; t < texts; ++t) captions_of[size_t(text_clip[size_t(t)])].push_back(t);
  std::vector<int64_t> a2t0;
  double map_a2t = 0;
  res.clip_best_ranks.assign(size_t(clips), 0);
  std::vector<uint8_t> own(static_cast<size_t>(texts));
  for (int64_t c = 0; c < clips; ++c) {
    const auto& caps = captions_of[size_t(c)];
    if (caps.empty()) continue;
    std::vector<float> negatives;
    negatives.reserve(size_t(texts));
    std::fill(own.begin(), own.end(), 0);
    for (int64_t t : caps) own[size_t(t)] = 1;
    for (int64_t t = 0; t < texts; ++t)
      if (!own[size_t(t)]) negatives.push_back(sim[t * clips + c]);
    std::sort(negatives.begin(), negatives.end(), std::greater<float>());
    std::vector<float> cap_scores;
    for (int64_t t : caps) cap_scores.push_back(sim[t * clips + c]);
    std::sort(cap_scores.begin(), cap_scores.end(), std::greater<float>());
    double ap = 0;
    int64_t best = -1;
    for (size_t j = 0; j < cap_scores.size(); ++j) {
      // negatives scoring >= this caption (sorted descending)
      const int64_t neg_before =
          std::upper_bound(negatives.begin(), negatives.end(), cap_scores[j], std::greater<float>()) -
          negatives.begin();
      const int64_t rank0 = neg_before + int64_t(j);
      if (j == 0) best = rank0;
      if (rank0 < 10) ap += double(j + 1) / double(rank0 + 1);
    }
    map_a2t += ap / double(caps.size());
    a2t0.push_back(best);
    res.clip_best_ranks[size_t(c)] = best + 1;
  }
  fill(res.audio_to_text, a2t0);
  if (!a2t0.empty()) res.audio_to_text.map10 = map_a2t / double(a2t0.size());
  return res;
}

}  // namespace synclap
