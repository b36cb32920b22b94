// Text towers (RoBERTa as HF ClapTextModel, the small pre-LN transformer), projection heads and model
// configs. Parity with the reference is in test_clap_golden.cpp; these check the behaviour the golden
// cases do not pin down: padding invariance, limits, initialisation, gradients, config round trips.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "io/torch/checkpoint.h"
#include "model/clap_config.h"
#include "model/clap_model.h"
#include "model/htsat.h"
#include "model/projection.h"
#include "model/roberta.h"
#include "model/small_text.h"
#include "synclap/error.h"
#include "synclap/util.h"
#include "test_support.h"

using namespace synclap;

namespace {

TextConfig small_roberta() {
  TextConfig c;
  c.vocab_size = 60;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 48;
  c.max_position_embeddings = 20;
  return c;
}

TextConfig small_transformer(const std::string& pooling = "mean") {
  TextConfig c = small_roberta();
  c.model_type = "synclap_small_text";
  c.layer_norm_eps = 1e-5;
  c.pooling = pooling;
  return c;
}

// Two sequences: a long one and a short one padded with the pad id (1).
struct Batch {
  torch::Tensor ids, mask;
};
Batch padded_batch() {
  Batch b;
  b.ids = torch::tensor({0, 17, 23, 5, 44, 9, 2, 0, 31, 8, 2, 1, 1, 1}, torch::kInt64).view({2, 7});
  b.mask = b.ids.ne(1).to(torch::kInt64);
  return b;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST(TextModel, RobertaPositionIdsSkipPadding) {
  auto ids = torch::tensor({0, 5, 6, 2, 1, 1, 0, 7, 2, 1, 1, 1}, torch::kInt64).view({2, 6});
  auto want = torch::tensor({2, 3, 4, 5, 1, 1, 2, 3, 4, 1, 1, 1}, torch::kInt64).view({2, 6});
  EXPECT_TRUE(torch::equal(roberta_position_ids(ids, 1), want));
}

TEST(TextModel, AdditiveMaskIsZeroOrLowest) {
  auto m = additive_attention_mask(torch::tensor({1, 1, 0}, torch::kInt64).view({1, 3}), torch::kFloat32);
  ASSERT_EQ(m.sizes(), (std::vector<int64_t>{1, 1, 1, 3}));
  EXPECT_EQ(m[0][0][0][0].item<float>(), 0.0f);
  EXPECT_EQ(m[0][0][0][2].item<float>(), std::numeric_limits<float>::lowest());
}

// A padded sequence gives what it gives alone: padding is invisible to the real tokens and the pooler.
TEST(TextModel, RobertaPaddingIsInvisible) {
  torch::NoGradGuard no_grad;
  RobertaTextModel m(small_roberta());
  m.init_weights(7);
  m.eval();
  Batch b = padded_batch();
  TextOutput both = m.encode(b.ids, b.mask);
  auto alone_ids = b.ids[1].slice(0, 0, 4).unsqueeze(0);
  TextOutput alone = m.encode(alone_ids, torch::ones_like(alone_ids));
  EXPECT_LT(max_diff(both.pooler_output[1], alone.pooler_output[0]), 1e-5);
  EXPECT_LT(max_diff(both.last_hidden_state[1].slice(0, 0, 4), alone.last_hidden_state[0]), 1e-5);
  // Without a mask the pads are attended to, so the result must differ (the mask is really used).
  TextOutput unmasked = m.encode(b.ids, torch::ones_like(b.ids));
  EXPECT_GT(max_diff(unmasked.pooler_output[1], alone.pooler_output[0]), 1e-4);
  EXPECT_LT(max_diff(unmasked.pooler_output[0], both.pooler_output[0]), 1e-6);
}

TEST(TextModel, RobertaLayerNormEpsAndPoolerAreHfs) {
  TextConfig c = small_roberta();
  RobertaTextModel m(c);
  EXPECT_EQ(m.embeddings_norm->options.eps(), 1e-12);
  auto names = m.named_parameters(true).keys();
  auto has = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) != names.end(); };
  EXPECT_TRUE(has("embeddings.word_embeddings.weight"));
  EXPECT_TRUE(has("encoder.layer.1.attention.self.query.weight"));
  EXPECT_TRUE(has("encoder.layer.1.attention.output.LayerNorm.bias"));
  EXPECT_TRUE(has("encoder.layer.0.intermediate.dense.weight"));
  EXPECT_TRUE(has("encoder.layer.0.output.dense.bias"));
  EXPECT_TRUE(has("pooler.dense.weight"));
  auto buffers = m.named_buffers(true);
  ASSERT_TRUE(buffers.contains("embeddings.position_ids"));
  EXPECT_EQ(buffers["embeddings.position_ids"][0][5].item<int64_t>(), 5);
  // Pooler = tanh(dense(first token)).
  torch::NoGradGuard no_grad;
  m.init_weights(3);
  m.eval();
  Batch b = padded_batch();
  TextOutput o = m.encode(b.ids, b.mask);
  auto want = torch::tanh(m.pooler->forward(o.last_hidden_state.select(1, 0)));
  EXPECT_LT(max_diff(o.pooler_output, want), 1e-7);
}

TEST(TextModel, RobertaRefusesTooLongInput) {
  RobertaTextModel m(small_roberta());  // 20 positions, pad 1 -> 18 tokens
  EXPECT_EQ(small_roberta().max_tokens(), 18);
  auto ok = torch::full({1, 18}, 5, torch::kInt64);
  EXPECT_NO_THROW(m.encode(ok, torch::ones_like(ok)));
  auto bad = torch::full({1, 19}, 5, torch::kInt64);
  EXPECT_THROW(m.encode(bad, torch::ones_like(bad)), Error);
}

TEST(TextModel, InitialisationIsSeeded) {
  RobertaTextModel a(small_roberta()), b(small_roberta()), c(small_roberta());
  a.init_weights(11);
  b.init_weights(11);
  c.init_weights(12);
  auto pa = a.parameters(), pb = b.parameters(), pc = c.parameters();
  bool all_same = true, any_diff = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    all_same = all_same && torch::equal(pa[i], pb[i]);
    any_diff = any_diff || !torch::equal(pa[i], pc[i]);
  }
  EXPECT_TRUE(all_same);
  EXPECT_TRUE(any_diff);
  EXPECT_EQ(a.word_embeddings->weight[1].abs().sum().item<float>(), 0.0f);  // the padding row
}

TEST(SmallText, PaddingIsInvisibleForBothPoolings) {
  torch::NoGradGuard no_grad;
  for (const std::string pooling : {"mean", "first"}) {
    SCOPED_TRACE(pooling);
    SmallTextModel m(small_transformer(pooling));
    m.init_weights(5);
    m.eval();
    Batch b = padded_batch();
    TextOutput both = m.encode(b.ids, b.mask);
    ASSERT_EQ(both.pooler_output.sizes(), (std::vector<int64_t>{2, 32}));
    auto alone_ids = b.ids[1].slice(0, 0, 4).unsqueeze(0);
    TextOutput alone = m.encode(alone_ids, torch::ones_like(alone_ids));
    EXPECT_LT(max_diff(both.pooler_output[1], alone.pooler_output[0]), 1e-5);
  }
}

TEST(SmallText, MeanPoolingAveragesRealTokens) {
  torch::NoGradGuard no_grad;
  SmallTextModel m(small_transformer("mean"));
  m.eval();
  Batch b = padded_batch();
  TextOutput o = m.encode(b.ids, b.mask);
  auto want = o.last_hidden_state[1].slice(0, 0, 4).mean(0);
  EXPECT_LT(max_diff(o.pooler_output[1], want), 1e-6);
}

TEST(SmallText, EveryWeightGetsAGradientAndTrainingLowersALoss) {
  torch::manual_seed(0);
  SmallTextModel m(small_transformer());
  m.init_weights(1);
  ProjectionHead head(32, 16, "relu");
  head->init_weights(2);
  m.train();
  Batch b = padded_batch();
  // Pull the two texts' projections apart / towards fixed targets: a loss that must go down.
  auto target = torch::randn({2, 16});
  std::vector<torch::Tensor> params = m.parameters();
  for (auto& p : head->parameters()) params.push_back(p);
  torch::optim::Adam opt(params, torch::optim::AdamOptions(1e-2));
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    auto loss = (head->forward(m.encode(b.ids, b.mask).pooler_output) - target).pow(2).mean();
    loss.backward();
    if (step == 0) {
      for (const auto& p : m.named_parameters(true)) EXPECT_TRUE(p.value().grad().defined()) << p.key();
      first = loss.item<double>();
    }
    last = loss.item<double>();
    opt.step();
  }
  EXPECT_LT(last, 0.5 * first);
}

TEST(Projection, LinearReluLinear) {
  torch::NoGradGuard no_grad;
  ProjectionHead p(6, 4, "relu");
  p->init_weights(9);
  auto x = torch::randn({3, 6});
  auto want = p->linear2->forward(torch::relu(p->linear1->forward(x)));
  EXPECT_LT(max_diff(p->forward(x), want), 1e-7);
  EXPECT_THROW(ProjectionHead(6, 4, "nonsense"), Error);
  auto n = l2_normalize(torch::randn({5, 4}) * 10);
  EXPECT_LT(max_diff(n.norm(2, 1), torch::ones({5})), 1e-6);
  EXPECT_TRUE(torch::equal(l2_normalize(torch::zeros({1, 4})), torch::zeros({1, 4})));  // eps, no NaN
}

TEST(ClapConfigJson, DefaultsAreHfClapConfigDefaults) {
  ClapConfig c = ClapConfig::from_json(nlohmann::json::object());
  EXPECT_EQ(c.projection_dim, 512);
  EXPECT_NEAR(c.logit_scale_init_value, 1 / 0.07, 1e-12);
  EXPECT_EQ(c.projection_hidden_act, "relu");
  EXPECT_TRUE(c.text.is_roberta());
  EXPECT_EQ(c.text.hidden_size, 768);
  EXPECT_EQ(c.text.vocab_size, 50265);
  EXPECT_EQ(c.text.max_position_embeddings, 514);
  EXPECT_EQ(c.text.max_tokens(), 512);
  EXPECT_EQ(c.text.layer_norm_eps, 1e-12);
  EXPECT_EQ(c.audio_hidden_size, 768);
  EXPECT_FALSE(c.enable_fusion);
}

TEST(ClapConfigJson, RoundTripsAndReadsTheGoldenConfigs) {
  for (const auto& f : test::glob_files(test::golden_dir(), "*_config.json")) {
    if (f.find("feature_extractor") != std::string::npos) continue;
    SCOPED_TRACE(f);
    ClapConfig c = ClapConfig::from_file(f);
    const auto raw = nlohmann::json::parse(read_file(f));
    EXPECT_EQ(c.text.layer_norm_eps, raw["text_config"]["layer_norm_eps"].get<double>());
    EXPECT_EQ(c.projection_dim, raw["projection_dim"].get<int64_t>());
    EXPECT_EQ(c.enable_fusion, raw["audio_config"]["enable_fusion"].get<bool>());
    ClapConfig back = ClapConfig::from_json(c.to_json());
    EXPECT_EQ(back.to_json(), c.to_json());
    // The audio tower reads the same settings from either.
    EXPECT_EQ(HtsatConfig::from_hf_audio_config(back.audio_json).to_hf_audio_config(),
              HtsatConfig::from_hf_audio_config(raw["audio_config"]).to_hf_audio_config());
  }
}

TEST(ClapConfigJson, RefusesWhatCannotBuildAModel) {
  auto bad = [](nlohmann::json j) { EXPECT_THROW(ClapConfig::from_json(j), Error) << j.dump(); };
  bad({{"text_config", {{"hidden_size", 30}, {"num_attention_heads", 4}}}});
  bad({{"text_config", {{"model_type", "bert"}}}});
  bad({{"text_config", {{"hidden_act", "sparkle"}}}});
  bad({{"projection_hidden_act", "sparkle"}});
  bad({{"projection_dim", 0}});
  bad({{"text_config", {{"vocab_size", "many"}}}});
  bad({{"text_config", {{"position_embedding_type", "relative_key"}}}});
  bad(nlohmann::json::array());
  EXPECT_THROW(ClapConfig::from_json_string("{not json"), Error);
  EXPECT_THROW(ClapConfig::from_file("/nonexistent/config.json"), FileError);
}

// Every shipped config (configs/*.json) is valid for both towers; the small ones build and run.
TEST(ModelConfigs, ShippedConfigsAreValid) {
  const auto files = test::glob_files(std::string(SYNCLAP_SOURCE_DIR) + "/configs", "*.json");
  torch::NoGradGuard no_grad;
  int models = 0;
  for (const auto& f : files) {
    SCOPED_TRACE(f);
    const auto raw = nlohmann::json::parse(read_file(f));
    if (!raw.is_object() || !raw.contains("audio_config")) continue;  // not a model config
    ++models;
    ClapConfig c = ClapConfig::from_file(f);
    if (c.audio_model_type == "clap_audio_model") {
      HtsatConfig a = HtsatConfig::from_hf_audio_config(c.audio_json);
      EXPECT_NO_THROW(a.validate());
      EXPECT_EQ(a.hidden_size, c.audio_hidden_size);
    }
    if (c.text.is_small()) {
      ClapModel m(c);
      m->init_weights(1);
      m->eval();
      auto feats = torch::randn({2, 1, 1001, 64}) * 20 - 40;
      auto ids = torch::tensor({0, 100, 200, 2, 0, 7, 2, 1}, torch::kInt64).view({2, 4});
      ClapOutput o = m->forward(ids, ids.ne(1), feats, torch::zeros({2}, torch::kBool));
      EXPECT_EQ(o.audio_embeds.sizes(), (std::vector<int64_t>{2, c.projection_dim}));
      EXPECT_EQ(o.text_embeds.sizes(), (std::vector<int64_t>{2, c.projection_dim}));
      EXPECT_TRUE(torch::isfinite(o.logits_per_audio).all().item<bool>());
      std::printf("  %s: %lld parameters\n", c.name.c_str(), (long long)m->num_parameters());
      // Saved and loaded, the model is the same.
      const std::string dir = test::temp_dir("config_" + c.name);
      PreprocessContract contract = PreprocessContract::clap_unfused();
      save_checkpoint(*m, contract, dir);
      LoadedModel l = load_checkpoint(dir);
      EXPECT_TRUE(torch::equal(l.model->audio_embeddings(feats, {}), m->audio_embeddings(feats, {})));
      EXPECT_TRUE(torch::equal(l.model->text_embeddings(ids, ids.ne(1)), o.text_embeds));
    }
  }
  EXPECT_GE(models, 5);
}
