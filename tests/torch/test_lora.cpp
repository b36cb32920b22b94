// LoRA adapters: B = 0 reproduces the base model, training touches only the adapters, merge() equals
// apply(), safetensors round trip, target resolution (shortcuts, globs, substrings, unknown patterns).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "io/torch/tensor_io.h"
#include "model/clap_model.h"
#include "model/lora.h"
#include "synclap/error.h"
#include "synclap/safetensors.h"
#include "test_support.h"

using namespace synclap;

namespace {

// Narrow HTS-AT (4 blocks) + small text transformer (1 layer), or a 2-layer RoBERTa text tower.
ClapConfig tiny_config(const std::string& text_type = "synclap_small_text") {
  nlohmann::json text = {{"model_type", text_type}, {"vocab_size", 50},      {"hidden_size", 16},
                         {"num_hidden_layers", 1},  {"num_attention_heads", 2}, {"intermediate_size", 32},
                         {"max_position_embeddings", 20}};
  if (text_type == "roberta") text["num_hidden_layers"] = 2;
  nlohmann::json j = {{"synclap_name", "test-lora"},
                      {"audio_config",
                       {{"patch_embeds_hidden_size", 8},
                        {"depths", {1, 1, 1, 1}},
                        {"num_attention_heads", {1, 1, 2, 2}},
                        {"hidden_size", 64}}},
                      {"text_config", text},
                      {"projection_dim", 8}};
  return ClapConfig::from_json(j);
}

ClapModel make_model(uint64_t seed = 1) {
  ClapModel m(tiny_config());
  m->init_weights(seed);
  m->eval();
  return m;
}

struct Batch {
  torch::Tensor ids, mask, feats, longer;
};

Batch make_batch() {
  torch::manual_seed(7);
  Batch b;
  b.ids = torch::randint(3, 50, {2, 6}, torch::kLong);
  b.mask = torch::ones({2, 6}, torch::kLong);
  b.mask[1].slice(0, 4).zero_();
  b.feats = torch::randn({2, 1, 1001, 64}) * 20 - 40;
  b.longer = torch::zeros({2}, torch::kBool);
  return b;
}

// Both projections (before normalisation), concatenated.
torch::Tensor run(ClapModel& m, const Batch& b) {
  auto o = m->forward(b.ids, b.mask, b.feats, b.longer);
  return torch::cat({o.audio_projected.flatten(), o.text_projected.flatten()});
}

std::map<std::string, torch::Tensor> snapshot(const ClapModel& m) {
  std::map<std::string, torch::Tensor> r;
  for (const auto& [k, v] : m->state_tensors()) r[k] = v.detach().clone();
  return r;
}

LoraSpec spec_of(std::vector<std::string> targets, int64_t rank = 2, double alpha = 4.0) {
  LoraSpec s;
  s.rank = rank;
  s.alpha = alpha;
  s.targets = std::move(targets);
  return s;
}

void randomize_b(LoraAdapters& a, uint64_t seed) {
  torch::NoGradGuard ng;
  torch::manual_seed(seed);
  for (auto& [n, t] : a.named_parameters())
    if (n.size() > 7 && n.compare(n.size() - 7, 7, ".lora_B") == 0) t.copy_(torch::randn(t.sizes()) * 0.3);
}

}  // namespace

TEST(Lora, ShortcutsResolveAttentionProjections) {
  auto m = make_model();
  LoraAdapters audio(*m, spec_of({"audio"}), 1);
  auto names = audio.target_names();
  ASSERT_EQ(names.size(), 16u);  // 4 Swin blocks x (query, key, value, output.dense)
  std::set<std::string> got(names.begin(), names.end());
  EXPECT_TRUE(got.count("audio_model.audio_encoder.layers.0.blocks.0.attention.self.query"));
  EXPECT_TRUE(got.count("audio_model.audio_encoder.layers.3.blocks.0.attention.output.dense"));
  EXPECT_FALSE(got.count("audio_model.audio_encoder.layers.0.blocks.0.output.dense"));  // feed-forward

  LoraAdapters text(*m, spec_of({"text"}), 1);
  EXPECT_EQ(text.target_names(),
            (std::vector<std::string>{"text_model.layers.0.attn.qkv", "text_model.layers.0.attn.proj"}));
  // rank 2: A [2, in], B [out, 2] for each.
  EXPECT_EQ(text.num_parameters(), 2 * 16 + 48 * 2 + 2 * 16 + 16 * 2);

  ClapModel rob(tiny_config("roberta"));
  LoraAdapters rt(*rob, spec_of({"text"}), 1);
  EXPECT_EQ(rt.target_names(),
            (std::vector<std::string>{
                "text_model.encoder.layer.0.attention.self.query", "text_model.encoder.layer.0.attention.self.key",
                "text_model.encoder.layer.0.attention.self.value", "text_model.encoder.layer.0.attention.output.dense",
                "text_model.encoder.layer.1.attention.self.query", "text_model.encoder.layer.1.attention.self.key",
                "text_model.encoder.layer.1.attention.self.value",
                "text_model.encoder.layer.1.attention.output.dense"}));
  // Every target name is a Linear whose weight is a state tensor of the model.
  std::set<std::string> state;
  for (const auto& kv : rob->state_tensors()) state.insert(kv.first);
  for (const auto& n : rt.target_names()) EXPECT_TRUE(state.count(n + ".weight")) << n;

  // Globs match whole names; plain patterns are substrings; both together are de-duplicated.
  LoraAdapters g(*m, spec_of({"audio_model.*.self.query", "layers.1.blocks.0.attention.self.query"}), 1);
  EXPECT_EQ(g.target_names().size(), 4u);
  LoraAdapters proj(*m, spec_of({"projection.linear"}), 1);
  EXPECT_EQ(proj.target_names().size(), 4u);
}

// The shipped configurations: every attention projection of each tower, and nothing else.
TEST(Lora, ShortcutsOnShippedConfigs) {
  struct Case {
    const char* file;
    size_t audio, text;
  };
  for (const Case& c : {Case{"tiny-cpu.json", 5 * 4, 4 * 2}, Case{"htsat-tiny.json", 12 * 4, 12 * 4}}) {
    ClapModel m(ClapConfig::from_file(std::string(SYNCLAP_SOURCE_DIR) + "/configs/" + c.file));
    std::set<std::string> state;
    for (const auto& kv : m->state_tensors()) state.insert(kv.first);
    LoraAdapters a(*m, spec_of({"audio"}), 1), t(*m, spec_of({"text"}), 1);
    EXPECT_EQ(a.target_names().size(), c.audio) << c.file;
    EXPECT_EQ(t.target_names().size(), c.text) << c.file;
    for (const auto* ad : {&a, &t})
      for (const auto& n : ad->target_names()) {
        EXPECT_TRUE(state.count(n + ".weight")) << c.file << " " << n;
        EXPECT_TRUE(n.find(".attn.") != std::string::npos || n.find(".attention.") != std::string::npos) << n;
      }
  }
}

TEST(Lora, UnknownPatternAndBadSpecThrow) {
  auto m = make_model();
  EXPECT_THROW(LoraAdapters(*m, spec_of({"no.such.layer"}), 1), Error);
  EXPECT_THROW(LoraAdapters(*m, spec_of({"audio", "text_model.*.nothing"}), 1), Error);
  EXPECT_THROW(LoraAdapters(*m, spec_of({"text"}, 0), 1), Error);
  EXPECT_THROW(LoraAdapters(*m, spec_of({"text"}, 100), 1), Error);  // rank > layer size
  EXPECT_THROW(LoraSpec::from_json({{"rank", -1}}), Error);
  EXPECT_THROW(LoraSpec::from_json({{"alpha", "x"}}), Error);
  EXPECT_THROW(LoraSpec::from_json({{"targets", "audio"}}), Error);
  EXPECT_THROW(LoraSpec::from_json({{"rnak", 4}}), Error);
  auto s = LoraSpec::from_json({{"rank", 4}, {"alpha", 8.0}, {"targets", {"audio", "text"}}});
  EXPECT_EQ(s.rank, 4);
  EXPECT_DOUBLE_EQ(s.alpha, 8.0);
  EXPECT_EQ(s.targets, (std::vector<std::string>{"audio", "text"}));
  EXPECT_EQ(LoraSpec::from_json(s.to_json()).to_json(), s.to_json());
}

TEST(Lora, StateTensorsUnchangedByAdapters) {
  auto m = make_model();
  auto before = m->state_tensors();
  const auto nparams = m->parameters().size();
  LoraAdapters a(*m, spec_of({"audio", "text"}), 3);
  a.apply();
  auto after = m->state_tensors();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(after[i].first, before[i].first);
    EXPECT_TRUE(after[i].second.is_same(before[i].second)) << after[i].first;  // the very same tensors
  }
  EXPECT_EQ(m->parameters().size(), nparams);
  a.restore();
}

TEST(Lora, ZeroBReproducesBaseModel) {
  auto m = make_model();
  auto b = make_batch();
  torch::NoGradGuard ng;
  auto base = run(m, b);
  LoraAdapters a(*m, spec_of({"audio", "text", "projection"}), 5);
  a.apply();
  auto adapted = run(m, b);
  EXPECT_TRUE(torch::equal(adapted, base));  // W + s * 0 * A == W exactly
  a.restore();
  EXPECT_TRUE(torch::equal(run(m, b), base));
}

TEST(Lora, GradientStepChangesOnlyAdapters) {
  auto m = make_model();
  auto b = make_batch();
  torch::Tensor base;
  {
    torch::NoGradGuard ng;
    base = run(m, b);
  }
  auto snap = snapshot(m);
  LoraAdapters a(*m, spec_of({"audio", "text"}), 5);
  // Base parameters stay trainable here on purpose: the adapted weights must still not reach them.
  for (int step = 0; step < 2; ++step) {
    a.apply();
    auto out = m->forward(b.ids, b.mask, b.feats, b.longer);
    auto loss = torch::cross_entropy_loss(out.logits_per_audio, torch::arange(2)) +
                out.text_projected.pow(2).sum() + out.audio_projected.pow(2).sum();
    for (auto& p : a.parameters()) p.mutable_grad() = torch::Tensor();
    loss.backward();
    double sum_a = 0, sum_b = 0;
    for (auto& [n, p] : a.named_parameters()) {
      ASSERT_TRUE(p.grad().defined()) << n;
      const double g = p.grad().abs().sum().item<double>();
      (n.find("lora_A") != std::string::npos ? sum_a : sum_b) += g;
    }
    EXPECT_GT(sum_b, 0.0);
    if (step == 0)
      EXPECT_EQ(sum_a, 0.0);  // B = 0 -> dL/dA = s B^T dL/dW = 0
    else
      EXPECT_GT(sum_a, 0.0);
    // Target weights are never part of the graph.
    for (const auto& n : a.target_names())
      for (const auto& item : m->named_parameters())
        if (item.key() == n + ".weight") EXPECT_FALSE(item.value().grad().defined()) << item.key();
    {
      torch::NoGradGuard ng;
      for (auto& p : a.parameters()) p.sub_(p.grad(), 0.5);
    }
    a.restore();
  }
  // No state tensor changed; the adapted model differs from the base, the restored one does not.
  for (const auto& [k, v] : m->state_tensors()) EXPECT_TRUE(torch::equal(v, snap.at(k))) << k;
  torch::NoGradGuard ng;
  a.apply();
  EXPECT_GT((run(m, b) - base).abs().max().item<double>(), 1e-4);
  a.restore();
  EXPECT_TRUE(torch::equal(run(m, b), base));
}

TEST(Lora, MergeMatchesApply) {
  auto m = make_model();
  auto b = make_batch();
  torch::NoGradGuard ng;
  auto snap = snapshot(m);
  LoraAdapters a(*m, spec_of({"audio", "text"}, 4, 8.0), 9);
  randomize_b(a, 11);
  a.apply();
  auto adapted = run(m, b);
  a.restore();
  EXPECT_GT((run(m, b) - adapted).abs().max().item<double>(), 1e-4);
  a.merge();
  auto merged = run(m, b);
  EXPECT_TRUE(torch::allclose(merged, adapted, 1e-5, 1e-5)) << (merged - adapted).abs().max().item<double>();
  // merge() changed exactly the target weights and zeroed B (apply() is now a no-op).
  std::set<std::string> targets;
  for (const auto& n : a.target_names()) targets.insert(n + ".weight");
  for (const auto& [k, v] : m->state_tensors()) EXPECT_EQ(!torch::equal(v, snap.at(k)), targets.count(k) == 1) << k;
  a.apply();
  EXPECT_TRUE(torch::equal(run(m, b), merged));
}

TEST(Lora, SaveLoadRoundTrip) {
  const std::string dir = test::temp_dir("lora_roundtrip");
  auto m = make_model();
  auto b = make_batch();
  torch::NoGradGuard ng;
  LoraAdapters a(*m, spec_of({"audio", "text_model.*.attn.qkv"}, 2, 3.0), 13);
  randomize_b(a, 17);
  a.apply();
  auto adapted = run(m, b);
  a.restore();
  a.save(dir + "/adapters.safetensors", {{"step", "42"}});

  {
    SafetensorsReader r(dir + "/adapters.safetensors");
    EXPECT_EQ(r.metadata().at("step"), "42");
    auto spec = nlohmann::json::parse(r.metadata().at("synclap_lora"));
    EXPECT_EQ(spec["rank"], 2);
    EXPECT_EQ(spec["modules"].size(), 17u);
    EXPECT_EQ(r.names().size(), 34u);
  }

  auto m2 = make_model();  // same base weights, fresh
  auto loaded = LoraAdapters::load(*m2, dir + "/adapters.safetensors");
  EXPECT_EQ(loaded.target_names(), a.target_names());
  EXPECT_EQ(loaded.spec().to_json(), a.spec().to_json());
  auto pa = a.named_parameters(), pb = loaded.named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_EQ(pa[i].first, pb[i].first);
    EXPECT_TRUE(torch::equal(pa[i].second, pb[i].second)) << pa[i].first;
    EXPECT_TRUE(pb[i].second.requires_grad());
  }
  loaded.apply();
  EXPECT_TRUE(torch::equal(run(m2, b), adapted));

  // A file that is not an adapter file, and adapters for a model with other layers, are FileErrors.
  write_tensors(dir + "/plain.safetensors", {{"x", torch::zeros({2})}});
  EXPECT_THROW(LoraAdapters::load(*m2, dir + "/plain.safetensors"), FileError);
  ClapModel rob(tiny_config("roberta"));
  try {
    LoraAdapters::load(*rob, dir + "/adapters.safetensors");
    ADD_FAILURE() << "no FileError";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("adapters.safetensors"), std::string::npos) << e.what();
  }
}
