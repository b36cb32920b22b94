// The public inference API (synclap/model.h) on the golden tiny models: embeddings equal the reference's,
// whatever the batching; windows average; inputs are validated.
#include <gtest/gtest.h>

#include <cmath>

#include "io/torch/tensor_io.h"
#include "model/model_internal.h"
#include "synclap/error.h"
#include "synclap/model.h"
#include "synclap/safetensors.h"
#include "test_support.h"

using namespace synclap;

namespace {

std::string golden(const std::string& name) { return test::golden_dir() + "/" + name; }

// The unpadded token sequences of a case.
std::vector<std::vector<int64_t>> case_texts(const SafetensorsReader& r) {
  auto ids = read_tensor(r, "input_ids");
  auto mask = read_tensor(r, "attention_mask");
  std::vector<std::vector<int64_t>> out;
  for (int64_t i = 0; i < ids.size(0); ++i) {
    std::vector<int64_t> seq;
    for (int64_t j = 0; j < ids.size(1); ++j)
      if (mask[i][j].item<int64_t>()) seq.push_back(ids[i][j].item<int64_t>());
    out.push_back(seq);
  }
  return out;
}

double max_diff(const Embeddings& e, const torch::Tensor& want) {
  return (to_tensor(e) - want).abs().max().item<double>();
}

}  // namespace

TEST(ModelApi, TextEmbeddingsMatchTheReferenceForAnyBatching) {
  const std::string c = golden("case_tiny_unfused.safetensors");
  if (!test::file_exists(c)) GTEST_SKIP() << "no golden case";
  SafetensorsReader r(c);
  const auto texts = case_texts(r);
  const auto want = read_tensor(r, "text_embeds");
  for (int batch : {1, 3, 64}) {
    ModelOptions o;
    o.text_batch = batch;
    Model m = Model::load(golden("tiny_unfused_weights.safetensors"), o);
    Embeddings e = m.embed_text(texts);
    ASSERT_EQ(e.rows, int64_t(texts.size()));
    ASSERT_EQ(e.dim, 32);
    EXPECT_LT(max_diff(e, want), 1e-4) << "text_batch " << batch;
  }
}

TEST(ModelApi, AudioEmbeddingsMatchTheReference) {
  for (const std::string name : {"tiny_unfused", "tiny_fused"}) {
    const std::string c = golden("case_" + name + ".safetensors");
    if (!test::file_exists(c)) GTEST_SKIP() << "no golden case";
    SCOPED_TRACE(name);
    SafetensorsReader r(c);
    auto feats = read_tensor(r, "input_features").contiguous();
    auto longer = read_tensor(r, "is_longer").reshape({-1});
    ModelOptions o;
    o.audio_batch = 1;  // batching must not matter
    Model m = Model::load(golden(name + "_weights.safetensors"), o);
    EXPECT_EQ(m.info().fused, name == "tiny_fused");
    EXPECT_EQ(m.contract().channels(), int(feats.size(1)));
    std::vector<uint8_t> flags;
    for (int64_t i = 0; i < longer.size(0); ++i) flags.push_back(uint8_t(longer[i].item<int64_t>()));
    Embeddings e = m.embed_audio_features(feats.data_ptr<float>(), feats.size(0), feats.size(1), feats.size(2),
                                          feats.size(3), flags);
    EXPECT_LT(max_diff(e, read_tensor(r, "audio_embeds")), 1e-4);
    // The same through LogMel clips, and logits.
    std::vector<LogMel> clips;
    for (int64_t i = 0; i < feats.size(0); ++i) {
      LogMel l;
      l.channels = int(feats.size(1));
      l.frames = int(feats.size(2));
      l.bins = int(feats.size(3));
      l.is_longer = flags[size_t(i)];
      auto row = feats[i].contiguous();
      l.data.assign(row.data_ptr<float>(), row.data_ptr<float>() + row.numel());
      clips.push_back(std::move(l));
    }
    Embeddings e2 = m.embed_audio(clips);
    EXPECT_LT(max_diff(e2, read_tensor(r, "audio_embeds")), 1e-4);
    Embeddings t = m.embed_text(case_texts(r));
    auto la = m.logits_per_audio(e2, t);
    auto lt = m.logits_per_text(t, e2);
    auto want_a = read_tensor(r, "logits_per_audio");
    auto want_t = read_tensor(r, "logits_per_text");
    ASSERT_EQ(int64_t(la.size()), want_a.numel());
    for (size_t i = 0; i < la.size(); ++i) EXPECT_NEAR(la[i], want_a.view({-1})[int64_t(i)].item<float>(), 1e-3);
    for (size_t i = 0; i < lt.size(); ++i) EXPECT_NEAR(lt[i], want_t.view({-1})[int64_t(i)].item<float>(), 1e-3);
  }
}

TEST(ModelApi, WindowsAreAveragedAndRenormalised) {
  const std::string w = golden("tiny_unfused_weights.safetensors");
  const std::string c = golden("case_tiny_unfused.safetensors");
  if (!test::file_exists(c)) GTEST_SKIP() << "no golden case";
  Model m = Model::load(w);
  auto feats = read_tensor(SafetensorsReader(c), "input_features").contiguous();  // [3, 1, 1001, 64]
  LogMel clip;
  clip.windows = 2;
  clip.channels = 1;
  clip.frames = int(feats.size(2));
  clip.bins = int(feats.size(3));
  auto two = feats.slice(0, 0, 2).contiguous();
  clip.data.assign(two.data_ptr<float>(), two.data_ptr<float>() + two.numel());
  Embeddings one = m.embed_audio({clip});
  Embeddings each = m.embed_audio_features(two.data_ptr<float>(), 2, 1, clip.frames, clip.bins);
  auto mean = to_tensor(each).mean(0, true);
  auto want = mean / mean.norm();
  ASSERT_EQ(one.rows, 1);
  EXPECT_LT(max_diff(one, want), 1e-6);
  EXPECT_NEAR(to_tensor(one).norm().item<double>(), 1.0, 1e-5);
}

TEST(ModelApi, RefusesBadInputs) {
  const std::string w = golden("tiny_unfused_weights.safetensors");
  if (!test::file_exists(w)) GTEST_SKIP() << "no golden weights";
  Model m = Model::load(w);
  EXPECT_EQ(m.info().max_text_tokens, 78);  // 80 positions, pad id 1: positions 2..79
  EXPECT_EQ(m.info().vocab_size, 1000);
  EXPECT_NEAR(std::log(m.info().logit_scale_audio) - std::log(m.info().logit_scale_text), 0.25, 1e-5);
  EXPECT_THROW(m.embed_text({{}}), Error);
  EXPECT_THROW(m.embed_text({std::vector<int64_t>(79, 5)}), Error);
  EXPECT_THROW(m.embed_text({{0, 1000, 2}}), Error);
  EXPECT_EQ(m.embed_text({}).rows, 0);
  std::vector<float> f(2 * 1001 * 64);
  EXPECT_THROW(m.embed_audio_features(f.data(), 1, 2, 1001, 64), Error);  // unfused model: 1 channel
  EXPECT_THROW(m.embed_audio_features(f.data(), 1, 1, 1001, 32), Error);  // wrong bins
  EXPECT_THROW(Model::load("/nonexistent/model"), FileError);
  ModelOptions bad;
  bad.device = "toaster";
  EXPECT_THROW(Model::load(w, bad), Error);
}
