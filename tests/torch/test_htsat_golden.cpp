// Parity of the HTS-AT audio tower with HF transformers v4.43.4 ClapAudioEncoder, on every model case found in
// SYNCLAP_GOLDEN_DIR (case_*.safetensors; each names its weights file and model in its metadata), plus checks that
// the configs there build encoders with exactly the reference parameter names and shapes.
//
// Tolerances (the issue's): pooled output 1e-4 absolute, deep intermediates 1e-3.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "io/torch/tensor_io.h"
#include "model/htsat.h"
#include "synclap/error.h"
#include "synclap/safetensors.h"
#include "test_support.h"

using namespace synclap;
using nlohmann::json;

namespace {

const std::string kPrefix = "audio_model.audio_encoder.";

json read_json(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  return json::parse(f);
}

std::string basename_of(const std::string& path) {
  auto p = path.find_last_of('/');
  return p == std::string::npos ? path : path.substr(p + 1);
}

// All parameters and buffers of a module, by name.
std::map<std::string, torch::Tensor> state_of(torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> s;
  for (const auto& p : m.named_parameters()) s[p.key()] = p.value();
  for (const auto& b : m.named_buffers()) s[b.key()] = b.value();
  return s;
}

// Copies every `kPrefix` tensor of `file` into the encoder; fails on a missing, unexpected or mis-shaped one.
void load_encoder(HtsatAudioEncoderImpl& enc, const std::map<std::string, torch::Tensor>& file) {
  torch::NoGradGuard no_grad;
  auto own = state_of(enc);
  std::set<std::string> used;
  for (auto& kv : own) {
    auto it = file.find(kPrefix + kv.first);
    ASSERT_TRUE(it != file.end()) << "weights file lacks " << kPrefix + kv.first;
    ASSERT_EQ(it->second.sizes(), kv.second.sizes()) << kv.first;
    kv.second.copy_(it->second.to(kv.second.scalar_type()));
    used.insert(it->first);
  }
  for (const auto& kv : file)
    if (kv.first.rfind(kPrefix, 0) == 0) EXPECT_TRUE(used.count(kv.first)) << "unexpected tensor " << kv.first;
}

double max_abs_diff(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kDouble) - want.to(torch::kDouble)).abs().max().item<double>();
}

void expect_close(const torch::Tensor& got, const torch::Tensor& want, double tol, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << " not produced";
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double d = max_abs_diff(got, want);
  EXPECT_LE(d, tol) << what;
  std::printf("    %-28s max|diff| %.3g (tol %.0e)\n", what.c_str(), d, tol);
}

HtsatConfig config_for(const std::string& model_name, const SafetensorsReader& weights) {
  const std::string path = test::golden_dir() + "/" + model_name + "_config.json";
  if (test::file_exists(path)) return HtsatConfig::from_hf_audio_config(read_json(path).at("audio_config"));
  return HtsatConfig::from_hf_audio_config(json::parse(weights.metadata().at("config")).at("audio_config"));
}

std::vector<std::string> case_files() { return test::glob_files(test::golden_dir(), "case_*.safetensors"); }

// Names and shapes of the audio encoder's tensors in a *_state_dict_keys.json listing (prefix removed).
std::map<std::string, std::vector<int64_t>> listed_encoder_tensors(const std::string& path) {
  std::map<std::string, std::vector<int64_t>> m;
  const json listing = read_json(path);
  for (const auto& t : listing.at("tensors")) {
    const auto name = t.at("name").get<std::string>();
    if (name.rfind(kPrefix, 0) == 0) m[name.substr(kPrefix.size())] = t.at("shape").get<std::vector<int64_t>>();
  }
  return m;
}

// Success when the encoder's tensors are exactly the listed ones (names and shapes); else the differences.
::testing::AssertionResult same_layout(HtsatAudioEncoderImpl& enc, const std::string& listing) {
  const auto want = listed_encoder_tensors(listing);
  if (want.empty()) return ::testing::AssertionFailure() << listing << ": no tensors listed";
  std::map<std::string, std::vector<int64_t>> got;
  for (const auto& kv : state_of(enc)) got[kv.first] = kv.second.sizes().vec();
  std::ostringstream problems;
  for (const auto& kv : want) {
    auto it = got.find(kv.first);
    if (it == got.end()) problems << "\n  encoder lacks " << kv.first;
    else if (it->second != kv.second) problems << "\n  shape differs: " << kv.first;
  }
  for (const auto& kv : got)
    if (!want.count(kv.first)) problems << "\n  encoder has unlisted tensor " << kv.first;
  if (!problems.str().empty()) return ::testing::AssertionFailure() << basename_of(listing) << ":" << problems.str();
  return ::testing::AssertionSuccess();
}

}  // namespace

TEST(GoldenHtsat, EveryCaseMatchesReference) {
  torch::NoGradGuard no_grad;
  const auto cases = case_files();
  ASSERT_FALSE(cases.empty()) << "no case_*.safetensors in " << test::golden_dir();
  for (const auto& path : cases) {
    SCOPED_TRACE(path);
    SafetensorsReader c(path);
    const auto& meta = c.metadata();
    ASSERT_TRUE(meta.count("weights_file") && meta.count("model")) << "case metadata lacks weights_file/model";
    const std::string weights_path = test::golden_dir() + "/" + meta.at("weights_file");
    SafetensorsReader wr(weights_path);
    const HtsatConfig cfg = config_for(meta.at("model"), wr);
    HtsatAudioEncoder enc(cfg);
    load_encoder(*enc, read_tensors(weights_path));
    if (HasFatalFailure()) return;
    enc->eval();

    const auto feats = read_tensor(c, "input_features");
    const auto is_longer = read_tensor(c, "is_longer").reshape({-1}).to(torch::kBool);
    std::printf("  %s (%s, input %s)\n", basename_of(path).c_str(), meta.at("model").c_str(),
                [&] { std::ostringstream s; s << feats.sizes(); return s.str(); }().c_str());
    const HtsatOutput out = enc->forward(feats, is_longer, /*keep_intermediates=*/true);

    if (c.contains("audio.batch_norm_out"))
      expect_close(out.batch_norm_out, read_tensor(c, "audio.batch_norm_out"), 1e-3, "batch_norm_out");
    expect_close(out.mel2img, read_tensor(c, "audio.mel2img"), 1e-3, "mel2img");
    expect_close(out.patch_embed_out, read_tensor(c, "audio.patch_embed_out"), 1e-3, "patch_embed_out");
    ASSERT_EQ(out.hidden_states.size(), static_cast<size_t>(cfg.num_stages() + 1));
    for (int64_t i = 1; i <= cfg.num_stages(); ++i) {
      const std::string key = "audio.hidden_states." + std::to_string(i);
      ASSERT_TRUE(c.contains(key)) << key;
      expect_close(out.hidden_states[i], read_tensor(c, key), 1e-3, "hidden_states." + std::to_string(i));
    }
    expect_close(out.last_hidden_state, read_tensor(c, "audio.last_hidden_state"), 1e-3, "last_hidden_state");
    expect_close(out.pooler_output, read_tensor(c, "audio.pooler_output"), 1e-4, "pooler_output");
    if (c.contains("f64.audio.pooler_output"))
      expect_close(out.pooler_output, read_tensor(c, "f64.audio.pooler_output"), 1e-4, "pooler_output vs f64");

    // Without intermediates: the same pooled output (the fast path must not change results).
    const HtsatOutput lean = enc->forward(feats, is_longer, false);
    EXPECT_TRUE(lean.hidden_states.empty());
    EXPECT_TRUE(torch::equal(lean.pooler_output, out.pooler_output));
  }
}

// Each batch row is computed independently of the others (also through the fusion path).
TEST(GoldenHtsat, BatchRowsAreIndependent) {
  torch::NoGradGuard no_grad;
  for (const auto& path : case_files()) {
    SCOPED_TRACE(path);
    SafetensorsReader c(path);
    const std::string weights_path = test::golden_dir() + "/" + c.metadata().at("weights_file");
    SafetensorsReader wr(weights_path);
    HtsatAudioEncoder enc(config_for(c.metadata().at("model"), wr));
    load_encoder(*enc, read_tensors(weights_path));
    enc->eval();
    const auto feats = read_tensor(c, "input_features");
    const auto is_longer = read_tensor(c, "is_longer").reshape({-1}).to(torch::kBool);
    if (feats.size(0) < 2) continue;
    const auto all = enc->forward(feats, is_longer).pooler_output;
    for (int64_t i = 0; i < feats.size(0); ++i) {
      const auto one = enc->forward(feats.slice(0, i, i + 1), is_longer.slice(0, i, i + 1)).pooler_output;
      EXPECT_LE(max_abs_diff(one, all.slice(0, i, i + 1)), 1e-5) << "row " << i;
    }
  }
}

// The tiny configs build exactly the tensors stored in the weights files and key listings.
TEST(GoldenHtsat, TinyConfigsMatchKeyListings) {
  for (const std::string name : {"tiny_unfused", "tiny_fused"}) {
    SCOPED_TRACE(name);
    const auto cfg =
        HtsatConfig::from_hf_audio_config(read_json(test::golden_dir() + "/" + name + "_config.json").at("audio_config"));
    HtsatAudioEncoder enc(cfg);
    EXPECT_TRUE(same_layout(*enc, test::golden_dir() + "/" + name + "_state_dict_keys.json"));
  }
}

// The full-size configs (laion/clap-htsat-unfused / -fused geometry) build encoders with exactly the reference
// parameter names and shapes.
TEST(GoldenHtsat, FullConfigsBuildReferenceShapes) {
  const auto configs = test::glob_files(test::golden_dir(), "full_*_config.json");
  ASSERT_FALSE(configs.empty());
  for (const auto& path : configs) {
    SCOPED_TRACE(path);
    const std::string stem = path.substr(0, path.size() - std::string("_config.json").size());
    const auto cfg = HtsatConfig::from_hf_audio_config(read_json(path).at("audio_config"));
    EXPECT_EQ(cfg.patch_embeds_hidden_size, 96);
    EXPECT_EQ(cfg.depths, (std::vector<int64_t>{2, 2, 6, 2}));
    EXPECT_EQ(cfg.hidden_size, 768);
    HtsatAudioEncoder enc(cfg);
    EXPECT_TRUE(same_layout(*enc, stem + "_state_dict_keys.json"));
    // And the pooled output has the configured width.
    torch::NoGradGuard no_grad;
    enc->eval();
    const int64_t c = cfg.enable_fusion ? 4 : 1;
    auto out = enc->forward(torch::randn({1, c, 1001, 64}) * 10 - 40, torch::ones({1}, torch::kBool));
    EXPECT_EQ(out.pooler_output.sizes(), (std::vector<int64_t>{1, 768}));
    EXPECT_EQ(out.last_hidden_state.sizes(), (std::vector<int64_t>{1, 768, 2, 32}));
    EXPECT_TRUE(torch::isfinite(out.pooler_output).all().item<bool>());
  }
}

// --- Non-reference checks ------------------------------------------------------------------------------------

TEST(Htsat, ConfigRoundTripAndErrors) {
  HtsatConfig base = HtsatConfig::base(true);
  auto back = HtsatConfig::from_hf_audio_config(base.to_hf_audio_config());
  EXPECT_EQ(back.depths, base.depths);
  EXPECT_EQ(back.patch_embeds_hidden_size, 128);
  EXPECT_EQ(back.hidden_size, 1024);
  EXPECT_TRUE(back.enable_fusion);
  // Defaults = HF ClapAudioConfig() = HTS-AT tiny.
  auto def = HtsatConfig::from_hf_audio_config(json::object());
  EXPECT_EQ(def.num_features(), 768);
  json bad = base.to_hf_audio_config();
  bad["hidden_size"] = 768;  // != 128 * 8
  EXPECT_THROW(HtsatConfig::from_hf_audio_config(bad), synclap::Error);
  json heads = base.to_hf_audio_config();
  heads["num_attention_heads"] = json::array({3, 8, 16, 32});
  EXPECT_THROW(HtsatConfig::from_hf_audio_config(heads), synclap::Error);
  json cm = base.to_hf_audio_config();
  cm["fusion_type"] = "channel_map";
  EXPECT_THROW(HtsatConfig::from_hf_audio_config(cm), synclap::Error);
}

// A small random encoder: deterministic initialisation, gradients reach every parameter, wrong inputs rejected.
TEST(Htsat, InitIsSeededAndTrainable) {
  HtsatConfig cfg;
  cfg.patch_embeds_hidden_size = 8;
  cfg.depths = {1, 2, 1, 1};
  cfg.num_attention_heads = {1, 1, 2, 2};
  cfg.hidden_size = 64;
  cfg.enable_fusion = true;
  HtsatAudioEncoder a(cfg), b(cfg);
  a->init_weights(7);
  b->init_weights(7);
  auto sa = state_of(*a), sb = state_of(*b);
  for (const auto& kv : sa) EXPECT_TRUE(torch::equal(kv.second, sb.at(kv.first))) << kv.first;
  b->init_weights(8);
  EXPECT_FALSE(torch::equal(a->layers[0]->as<SwinStageImpl>()->blocks[0]->as<SwinBlockImpl>()->attention->self->query->weight,
                            b->layers[0]->as<SwinStageImpl>()->blocks[0]->as<SwinBlockImpl>()->attention->self->query->weight));

  a->train();
  torch::manual_seed(1);
  auto x = torch::randn({2, 4, 1001, 64}) * 10 - 40;
  auto out = a->forward(x, torch::tensor({true, false}));
  out.pooler_output.pow(2).sum().backward();
  for (const auto& p : a->named_parameters()) {
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
  }
  // The mel_conv2d / AFF path was used (row 0 is longer), so its gradient is non-zero.
  EXPECT_GT(a->patch_embed->mel_conv2d->weight.grad().abs().sum().item<double>(), 0.0);

  EXPECT_THROW(a->forward(torch::zeros({1, 4, 1100, 64}), torch::tensor({false})), synclap::Error);  // too many frames
  EXPECT_THROW(a->forward(torch::zeros({1, 4, 1001, 32}), torch::tensor({false})), synclap::Error);  // wrong mel bins
  EXPECT_THROW(a->forward(torch::zeros({2, 4, 1001, 64}), torch::tensor({false})), synclap::Error);  // is_longer size
}

namespace {
HtsatConfig small_config(bool fusion) {
  HtsatConfig cfg;
  cfg.patch_embeds_hidden_size = 24;  // head dim 24 as in HTS-AT tiny (96 / 4)
  cfg.depths = {2, 2, 2, 2};
  cfg.num_attention_heads = {1, 2, 4, 8};
  cfg.hidden_size = 192;
  cfg.enable_fusion = fusion;
  return cfg;
}
}  // namespace

// The inference kernels (no autograd) and the differentiable LibTorch path give the same tower output.
TEST(Htsat, WindowKernelsMatchLibTorchPath) {
  HtsatAudioEncoder enc(small_config(true));
  enc->init_weights(11);
  enc->eval();
  auto gen = at::detail::createCPUGenerator(5);
  auto x = torch::randn({3, 4, 1001, 64}, gen) * 12 - 45;
  auto longer = torch::tensor({true, false, true});
  torch::Tensor fast, slow, grad_path;
  {
    torch::NoGradGuard no_grad;
    fast = enc->forward(x, longer, true).hidden_states[2];
    set_window_attention_kernels(false);
    slow = enc->forward(x, longer, true).hidden_states[2];
    set_window_attention_kernels(true);
  }
  grad_path = enc->forward(x, longer).pooler_output;  // autograd on: always the LibTorch path
  torch::Tensor fast_pooled;
  {
    torch::NoGradGuard no_grad;
    fast_pooled = enc->forward(x, longer).pooler_output;
  }
  EXPECT_LE(max_abs_diff(fast, slow), 1e-4);
  EXPECT_LE(max_abs_diff(fast_pooled, grad_path.detach()), 1e-5);
  EXPECT_GT(fast.abs().max().item<double>(), 0.1);  // not trivially zero
}

// A Swin block in window order (gather-based shift) equals HF's pad/roll/partition formulation.
TEST(Htsat, WindowOrderEqualsRollFormulation) {
  torch::NoGradGuard no_grad;
  for (int64_t shift : {0, 4}) {
    for (bool kernels : {true, false}) {
      SwinBlockOptions o;
      o.dim = 32;
      o.num_heads = 2;
      o.window_size = 8;
      o.shift_size = shift;
      o.height = 16;
      o.width = 24;
      SwinBlock blk(o);
      for (auto& p : blk->parameters()) p.normal_(0.0, 0.3);
      blk->eval();
      set_window_attention_kernels(kernels);
      auto x = torch::randn({2, 16 * 24, 32});
      auto a = blk->forward(x), b = blk->forward_general(x);
      set_window_attention_kernels(true);
      EXPECT_LE(max_abs_diff(a, b), 1e-5) << "shift " << shift << " kernels " << kernels;
    }
  }
  // A grid that needs padding (12x12 with window 8) runs through the general path.
  SwinBlockOptions o;
  o.dim = 16;
  o.num_heads = 1;
  o.height = 12;
  o.width = 12;
  o.shift_size = 4;
  SwinBlock padded(o);
  EXPECT_FALSE(padded->has_window_order());
  auto y = padded->forward(torch::randn({1, 144, 16}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{1, 144, 16}));
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
}
