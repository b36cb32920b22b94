// The trainer: loss, schedule, parameter groups, config; end-to-end runs on a tiny dataset (learning,
// checkpoints, exact resume, freezing, LoRA, non-finite steps).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/torch/checkpoint.h"
#include "synclap/bpe_trainer.h"
#include "synclap/audio.h"
#include "synclap/error.h"
#include "synclap/model.h"
#include "synclap/safetensors.h"
#include "synclap/train.h"
#include "synclap/util.h"
#include "test_support.h"
#include "train/train_internal.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace synclap;
using namespace synclap::test;

namespace {

// Plain-loop reference of the symmetric InfoNCE loss.
// Symmetric InfoNCE by plain loops; with `groups`, every j in i's group is a match and i's target is spread
// evenly over them.
double reference_loss(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& t, double sa,
                      double st, const std::vector<int>& groups = {}) {
  const size_t n = a.size();
  auto dot = [](const std::vector<double>& x, const std::vector<double>& y) {
    double s = 0;
    for (size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
    return s;
  };
  double total = 0;
  for (size_t i = 0; i < n; ++i) {
    double za = 0, zt = 0;
    for (size_t j = 0; j < n; ++j) {
      za += std::exp(sa * dot(a[i], t[j]));
      zt += std::exp(st * dot(t[i], a[j]));
    }
    std::vector<size_t> matches;
    for (size_t j = 0; j < n; ++j)
      if (groups.empty() ? j == i : groups[j] == groups[i]) matches.push_back(j);
    for (size_t j : matches)
      total += (-(sa * dot(a[i], t[j]) - std::log(za)) - (st * dot(t[i], a[j]) - std::log(zt))) / double(matches.size());
  }
  return total / (2.0 * double(n));
}

std::vector<std::vector<double>> normalized_rows(const torch::Tensor& x) {
  std::vector<std::vector<double>> out;
  auto xn = x / x.norm(2, 1, true);
  for (int64_t i = 0; i < xn.size(0); ++i) {
    std::vector<double> r;
    for (int64_t j = 0; j < xn.size(1); ++j) r.push_back(xn[i][j].item<double>());
    out.push_back(r);
  }
  return out;
}

// A tiny dataset: 24 one-second clips of 4 kinds (low/high pitch x steady/pulsing), captions naming them.
std::string make_dataset(const std::string& name, int clips = 24, bool nan_audio = false) {
  const std::string dir = temp_dir(name);
  fs::create_directories(dir + "/audio");
  std::ofstream m(dir + "/manifest.jsonl");
  const char* pitch[] = {"low", "high"};
  const char* rhythm[] = {"steady", "pulsing"};
  for (int i = 0; i < clips; ++i) {
    const int p = i % 2, r = (i / 2) % 2;
    Waveform w;
    w.sample_rate = 48000;
    w.samples.resize(48000);
    const double f = (p ? 1760.0 : 220.0) * (1.0 + 0.01 * (i % 5));
    for (size_t k = 0; k < w.samples.size(); ++k) {
      const double env = r ? (std::fmod(k / 48000.0 * 8.0, 1.0) < 0.5 ? 1.0 : 0.0) : 1.0;
      w.samples[k] = float(0.4 * env * std::sin(2 * M_PI * f * double(k) / 48000.0));
    }
    if (nan_audio) w.samples[100] = std::nanf("");
    char fn[32];
    std::snprintf(fn, sizeof fn, "audio/%04d.wav", i);
    write_audio(dir + "/" + fn, w);
    const std::string split = i < clips - 8 ? "train" : "val";
    json rec{{"id", fn},
             {"audio", fn},
             {"captions",
              {std::string("a ") + pitch[p] + " " + rhythm[r] + " tone",
               std::string("a ") + rhythm[r] + " sound with a " + pitch[p] + " pitch"}},
             {"labels", {{"pitch", pitch[p]}, {"rhythm", rhythm[r]}}},
             {"split", split},
             {"duration", 1.0}};
    m << rec.dump() << "\n";
  }
  return dir;
}

// A very small model: CNN audio tower and a 2-layer text transformer; no dropout (deterministic).
json tiny_model() {
  return json::parse(R"({
    "model_type": "clap",
    "audio_config": {"model_type": "cnn_audio", "num_mel_bins": 64, "in_channels": 1, "channels": [4, 8, 16],
                     "convs_per_block": 1, "hidden_size": 16, "dropout": 0.0},
    "text_config": {"model_type": "synclap_small_text", "vocab_size": 320, "hidden_size": 32, "num_hidden_layers": 2,
                    "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 40,
                    "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0, "pooling": "mean"},
    "projection_dim": 16, "logit_scale_init_value": 14.285714285714285})");
}

// Options for a run on `data` into a fresh test directory `out_name`, with no progress output.
TrainOptions quiet_options(const std::string& data, const std::string& out_name) {
  TrainOptions o;
  o.data = data;
  o.out = temp_dir(out_name);
  o.progress = false;
  return o;
}

TrainConfig tiny_config(int64_t steps) {
  json j{{"model", tiny_model()}, {"batch_size", 8},  {"max_steps", steps}, {"lr", 3e-3},
         {"warmup_steps", 2},     {"workers", 2},     {"cache_dir", "none"}, {"log_every", 1},
         {"checkpoint_every", 0}, {"max_val_items", 8}, {"threads", 1},      {"seed", 7}};
  return TrainConfig::from_json(j.dump());
}

std::map<std::string, torch::Tensor> weights_of(const std::string& ckpt) {
  LoadedModel m = load_checkpoint(ckpt);
  std::map<std::string, torch::Tensor> out;
  for (auto& kv : m.model->state_tensors()) out[kv.first] = kv.second.clone();
  return out;
}

double max_diff(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b,
                const std::string& prefix = "") {
  double d = 0;
  for (const auto& [k, v] : a)
    if (k.rfind(prefix, 0) == 0 && v.is_floating_point()) d = std::max(d, (v - b.at(k)).abs().max().item<double>());
  return d;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> out;
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

// Two finished runs agree: final weights within `weight_tol`, and the same training steps logged with losses
// within 1e-5. Returns the number of training steps compared.
int expect_same_runs(const std::string& run_a, const std::string& run_b, double weight_tol) {
  EXPECT_LE(max_diff(weights_of(run_a + "/final"), weights_of(run_b + "/final")), weight_tol);
  auto la = read_jsonl(run_a + "/metrics.jsonl"), lb = read_jsonl(run_b + "/metrics.jsonl");
  EXPECT_EQ(la.size(), lb.size());
  int steps = 0;
  for (size_t i = 0; i < std::min(la.size(), lb.size()); ++i)
    if (la[i]["type"] == "train") {
      EXPECT_NEAR(la[i]["loss"].get<double>(), lb[i]["loss"].get<double>(), 1e-5) << i;
      ++steps;
    }
  return steps;
}

}  // namespace

TEST(TrainLoss, MatchesPlainLoopReference) {
  torch::manual_seed(3);
  auto a = torch::randn({5, 4}), t = torch::randn({5, 4});
  auto an = a / a.norm(2, 1, true), tn = t / t.norm(2, 1, true);
  auto la = torch::tensor(std::log(10.0)), lt = torch::tensor(std::log(20.0));
  auto out = contrastive_loss(an, tn, la, lt);
  EXPECT_NEAR(out.loss.item<double>(), reference_loss(normalized_rows(a), normalized_rows(t), 10.0, 20.0), 1e-5);
  // Perfectly aligned pairs with a sharp temperature: loss near 0, accuracy 1.
  auto e = torch::eye(4);
  auto sharp = contrastive_loss(e, e, torch::tensor(std::log(100.0)), torch::tensor(std::log(100.0)));
  EXPECT_LT(sharp.loss.item<double>(), 1e-6);
  EXPECT_DOUBLE_EQ(sharp.accuracy.item<double>(), 1.0);
  // Uniform similarities: log(B).
  auto same = torch::ones({4, 3}) / std::sqrt(3.0);
  EXPECT_NEAR(contrastive_loss(same, same, torch::tensor(0.0), torch::tensor(0.0)).loss.item<double>(), std::log(4.0),
              1e-6);
}

// "positives": "same_caption": pairs with equal captions are matches too. Distinct captions give the plain loss.
TEST(TrainLoss, SameCaptionPositives) {
  torch::manual_seed(5);
  auto a = torch::randn({6, 4}), t = torch::randn({6, 4});
  auto an = a / a.norm(2, 1, true), tn = t / t.norm(2, 1, true);
  auto la = torch::tensor(std::log(10.0)), lt = torch::tensor(std::log(20.0));
  const std::vector<std::string> caps{"a fast techno track", "jazz", "a fast techno track", "rock", "jazz", "pop"};
  auto keys = caption_match_keys(caps);
  ASSERT_EQ(keys.sizes(), (std::vector<int64_t>{6, 2}));
  EXPECT_TRUE(torch::equal(keys[0], keys[2]));
  EXPECT_FALSE(torch::equal(keys[0], keys[1]));
  auto out = contrastive_loss(an, tn, la, lt, nullptr, keys);
  EXPECT_NEAR(out.loss.item<double>(),
              reference_loss(normalized_rows(a), normalized_rows(t), 10.0, 20.0, {0, 1, 0, 2, 1, 3}), 1e-5);
  // Against the plain loss: different, and equal once every caption differs.
  EXPECT_GT(std::fabs(out.loss.item<double>() - contrastive_loss(an, tn, la, lt).loss.item<double>()), 1e-3);
  auto distinct = caption_match_keys({"a", "b", "c", "d", "e", "f"});
  EXPECT_NEAR(contrastive_loss(an, tn, la, lt, nullptr, distinct).loss.item<double>(),
              contrastive_loss(an, tn, la, lt).loss.item<double>(), 1e-6);
  // Two clips with the same caption and the same embedding: either one is a right answer for the other.
  auto e = torch::eye(3).index_select(0, torch::tensor({0, 0, 1, 2}));
  auto dup = caption_match_keys({"x", "x", "y", "z"});
  auto sharp = contrastive_loss(e, e, torch::tensor(std::log(100.0)), torch::tensor(std::log(100.0)), nullptr, dup);
  EXPECT_DOUBLE_EQ(sharp.accuracy.item<double>(), 1.0);
  EXPECT_NEAR(sharp.loss.item<double>(), 0.5 * std::log(2.0), 1e-6);  // rows 0, 1: log 2 each; rows 2, 3: ~0
  EXPECT_THROW(contrastive_loss(an, tn, la, lt, nullptr, torch::zeros({5, 2}, torch::kDouble)), Error);
}

TEST(TrainLoss, LabelPromptClasses) {
  std::vector<nlohmann::json> labels = {nlohmann::json::parse(R"({"genre": "rock", "bpm": 120})"),
                                        nlohmann::json::parse(R"({"genre": "jazz", "bpm": 90, "lead": null})"),
                                        nlohmann::json::parse(R"({"genre": ["a", "b"]})"),
                                        nlohmann::json::parse(R"({"genre": "", "bpm": 120})"),
                                        nlohmann::json::parse(R"({"genre": "rock"})")};
  auto g = make_label_prompt_set("genre", "a {} track", 0.5, labels);
  EXPECT_EQ(g.classes, (std::vector<std::string>{"jazz", "rock"}));
  EXPECT_EQ(g.prompts, (std::vector<std::string>{"a jazz track", "a rock track"}));
  EXPECT_DOUBLE_EQ(g.weight, 0.5);
  EXPECT_EQ(g.class_of(labels[0]), 1);
  EXPECT_EQ(g.class_of(labels[1]), 0);
  EXPECT_EQ(g.class_of(labels[2]), -1);  // a list is not a class
  EXPECT_EQ(g.class_of(labels[3]), -1);  // nor an empty value
  EXPECT_EQ(g.class_of(nlohmann::json::parse(R"({"genre": "metal"})")), -1);  // not in training
  auto b = make_label_prompt_set("bpm", "{} BPM", 1.0, labels);
  EXPECT_EQ(b.prompts, (std::vector<std::string>{"120 BPM", "90 BPM"}));
  EXPECT_THROW(make_label_prompt_set("lead", "{} lead", 1.0, labels), Error);  // no values
  EXPECT_THROW(make_label_prompt_set("mood", "{} music", 1.0, labels), Error);  // no such label
}

TEST(TrainLoss, GradientReachesBothTemperatures) {
  torch::manual_seed(4);
  auto a = torch::randn({6, 8}), t = torch::randn({6, 8});
  a = (a / a.norm(2, 1, true)).requires_grad_(true);
  t = (t / t.norm(2, 1, true)).requires_grad_(true);
  auto la = torch::tensor(2.0, torch::requires_grad()), lt = torch::tensor(2.5, torch::requires_grad());
  contrastive_loss(a, t, la, lt).loss.backward();
  EXPECT_NE(la.grad().item<double>(), 0.0);
  EXPECT_NE(lt.grad().item<double>(), 0.0);
  EXPECT_NE(la.grad().item<double>(), lt.grad().item<double>());
}

TEST(TrainSchedule, WarmupThenCosine) {
  EXPECT_DOUBLE_EQ(lr_factor(0, 100, 10, "cosine", 0.0), 0.1);
  EXPECT_DOUBLE_EQ(lr_factor(9, 100, 10, "cosine", 0.0), 1.0);
  EXPECT_NEAR(lr_factor(10, 100, 10, "cosine", 0.0), 1.0, 1e-12);
  // The decay would reach the floor one step after the last: the last step still learns a little.
  EXPECT_NEAR(lr_factor(99, 100, 10, "cosine", 0.0), 0.5 * (1 + std::cos(M_PI * 89.0 / 90.0)), 1e-12);
  EXPECT_GT(lr_factor(99, 100, 10, "cosine", 0.0), 0.0);
  EXPECT_NEAR(lr_factor(99, 100, 10, "cosine", 0.1), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 89.0 / 90.0)), 1e-12);
  EXPECT_NEAR(lr_factor(55, 100, 10, "cosine", 0.0), 0.5, 1e-12);  // half way through the decay
  EXPECT_NEAR(lr_factor(54, 100, 10, "linear", 0.0), 1.0 - 44.0 / 90.0, 1e-12);
  EXPECT_DOUBLE_EQ(lr_factor(70, 100, 10, "constant", 0.0), 1.0);
  EXPECT_DOUBLE_EQ(lr_factor(5, 100, 0, "constant", 0.0), 1.0);
}

TEST(TrainGroups, NamesAndDecay) {
  EXPECT_EQ(param_group_of("audio_model.audio_encoder.patch_embed.proj.weight"), "audio");
  EXPECT_EQ(param_group_of("text_model.encoder.layer.0.attention.self.query.weight"), "text");
  EXPECT_EQ(param_group_of("audio_projection.linear1.weight"), "heads");
  EXPECT_EQ(param_group_of("logit_scale_a"), "heads");
  EXPECT_TRUE(param_no_decay("x.bias", torch::zeros({3})));
  EXPECT_TRUE(param_no_decay("x.LayerNorm.weight", torch::zeros({3})));
  EXPECT_TRUE(param_no_decay("logit_scale_a", torch::zeros({})));
  EXPECT_FALSE(param_no_decay("x.dense.weight", torch::zeros({3, 3})));
}

TEST(TrainConfig, ParsesAndRejects) {
  auto c = TrainConfig::from_json(R"({"model": "configs/tiny-cpu.json", "batch_size": 16, "lr_audio": 1e-4,
    "positives": "same_caption", "label_prompts": [{"label": "genre", "template": "a {} track", "weight": 0.5}],
    "stages": [{"name": "heads", "steps": 5, "freeze": ["audio", "text"], "label_captions": ["{genre} music", "a {lead} solo"],
                "keep_own_captions": true},
               {"epochs": 2, "subset": {"genre": ["jazz"]}}],
    "lora": {"rank": 4, "targets": ["text"]}})");
  EXPECT_EQ(c.batch_size, 16);
  EXPECT_DOUBLE_EQ(c.lr_audio, 1e-4);
  ASSERT_EQ(c.stages.size(), 2u);
  EXPECT_EQ(c.stages[0].freeze, (std::vector<std::string>{"audio", "text"}));
  EXPECT_EQ(c.stages[1].subset_labels.at("genre"), std::vector<std::string>{"jazz"});
  EXPECT_EQ(c.stages[0].label_captions, (std::vector<std::string>{"{genre} music", "a {lead} solo"}));
  EXPECT_TRUE(c.stages[1].label_captions.empty());
  EXPECT_TRUE(c.stages[0].keep_own_captions);
  EXPECT_FALSE(c.stages[1].keep_own_captions);
  EXPECT_EQ(c.positives, "same_caption");
  ASSERT_EQ(c.label_prompts.size(), 1u);
  EXPECT_EQ(c.label_prompts[0].label, "genre");
  EXPECT_EQ(c.label_prompts[0].text_template, "a {} track");
  EXPECT_DOUBLE_EQ(c.label_prompts[0].weight, 0.5);
  EXPECT_EQ(c.lora_rank, 4);
  // Round trip.
  auto c2 = TrainConfig::from_json(c.to_json());
  EXPECT_EQ(c2.to_json(), c.to_json());
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "learning_rate": 1})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "batch_size": 1})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "text_buckets": 0})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "freeze": ["tower"]})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "stages": [{"name": "x"}]})"), Error);
  // A label-caption template must name a label and close its braces.
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "stages": [{"epochs": 1, "label_captions": ["music"]}]})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "stages": [{"epochs": 1, "label_captions": ["{genre music"]}]})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "stages": [{"epochs": 1, "keep_own_captions": true}]})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "positives": "same_label"})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "label_prompts": [{"label": "genre", "template": "genre"}]})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "label_prompts": [{"label": "g", "template": "{} {}"}]})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "label_prompts": [{"template": "{} music"}]})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "label_prompts": [{"label": "g", "template": "{}", "weight": 0}]})"), Error);
  EXPECT_THROW(TrainConfig::from_file("/nonexistent/train.json"), FileError);
  EXPECT_DOUBLE_EQ(TrainConfig::from_json(R"({"model": "m.json", "ema_decay": 0.99})").ema_decay, 0.99);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "ema_decay": 1})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "ema_decay": -0.1})"), Error);
  EXPECT_THROW(TrainConfig::from_json(R"({"model": "m.json", "ema_decay": 0.9, "lora": {"rank": 2, "targets": ["text"]}})"),
               Error);
}

// The weight average by hand: two updates of a float parameter and a float buffer with the warmed-up decay,
// an integer buffer left alone, swap() in and out, and save/load through a file.
TEST(TrainEma, AverageFollowsTheFormulaSwapsAndSaves) {
  auto w = torch::tensor({1.0f, 2.0f});
  auto b = torch::tensor({10.0f});
  auto count = torch::tensor({int64_t(3)});
  std::vector<std::pair<std::string, torch::Tensor>> state{{"w", w}, {"b", b}, {"n", count}};
  WeightAverage avg(state, 0.5);
  EXPECT_DOUBLE_EQ(WeightAverage::decay_at(0.5, 0), 0.1);
  EXPECT_DOUBLE_EQ(WeightAverage::decay_at(0.5, 8), 0.5);  // 9/18
  EXPECT_DOUBLE_EQ(WeightAverage::decay_at(0.999, 90), 91.0 / 100.0);
  w.copy_(torch::tensor({3.0f, 4.0f}));
  b.fill_(20.0f);
  avg.update(0);  // d = 0.1: 0.1 * old + 0.9 * new
  w.copy_(torch::tensor({5.0f, 6.0f}));
  b.fill_(0.0f);
  avg.update(100);  // d = 0.5
  // Expected: w: 0.1*1+0.9*3 = 2.8 -> 0.5*2.8+0.5*5 = 3.9; 0.1*2+0.9*4 = 3.8 -> 4.9; b: 19 -> 9.5.
  avg.swap();
  EXPECT_NEAR(w[0].item<float>(), 3.9f, 1e-6);
  EXPECT_NEAR(w[1].item<float>(), 4.9f, 1e-6);
  EXPECT_NEAR(b[0].item<float>(), 9.5f, 1e-6);
  EXPECT_EQ(count[0].item<int64_t>(), 3);
  const std::string file = temp_dir("train_ema_unit") + "/ema.safetensors";
  avg.save(file);  // the averages are in the model now; the file holds the raw weights
  avg.swap();
  EXPECT_NEAR(w[0].item<float>(), 5.0f, 1e-6);
  EXPECT_NEAR(b[0].item<float>(), 0.0f, 1e-6);
  WeightAverage other(state, 0.5);
  other.load(file);
  other.swap();
  EXPECT_NEAR(w[0].item<float>(), 5.0f, 1e-6);  // loaded raw weights swapped in: unchanged
  other.swap();
  // A file that lacks a tensor is refused, naming the file.
  auto extra = torch::zeros({2});
  WeightAverage wider({{"w", w}, {"b", b}, {"extra", extra}}, 0.5);
  EXPECT_THROW(wider.load(file), FileError);
}

TEST(TrainRun, LearnsWritesCheckpointsAndReport) {
  const std::string data = make_dataset("train_run_data");
  const std::string run = temp_dir("train_run_out");
  TrainOptions opt;
  opt.data = data;
  opt.out = run;
  opt.progress = false;
  TrainConfig cfg = tiny_config(30);
  cfg.checkpoint_every = 10;
  TrainSummary s = run_training(cfg, opt);
  EXPECT_EQ(s.steps, 30);
  EXPECT_EQ(s.epochs_done, 15);  // 16 training clips / batch 8 = 2 steps per epoch; the last epoch counts too
  EXPECT_FALSE(s.interrupted);
  EXPECT_EQ(s.skipped_steps, 0);
  const auto lines = read_jsonl(run + "/metrics.jsonl");
  std::vector<double> losses;
  for (const auto& j : lines)
    if (j["type"] == "train") losses.push_back(j["loss"].get<double>());
  ASSERT_EQ(losses.size(), 30u);
  // The loss starts near log(8) (random model) and falls.
  EXPECT_NEAR(losses.front(), std::log(8.0), 0.6);
  const double early = (losses[0] + losses[1] + losses[2]) / 3, late = (losses[27] + losses[28] + losses[29]) / 3;
  EXPECT_LT(late, early - 0.3) << "early " << early << " late " << late;
  // Validation ran (8 val clips) and the files are there.
  EXPECT_TRUE(s.last_val.count("t2a_r10"));
  EXPECT_TRUE(file_exists(run + "/report.html"));
  EXPECT_TRUE(file_exists(run + "/tokenizer/vocab.json"));
  EXPECT_TRUE(file_exists(run + "/checkpoints/latest.json"));
  EXPECT_TRUE(file_exists(run + "/checkpoints/step-00000030/optimizer.pt"));
  EXPECT_FALSE(fs::exists(run + "/checkpoints/step-00000010"));  // keep_checkpoints = 2
  EXPECT_TRUE(fs::exists(run + "/checkpoints/step-00000020"));
  // The final model loads with the public API and embeds text with its own tokenizer.
  Model m = Model::load(run + "/final");
  EXPECT_EQ(m.info().embedding_dim, 16);
  // A second run into the same directory is refused without --resume.
  EXPECT_THROW(run_training(cfg, opt), FileError);
}

TEST(TrainRun, ResumeContinuesExactly) {
  const std::string data = make_dataset("train_resume_data", 40);
  TrainConfig cfg = tiny_config(8);
  cfg.max_val_items = 0;
  TrainOptions a = quiet_options(data, "train_resume_straight");
  run_training(cfg, a);

  TrainOptions b = a;
  b.out = temp_dir("train_resume_split");
  b.stop_after_steps = 3;  // as if interrupted after 3 steps
  TrainSummary first = run_training(cfg, b);
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.steps, 3);
  EXPECT_FALSE(fs::exists(b.out + "/final"));
  b.stop_after_steps = -1;
  b.resume = true;
  TrainSummary second = run_training(cfg, b);
  EXPECT_EQ(second.steps, 8);
  // The weights and the metrics of both runs agree step by step.
  EXPECT_EQ(expect_same_runs(a.out, b.out, 1e-6), 8);
}

// "text_buckets": the text tower runs on length-sorted groups of the batch's captions, each padded to its own
// longest ("a low steady tone" against "a steady sound with a low pitch"), and the embeddings go back to the
// batch's order. Without dropout the run is the same as with one padded batch, up to rounding.
TEST(TrainRun, TextBucketsGiveTheSameRun) {
  TrainConfig cfg = tiny_config(6);
  cfg.max_val_items = 0;
  TrainOptions one = quiet_options(make_dataset("train_buckets_data", 40), "train_buckets_one"), three = one;
  three.out = temp_dir("train_buckets_three");
  run_training(cfg, one);
  cfg.text_buckets = 3;
  run_training(cfg, three);
  EXPECT_EQ(expect_same_runs(one.out, three.out, 1e-4), 6);
  EXPECT_EQ(json::parse(std::ifstream(three.out + "/config.json"))["text_buckets"], 3);
}

// With "ema_decay", RUN/final holds the average (not the raw weights of the last step checkpoint), validation
// measures it, and an interrupted run resumes the average exactly.
TEST(TrainRun, WeightAverageIsTheFinalModelAndResumesExactly) {
  const std::string data = make_dataset("train_ema_data", 40);
  TrainConfig cfg = tiny_config(8);
  cfg.max_val_items = 0;
  cfg.ema_decay = 0.8;
  TrainOptions a = quiet_options(data, "train_ema_straight");
  run_training(cfg, a);
  ASSERT_TRUE(fs::exists(a.out + "/checkpoints/step-00000008/ema.safetensors"));
  const auto raw = weights_of(a.out + "/checkpoints/step-00000008");
  const auto fin = weights_of(a.out + "/final");
  EXPECT_GT(max_diff(raw, fin, "audio_model."), 1e-4);
  EXPECT_GT(max_diff(raw, fin, "text_model."), 1e-4);

  TrainOptions b = a;
  b.out = temp_dir("train_ema_split");
  b.stop_after_steps = 3;
  EXPECT_TRUE(run_training(cfg, b).interrupted);
  b.stop_after_steps = -1;
  b.resume = true;
  EXPECT_EQ(run_training(cfg, b).steps, 8);
  EXPECT_LE(max_diff(fin, weights_of(b.out + "/final")), 1e-6);
  EXPECT_LE(max_diff(raw, weights_of(b.out + "/checkpoints/step-00000008")), 1e-6);

  // Resuming a run made without the average, with it, is refused, naming the checkpoint.
  TrainConfig plain = cfg;
  plain.ema_decay = 0;
  TrainOptions c = a;
  c.out = temp_dir("train_ema_plain");
  c.stop_after_steps = 2;
  run_training(plain, c);
  c.stop_after_steps = -1;
  c.resume = true;
  try {
    run_training(cfg, c);
    ADD_FAILURE() << "resume without ema.safetensors was accepted";
  } catch (const FileError& e) {
    EXPECT_NE(std::string(e.what()).find("ema.safetensors"), std::string::npos) << e.what();
  }
}

TEST(TrainRun, FrozenTowerStaysFixed) {
  const std::string data = make_dataset("train_freeze_data");
  TrainConfig cfg = tiny_config(4);
  cfg.max_val_items = 0;
  cfg.freeze = {"audio"};
  cfg.freeze_batchnorm = true;
  TrainOptions o = quiet_options(data, "train_freeze_out");
  // Reference: the untrained model from the same seed (the config with 0 learning steps is not allowed, so
  // compare against a run whose every group is frozen except the heads... simpler: init weights directly).
  ClapModel init(ClapConfig::from_json(tiny_model()));
  init->init_weights(7);
  std::map<std::string, torch::Tensor> w0;
  for (auto& kv : init->state_tensors()) w0[kv.first] = kv.second.clone();
  run_training(cfg, o);
  auto w1 = weights_of(o.out + "/final");
  EXPECT_EQ(max_diff(w0, w1, "audio_model."), 0.0);
  EXPECT_GT(max_diff(w0, w1, "text_model."), 1e-5);
  EXPECT_GT(max_diff(w0, w1, "audio_projection."), 1e-5);
}

TEST(TrainRun, StagesSwitchFreezing) {
  const std::string data = make_dataset("train_stage_data");
  TrainConfig cfg = tiny_config(0);
  cfg.max_steps = 0;
  cfg.max_val_items = 0;
  cfg.stages = TrainConfig::from_json(R"({"model": "x", "stages": [
      {"name": "heads", "steps": 3, "freeze": ["audio", "text"]},
      {"name": "all", "steps": 2, "lr_scale": 0.5}]})").stages;
  TrainOptions o = quiet_options(data, "train_stage_out");
  TrainSummary s = run_training(cfg, o);
  EXPECT_EQ(s.steps, 5);
  auto lines = read_jsonl(o.out + "/metrics.jsonl");
  int heads = 0, all = 0;
  for (const auto& j : lines) {
    if (j["type"] != "train") continue;
    if (j["stage"] == "heads") {
      ++heads;
      EXPECT_EQ(j["lr"]["audio"].get<double>(), 0.0);
      EXPECT_GT(j["lr"]["heads"].get<double>(), 0.0);
    } else {
      ++all;
      EXPECT_GT(j["lr"]["audio"].get<double>(), 0.0);
    }
  }
  EXPECT_EQ(heads, 3);
  EXPECT_EQ(all, 2);
}

TEST(TrainRun, LabelCaptionStageThenOwnCaptionsValidatesEachEpoch) {
  // A caption curriculum: one epoch on captions made from the labels, one on the items' own. The first stage
  // ends on its epoch's last batch: that epoch is validated there, and the run's end validates the second.
  const std::string data = make_dataset("train_labelcap_data");
  TrainConfig cfg = tiny_config(0);
  cfg.max_steps = 0;
  cfg.stages = TrainConfig::from_json(R"({"model": "x", "stages": [
      {"name": "labels", "epochs": 1, "label_captions": ["{pitch} {rhythm} sound", "a {pitch} one"]},
      {"name": "own", "epochs": 1}]})").stages;
  TrainOptions o = quiet_options(data, "train_labelcap_out");
  TrainSummary s = run_training(cfg, o);
  EXPECT_EQ(s.steps, 4);  // 16 training clips, batch 8: 2 steps per epoch
  EXPECT_EQ(s.epochs_done, 2);
  std::vector<std::pair<int64_t, bool>> vals;  // (step, final)
  for (const auto& j : read_jsonl(o.out + "/metrics.jsonl"))
    if (j["type"] == "val") vals.push_back({j["step"].get<int64_t>(), j.value("final", false)});
  ASSERT_EQ(vals.size(), 2u);
  EXPECT_EQ(vals[0], std::make_pair(int64_t(2), false));
  EXPECT_EQ(vals[1], std::make_pair(int64_t(4), true));
  const auto saved = TrainConfig::from_file(o.out + "/config.json");
  ASSERT_EQ(saved.stages.size(), 2u);
  EXPECT_EQ(saved.stages[0].label_captions.size(), 2u);
}

// Label prompts (pitch and rhythm classified among "a {} tone" / "{} rhythm"), equal captions as positives and
// a stage that mixes label captions with the items' own: the run trains, logs the label loss, and that loss
// falls.
TEST(TrainRun, LabelPromptsAndSameCaptionPositives) {
  const std::string data = make_dataset("train_labelprompt_data");
  TrainConfig cfg = tiny_config(0);
  cfg.max_steps = 0;
  cfg.max_val_items = 0;
  cfg.lr = 3e-3;
  const auto parsed = TrainConfig::from_json(R"({"model": "x", "positives": "same_caption",
      "label_prompts": [{"label": "pitch", "template": "a {} tone"}, {"label": "rhythm", "template": "{} rhythm"}],
      "stages": [{"name": "mixed", "epochs": 10, "label_captions": ["{pitch} {rhythm}"], "keep_own_captions": true}]})");
  cfg.positives = parsed.positives;
  cfg.label_prompts = parsed.label_prompts;
  cfg.stages = parsed.stages;
  TrainOptions o = quiet_options(data, "train_labelprompt_out");
  TrainSummary s = run_training(cfg, o);
  EXPECT_EQ(s.steps, 20);
  std::vector<double> label_loss;
  for (const auto& j : read_jsonl(o.out + "/metrics.jsonl"))
    if (j["type"] == "train") {
      ASSERT_TRUE(j["label_loss"].is_number());
      label_loss.push_back(j["label_loss"].get<double>());
    }
  ASSERT_EQ(label_loss.size(), 20u);
  // Two 2-class terms (pitch and rhythm are audible in these tones): the loss must fall.
  const double first = (label_loss[0] + label_loss[1] + label_loss[2] + label_loss[3]) / 4;
  const double last = (label_loss[16] + label_loss[17] + label_loss[18] + label_loss[19]) / 4;
  EXPECT_LT(last, 0.8 * first);
  const auto saved = TrainConfig::from_file(o.out + "/config.json");
  ASSERT_EQ(saved.label_prompts.size(), 2u);
  // The checkpoints carry the prompts, for synclap eval's default templates.
  const SafetensorsReader weights(o.out + "/final/model.safetensors");
  ASSERT_TRUE(weights.metadata().count("synclap_label_prompts"));
  EXPECT_EQ(nlohmann::json::parse(weights.metadata().at("synclap_label_prompts")),
            nlohmann::json::parse(R"({"pitch": ["a {} tone"], "rhythm": ["{} rhythm"]})"));
  EXPECT_TRUE(saved.stages[0].keep_own_captions);
  // A label the data lacks is an error that names it.
  cfg.label_prompts = {LabelPrompt{"mood", "{} music", 1.0}};
  o.out = temp_dir("train_labelprompt_bad");
  try {
    run_training(cfg, o);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("\"mood\""), std::string::npos) << e.what();
  }
}

TEST(TrainRun, LoraTrainsAdaptersOnly) {
  const std::string data = make_dataset("train_lora_data");
  TrainConfig cfg = tiny_config(4);
  cfg.max_val_items = 0;
  cfg.lora_rank = 2;
  cfg.lora_targets = {"text"};
  cfg.lr = 1e-2;
  TrainOptions o = quiet_options(data, "train_lora_out");
  run_training(cfg, o);
  const std::string step = o.out + "/checkpoints/step-00000004";
  EXPECT_TRUE(file_exists(step + "/lora.safetensors"));
  ClapModel init(ClapConfig::from_json(tiny_model()));
  init->init_weights(7);
  std::map<std::string, torch::Tensor> w0;
  for (auto& kv : init->state_tensors()) w0[kv.first] = kv.second.clone();
  // The step checkpoint keeps the text tower's base weights; the final one has the adapters merged in.
  EXPECT_EQ(max_diff(w0, weights_of(step), "text_model."), 0.0);
  EXPECT_GT(max_diff(w0, weights_of(o.out + "/final"), "text_model."), 1e-6);
}

TEST(TrainRun, NonFiniteStepsAreSkipped) {
  // A diverged checkpoint: one infinite weight in the audio head makes every loss NaN. Every step must be
  // skipped and counted, and the weights must come out exactly as they went in.
  const std::string data = make_dataset("train_nan_data");
  const std::string init_dir = temp_dir("train_nan_init");
  ClapModel init(ClapConfig::from_json(tiny_model()));
  init->init_weights(7);
  {
    torch::NoGradGuard ng;
    init->audio_projection->linear1->weight[0][0] = std::numeric_limits<float>::infinity();
  }
  save_checkpoint(*init, hf_inference_contract(init->config()), init_dir);
  BpeTrainerOptions bo;
  bo.vocab_size = 300;
  BpeTrainer bt(bo);
  bt.add_texts({"a low steady tone", "a high pulsing tone", "a steady sound with a low pitch"});
  bt.train().save(init_dir);
  TrainConfig cfg = tiny_config(3);
  cfg.max_val_items = 0;
  cfg.freeze_batchnorm = true;  // a skipped step must leave the running statistics alone too
  cfg.init = init_dir;
  TrainOptions o = quiet_options(data, "train_nan_out");
  TrainSummary s = run_training(cfg, o);
  EXPECT_EQ(s.steps, 3);
  EXPECT_EQ(s.skipped_steps, 3);
  auto before = weights_of(init_dir), after = weights_of(o.out + "/final");
  for (const auto& [k, v] : before) EXPECT_TRUE(torch::equal(v, after.at(k))) << k;
  int skipped_lines = 0;
  for (const auto& j : read_jsonl(o.out + "/metrics.jsonl"))
    if (j["type"] == "train" && j["loss"].is_null()) ++skipped_lines;
  EXPECT_EQ(skipped_lines, 3);
}
