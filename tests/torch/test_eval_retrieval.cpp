// Retrieval and zero-shot metrics against hand-computed values and an independent brute-force ranking.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "synclap/error.h"
#include "synclap/eval.h"

using namespace synclap;

namespace {

Embeddings make_emb(int64_t rows, int64_t dim, std::vector<float> v) {
  Embeddings e;
  e.rows = rows;
  e.dim = dim;
  e.data = std::move(v);
  return e;
}

// Independent reference: for one query, order all candidates by (score desc, relevant after irrelevant on
// ties, then index) with a full sort and read the 1-based positions of the relevant ones.
std::vector<int64_t> positions(const std::vector<float>& scores, const std::vector<bool>& relevant) {
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (scores[a] != scores[b]) return scores[a] > scores[b];
    if (relevant[a] != relevant[b]) return !relevant[a];
    return a < b;
  });
  std::vector<int64_t> pos;
  for (size_t p = 0; p < order.size(); ++p)
    if (relevant[order[p]]) pos.push_back(int64_t(p) + 1);
  return pos;
}

}  // namespace

TEST(EvalRetrieval, PerfectSimilarityGivesRecallOne) {
  // 4 clips, 3 captions each; a caption scores 1 with its clip, 0 elsewhere.
  const int64_t clips = 4, texts = 12;
  std::vector<float> sim(texts * clips, 0.f);
  std::vector<int64_t> tc(texts);
  for (int64_t t = 0; t < texts; ++t) {
    tc[t] = t / 3;
    sim[t * clips + tc[t]] = 1.f;
  }
  const RetrievalResult r = retrieval_metrics(sim, texts, clips, tc);
  for (const RetrievalMetrics* m : {&r.text_to_audio, &r.audio_to_text}) {
    EXPECT_DOUBLE_EQ(m->r1, 1.0);
    EXPECT_DOUBLE_EQ(m->r5, 1.0);
    EXPECT_DOUBLE_EQ(m->r10, 1.0);
    EXPECT_DOUBLE_EQ(m->map10, 1.0);
    EXPECT_DOUBLE_EQ(m->median_rank, 1.0);
    EXPECT_DOUBLE_EQ(m->mean_rank, 1.0);
  }
  EXPECT_EQ(r.text_to_audio.queries, 12);
  EXPECT_EQ(r.audio_to_text.queries, 4);
}

TEST(EvalRetrieval, HandMade3x3KnownRanks) {
  const std::vector<float> sim = {0.9f, 0.1f, 0.5f,   // text 0 -> clip 0: rank 1
                                  0.8f, 0.3f, 0.7f,   // text 1 -> clip 1: rank 3
                                  0.2f, 0.6f, 0.4f};  // text 2 -> clip 2: rank 2
  const RetrievalResult r = retrieval_metrics(sim, 3, 3, {0, 1, 2});
  EXPECT_EQ(r.text_ranks, (std::vector<int64_t>{1, 3, 2}));
  EXPECT_NEAR(r.text_to_audio.r1, 1.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(r.text_to_audio.r5, 1.0);
  EXPECT_NEAR(r.text_to_audio.map10, (1.0 + 1.0 / 3 + 0.5) / 3, 1e-12);
  EXPECT_DOUBLE_EQ(r.text_to_audio.median_rank, 2.0);
  EXPECT_DOUBLE_EQ(r.text_to_audio.mean_rank, 2.0);
  // Columns: clip 0 [0.9 0.8 0.2] -> text 0 first; clip 1 [0.1 0.3 0.6] -> 2nd; clip 2 [0.5 0.7 0.4] -> 3rd.
  EXPECT_EQ(r.clip_best_ranks, (std::vector<int64_t>{1, 2, 3}));
  EXPECT_NEAR(r.audio_to_text.r1, 1.0 / 3, 1e-12);
  EXPECT_NEAR(r.audio_to_text.map10, (1.0 + 0.5 + 1.0 / 3) / 3, 1e-12);
  EXPECT_DOUBLE_EQ(r.audio_to_text.median_rank, 2.0);
}

TEST(EvalRetrieval, MultiCaptionProtocol) {
  // texts 0,1 -> clip 0; texts 2,3 -> clip 1; text 4 -> clip 2.
  const std::vector<float> sim = {0.5f, 0.0f, 0.2f,    //
                                  0.1f, 0.0f, 0.3f,    //
                                  0.9f, 0.8f, 0.1f,    //
                                  0.3f, 0.7f, 0.0f,    //
                                  0.2f, 0.1f, 0.25f};  //
  const RetrievalResult r = retrieval_metrics(sim, 5, 3, {0, 0, 1, 1, 2});
  // Text -> audio, each caption on its own: ranks 1 2 2 1 1.
  EXPECT_EQ(r.text_ranks, (std::vector<int64_t>{1, 2, 2, 1, 1}));
  EXPECT_NEAR(r.text_to_audio.r1, 0.6, 1e-12);
  EXPECT_NEAR(r.text_to_audio.map10, (1 + 0.5 + 0.5 + 1 + 1) / 5.0, 1e-12);
  EXPECT_DOUBLE_EQ(r.text_to_audio.median_rank, 1.0);
  EXPECT_NEAR(r.text_to_audio.mean_rank, 1.4, 1e-12);
  // Audio -> text: clip 0's column [0.5 0.1 0.9 0.3 0.2]: its captions at positions 2 and 5 -> best 2,
  // AP = (1/2 + 2/5) / 2. Clip 1: positions 1, 2 -> AP 1. Clip 2: position 2 -> AP 1/2.
  EXPECT_EQ(r.clip_best_ranks, (std::vector<int64_t>{2, 1, 2}));
  EXPECT_NEAR(r.audio_to_text.r1, 1.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(r.audio_to_text.r5, 1.0);
  EXPECT_NEAR(r.audio_to_text.map10, ((0.5 + 0.4) / 2 + 1.0 + 0.5) / 3, 1e-12);
  EXPECT_DOUBLE_EQ(r.audio_to_text.median_rank, 2.0);
}

TEST(EvalRetrieval, CaptionsBeyondTenDoNotCountInMap) {
  // One clip with 2 captions among 30 texts; its captions rank 1st and 12th.
  const int64_t texts = 30, clips = 2;
  std::vector<float> sim(texts * clips, 0.f);
  std::vector<int64_t> tc(texts, 1);
  tc[0] = 0;
  tc[1] = 0;
  for (int64_t t = 0; t < texts; ++t) sim[t * clips + 0] = float(100 - t);  // text t at position t+1
  // move text 1 down to position 12: give it a score between texts 12 and 13 (positions 12, 13 -> 11th/12th)
  sim[1 * clips + 0] = float(100 - 12) - 0.5f;
  const RetrievalResult r = retrieval_metrics(sim, texts, clips, tc);
  EXPECT_EQ(r.clip_best_ranks[0], 1);
  // AP@10 = (1/1) / 2: the second caption is at position 12 and adds nothing.
  const double clip1_ap = [&] {
    std::vector<float> col(texts);
    std::vector<bool> rel(texts);
    for (int64_t t = 0; t < texts; ++t) {
      col[t] = sim[t * clips + 1];
      rel[t] = tc[t] == 1;
    }
    const auto pos = positions(col, rel);
    double ap = 0;
    for (size_t j = 0; j < pos.size(); ++j)
      if (pos[j] <= 10) ap += double(j + 1) / double(pos[j]);
    return ap / double(pos.size());
  }();
  EXPECT_NEAR(r.audio_to_text.map10, (0.5 + clip1_ap) / 2, 1e-12);
}

TEST(EvalRetrieval, TiesCountAgainstTheQuery) {
  const std::vector<float> sim(4 * 4, 0.25f);
  const RetrievalResult r = retrieval_metrics(sim, 4, 4, {0, 1, 2, 3});
  EXPECT_DOUBLE_EQ(r.text_to_audio.r1, 0.0);
  EXPECT_DOUBLE_EQ(r.audio_to_text.r1, 0.0);
  EXPECT_DOUBLE_EQ(r.text_to_audio.mean_rank, 4.0);
}

TEST(EvalRetrieval, MatchesBruteForceRankingOnRandomMatrices) {
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int trial = 0; trial < 5; ++trial) {
    const int64_t clips = 25, per = 1 + trial % 5, texts = clips * per;
    std::vector<float> sim(texts * clips);
    for (auto& v : sim) v = std::round(u(gen) * 8) / 8;  // coarse values: many ties
    std::vector<int64_t> tc(texts);
    for (int64_t t = 0; t < texts; ++t) tc[t] = t % clips;
    const RetrievalResult r = retrieval_metrics(sim, texts, clips, tc);
    // text -> audio
    double r1 = 0, r10 = 0, map = 0;
    for (int64_t t = 0; t < texts; ++t) {
      std::vector<float> row(sim.begin() + t * clips, sim.begin() + (t + 1) * clips);
      std::vector<bool> rel(clips, false);
      rel[tc[t]] = true;
      const int64_t p = positions(row, rel)[0];
      EXPECT_EQ(r.text_ranks[t], p);
      r1 += p <= 1;
      r10 += p <= 10;
      map += p <= 10 ? 1.0 / p : 0.0;
    }
    EXPECT_NEAR(r.text_to_audio.r1, r1 / texts, 1e-12);
    EXPECT_NEAR(r.text_to_audio.r10, r10 / texts, 1e-12);
    EXPECT_NEAR(r.text_to_audio.map10, map / texts, 1e-12);
    // audio -> text
    double a5 = 0, amap = 0;
    for (int64_t c = 0; c < clips; ++c) {
      std::vector<float> col(texts);
      std::vector<bool> rel(texts);
      for (int64_t t = 0; t < texts; ++t) {
        col[t] = sim[t * clips + c];
        rel[t] = tc[t] == c;
      }
      const auto pos = positions(col, rel);
      EXPECT_EQ(r.clip_best_ranks[c], pos[0]);
      a5 += pos[0] <= 5;
      double ap = 0;
      for (size_t j = 0; j < pos.size(); ++j)
        if (pos[j] <= 10) ap += double(j + 1) / double(pos[j]);
      amap += ap / double(pos.size());
    }
    EXPECT_NEAR(r.audio_to_text.r5, a5 / clips, 1e-12);
    EXPECT_NEAR(r.audio_to_text.map10, amap / clips, 1e-12);
  }
}

TEST(EvalRetrieval, RejectsBadInput) {
  std::vector<float> sim = {1, 0, 0, 1};
  EXPECT_THROW(retrieval_metrics(sim, 2, 2, {0, 2}), Error);
  EXPECT_THROW(retrieval_metrics(sim, 2, 2, {0}), Error);
  sim[1] = std::nanf("");
  EXPECT_THROW(retrieval_metrics(sim, 2, 2, {0, 1}), Error);
}

TEST(EvalRetrieval, CosineMatrixRenormalisesRows) {
  const Embeddings a = make_emb(2, 2, {3, 4, 0, 2});
  const Embeddings b = make_emb(1, 2, {4, 3});
  const auto m = cosine_matrix(a, b);
  ASSERT_EQ(m.size(), 2u);
  EXPECT_NEAR(m[0], 24.0 / 25.0, 1e-6);
  EXPECT_NEAR(m[1], 0.6, 1e-6);
}

TEST(EvalZeroShot, TemplatesAndEnsembleMean) {
  EXPECT_EQ(fill_template("a {} song", "jazz"), "a jazz song");
  EXPECT_EQ(fill_template("music: {label}, {label}", "rock"), "music: rock, rock");
  EXPECT_EQ(fill_template("genre", "pop"), "genre pop");
  const auto prompts = make_prompts({"a {}", "the {}"}, {"x", "y"});
  EXPECT_EQ(prompts, (std::vector<std::string>{"a x", "the x", "a y", "the y"}));
  // class 0 templates embed to e0 and e1 -> mean renormalised (1,1,0)/sqrt2; class 1: e2 and 2*e2 -> e2.
  const Embeddings p = make_emb(4, 3, {1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 2});
  const Embeddings c = class_embeddings(p, 2, 2);
  ASSERT_EQ(c.rows, 2);
  EXPECT_NEAR(c.data[0], std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(c.data[1], std::sqrt(0.5), 1e-6);
  EXPECT_NEAR(c.data[2], 0.0, 1e-7);
  EXPECT_NEAR(c.data[5], 1.0, 1e-6);
  EXPECT_THROW(class_embeddings(p, 3, 2), Error);
}

TEST(EvalZeroShot, HandMadeEmbeddings) {
  // Classes along the axes of R^3; five clips.
  const std::vector<std::string> classes = {"a", "b", "c"};
  const Embeddings cls = make_emb(3, 3, {1, 0, 0, 0, 1, 0, 0, 0, 1});
  const Embeddings audio = make_emb(5, 3,
                                    {0.9f, 0.1f, 0.0f,    // a, predicted a
                                     0.2f, 0.8f, 0.1f,    // b, predicted b
                                     0.7f, 0.6f, 0.0f,    // b, predicted a
                                     0.0f, 0.1f, 0.9f,    // c, predicted c
                                     0.1f, 0.0f, 0.3f});  // a, predicted c
  const ZeroShotResult r = zero_shot(audio, cls, {0, 1, 1, 2, 0}, classes);
  EXPECT_EQ(r.predictions, (std::vector<int64_t>{0, 1, 0, 2, 2}));
  EXPECT_DOUBLE_EQ(r.top1, 3.0 / 5);
  EXPECT_DOUBLE_EQ(r.top5, 1.0);  // 3 classes: top-3
  EXPECT_EQ(r.confusion, (std::vector<int64_t>{1, 0, 1, 1, 1, 0, 0, 0, 1}));
  EXPECT_DOUBLE_EQ(r.per_class_accuracy[0], 0.5);
  EXPECT_DOUBLE_EQ(r.per_class_accuracy[1], 0.5);
  EXPECT_DOUBLE_EQ(r.per_class_accuracy[2], 1.0);
  EXPECT_NEAR(r.balanced_accuracy, 2.0 / 3, 1e-12);
}

TEST(EvalZeroShot, TopFiveAmongSevenClasses) {
  const std::vector<std::string> classes = {"0", "1", "2", "3", "4", "5", "6"};
  // item 0: true class 6 ranked 6th -> top-5 miss; item 1: true class 2 ranked 5th -> top-5 hit.
  const std::vector<float> s = {0.7f, 0.6f, 0.5f, 0.4f, 0.3f, 0.0f, 0.1f,  //
                                0.7f, 0.6f, 0.3f, 0.4f, 0.5f, 0.0f, 0.1f};
  const ZeroShotResult r = zero_shot_from_scores(s, 2, {6, 2}, classes);
  EXPECT_DOUBLE_EQ(r.top1, 0.0);
  EXPECT_DOUBLE_EQ(r.top5, 0.5);
}

TEST(EvalPictures, PngAndSvgWellFormed) {
  const std::vector<int64_t> m = {3, 1, 0, 4};
  const std::string svg = confusion_svg(m, {"rock", "jazz & <blues>"}, "genre");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("jazz &amp; &lt;blues&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">3<"), std::string::npos);
  int w = 0, h = 0;
  const auto rgb = confusion_rgb(m, 2, 10, &w, &h);
  EXPECT_EQ(w, 20);
  EXPECT_EQ(h, 20);
  const std::string png = png_rgb_bytes(rgb, w, h);
  ASSERT_GT(png.size(), 33u);
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(png.substr(12, 4), "IHDR");
  // IHDR CRC of a 20x20 RGB image, computed independently (Python zlib.crc32).
  EXPECT_EQ(png.substr(29, 4), std::string("\x02\xeb\x8a\x5a", 4));
  EXPECT_EQ(png.substr(png.size() - 12), std::string("\0\0\0\0IEND\xae\x42\x60\x82", 12));
}

TEST(EvalPictures, HistogramCountsAndSvg) {
  // 0.0 .. 1.0 in steps of 0.1 into 5 bins of width 0.2: [0, .2) holds 0 and .1, and so on; the last bin is
  // closed and holds .8, .9 and 1.
  std::vector<double> v;
  for (int i = 0; i <= 10; ++i) v.push_back(i / 10.0);
  v.push_back(std::nan(""));  // left out
  const HistogramCounts h = histogram_counts(v, 5);
  EXPECT_DOUBLE_EQ(h.lo, 0.0);
  EXPECT_DOUBLE_EQ(h.hi, 1.0);
  EXPECT_EQ(h.counts, (std::vector<int64_t>{2, 2, 2, 2, 3}));
  const HistogramCounts same = histogram_counts({0.5, 0.5, 0.5}, 4);  // one value: a unit range around it
  EXPECT_DOUBLE_EQ(same.lo, 0.0);
  EXPECT_DOUBLE_EQ(same.hi, 1.0);
  EXPECT_EQ(same.counts, (std::vector<int64_t>{0, 0, 3, 0}));
  EXPECT_THROW(histogram_counts(v, 0), Error);
  const std::string svg = histogram_svg(v, 5, "scores <x>", "cosine");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  size_t bins = 0;
  for (size_t at = svg.find("class=\"bin\""); at != std::string::npos; at = svg.find("class=\"bin\"", at + 1)) ++bins;
  EXPECT_EQ(bins, 5u);
  EXPECT_NE(svg.find("scores &lt;x&gt;"), std::string::npos);
  EXPECT_NE(svg.find("n = 11"), std::string::npos);
  EXPECT_NE(svg.find("mean 0.5"), std::string::npos);
}

TEST(EvalPictures, SignedBars) {
  const std::string svg = bars_svg({"worse.wav", "better & <b>.wav", "zero.wav"}, {0.25, -0.5, 0.0}, "FAD");
  size_t bars = 0;
  for (size_t at = svg.find("class=\"bar\""); at != std::string::npos; at = svg.find("class=\"bar\"", at + 1)) ++bars;
  EXPECT_EQ(bars, 3u);
  EXPECT_NE(svg.find("better &amp; &lt;b&gt;.wav"), std::string::npos);
  // Positive contributions are red, negative blue.
  const size_t worse = svg.find(">worse.wav<"), better = svg.find(">better &amp;");
  ASSERT_NE(worse, std::string::npos);
  ASSERT_NE(better, std::string::npos);
  EXPECT_NE(svg.substr(worse, 300).find("#c0392b"), std::string::npos);
  EXPECT_NE(svg.substr(better, 300).find("#3b6ea8"), std::string::npos);
  EXPECT_THROW(bars_svg({"a"}, {1.0, 2.0}), Error);
}

TEST(EvalRetrieval, AudioToTextMapUsesRankOrder) {
  // One clip with five captions ranked 1..5 in reverse caption order, plus a second clip with one caption.
  // Average precision is 1 (all relevant items first); taking the ranks in caption order instead would give
  // (1/5 + 2/4 + 3/3 + 4/2 + 5/1) / 5 = 1.74.
  const int64_t texts = 6, clips = 2;
  std::vector<float> sim(texts * clips, 0.f);
  for (int64_t t = 0; t < 5; ++t) sim[t * clips + 0] = 0.5f + 0.1f * float(t);
  sim[5 * clips + 1] = 1.f;
  const RetrievalResult r = retrieval_metrics(sim, texts, clips, {0, 0, 0, 0, 0, 1});
  EXPECT_DOUBLE_EQ(r.audio_to_text.map10, 1.0);
  EXPECT_DOUBLE_EQ(r.audio_to_text.r1, 1.0);
}
