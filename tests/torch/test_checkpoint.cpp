// safetensors <-> torch tensors, strict state loading, and the checkpoint formats (HF directories,
// sharded HF directories, synclap directories, single files).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/torch/checkpoint.h"
#include "io/torch/tensor_io.h"
#include "model/clap_model.h"
#include "synclap/error.h"
#include "synclap/safetensors.h"
#include "synclap/util.h"
#include "test_support.h"

using namespace synclap;
namespace fs = std::filesystem;

namespace {

// A small, fast model: narrow HTS-AT + small text transformer.
ClapConfig tiny_config(bool fused = false) {
  nlohmann::json j = {
      {"synclap_name", "test-tiny"},
      {"audio_config",
       {{"patch_embeds_hidden_size", 8},
        {"depths", {1, 1, 1, 1}},
        {"num_attention_heads", {1, 1, 2, 2}},
        {"hidden_size", 64},
        {"enable_fusion", fused}}},
      {"text_config",
       {{"model_type", "synclap_small_text"},
        {"vocab_size", 50},
        {"hidden_size", 16},
        {"num_hidden_layers", 1},
        {"num_attention_heads", 2},
        {"intermediate_size", 32},
        {"max_position_embeddings", 16}}},
      {"projection_dim", 8}};
  return ClapConfig::from_json(j);
}

std::string golden(const std::string& name) { return test::golden_dir() + "/" + name; }

void copy(const std::string& from, const std::string& to) {
  fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

// Expects `fn` to throw a FileError whose message contains every string in `parts`.
template <typename Fn>
::testing::AssertionResult file_error_of(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
  } catch (const FileError& e) {
    const std::string what = e.what();
    for (const auto& p : parts)
      if (what.find(p) == std::string::npos) return ::testing::AssertionFailure() << what << "\n  lacks: " << p;
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "no FileError";
}

}  // namespace

TEST(TensorIo, RoundTripsEveryDtypeAndShape) {
  const std::string dir = test::temp_dir("tensor_io");
  std::vector<std::pair<std::string, torch::Tensor>> ts = {
      {"f64", torch::randn({3, 2}, torch::kFloat64)},
      {"f32_t", torch::randn({4, 3}).t()},  // not contiguous
      {"f16", torch::randn({5}).to(torch::kFloat16)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"i64", torch::arange(6, torch::kInt64).view({2, 3})},
      {"i32", torch::arange(-3, 3, torch::kInt32)},
      {"i16", torch::arange(4, torch::kInt16)},
      {"i8", torch::arange(-2, 2, torch::kInt8)},
      {"u8", torch::arange(250, 256, torch::kInt32).to(torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::full({}, 2.5f)},
      {"empty", torch::zeros({0, 4})},
  };
  write_tensors(dir + "/t.safetensors", ts, {{"note", "hello"}});
  SafetensorsReader r(dir + "/t.safetensors");
  EXPECT_EQ(r.metadata().at("note"), "hello");
  for (const auto& [name, want] : ts) {
    SCOPED_TRACE(name);
    torch::Tensor got = read_tensor(r, name);
    EXPECT_EQ(got.scalar_type(), want.scalar_type());
    EXPECT_EQ(got.sizes(), want.sizes());
    EXPECT_TRUE(torch::equal(got, want.contiguous()));
  }
  EXPECT_THROW(read_tensor(r, "absent"), FileError);
  EXPECT_EQ(read_tensors(dir + "/t.safetensors").size(), ts.size());
}

TEST(Checkpoint, RecomputableBuffers) {
  EXPECT_TRUE(is_recomputable_buffer("text_model.embeddings.position_ids"));
  EXPECT_TRUE(is_recomputable_buffer("text_model.embeddings.token_type_ids"));
  EXPECT_TRUE(is_recomputable_buffer("audio_model.audio_encoder.layers.0.blocks.1.attention.self.relative_position_index"));
  EXPECT_TRUE(is_recomputable_buffer("audio_model.audio_encoder.batch_norm.num_batches_tracked"));
  EXPECT_FALSE(is_recomputable_buffer("audio_model.audio_encoder.batch_norm.running_mean"));
  EXPECT_FALSE(is_recomputable_buffer("text_model.embeddings.position_embeddings.weight"));
  EXPECT_FALSE(is_recomputable_buffer("logit_scale_a"));
}

// Strictness: the file's tensors are compared with the model's before anything is copied.
TEST(Checkpoint, RefusesMissingUnexpectedAndMisShapedTensors) {
  const std::string dir = test::temp_dir("ckpt_strict");
  ClapModel m(tiny_config());
  auto state = m->state_tensors();

  // Missing a parameter, an unexpected tensor, a mis-shaped one: all three listed, with the file's name.
  std::vector<std::pair<std::string, torch::Tensor>> bad;
  for (const auto& [n, t] : state) {
    if (n == "text_projection.linear1.weight") continue;
    if (n == "audio_projection.linear2.bias") bad.emplace_back(n, torch::zeros({t.numel() + 1}));
    else bad.emplace_back(n, t);
  }
  bad.emplace_back("audio_model.audio_encoder.head.weight", torch::zeros({2, 2}));
  const std::string f = dir + "/bad.safetensors";
  write_tensors(f, bad);
  const auto before = m->audio_projection->linear1->weight.clone();
  EXPECT_TRUE(file_error_of([&] { load_state(state, {f}); },
                    {f, "missing 1 (text_projection.linear1.weight)",
                     "unexpected 1 (audio_model.audio_encoder.head.weight)",
                     "mis-shaped 1 (audio_projection.linear2.bias (file [9], model [8]))"}));
  EXPECT_TRUE(torch::equal(before, m->audio_projection->linear1->weight));  // nothing was copied

  // Integer data for a float parameter is refused too.
  std::vector<std::pair<std::string, torch::Tensor>> wrong_kind = state;
  for (auto& [n, t] : wrong_kind)
    if (n == "logit_scale_a") t = torch::full({}, 3, torch::kInt64);
  write_tensors(f, wrong_kind);
  EXPECT_TRUE(file_error_of([&] { load_state(state, {f}); }, {"logit_scale_a (file I64"}));
}

TEST(Checkpoint, ToleratesOnlyRecomputableBuffersMissingAndConvertsDtypes) {
  const std::string dir = test::temp_dir("ckpt_tolerate");
  ClapModel src(tiny_config());
  src->init_weights(3);
  std::vector<std::pair<std::string, torch::Tensor>> file;
  std::vector<std::string> omitted;
  for (const auto& [n, t] : src->state_tensors()) {
    if (is_recomputable_buffer(n)) {
      omitted.push_back(n);
      continue;
    }
    // Weights stored in half and double precision load into the float32 model.
    if (n == "text_projection.linear1.weight") file.emplace_back(n, t.to(torch::kFloat16));
    else if (n == "logit_scale_t") file.emplace_back(n, t.to(torch::kFloat64));
    else file.emplace_back(n, t);
  }
  ASSERT_FALSE(omitted.empty());
  const std::string f = dir + "/w.safetensors";
  write_tensors(f, file);
  ClapModel dst(tiny_config());
  StateLoadReport r = load_state(dst->state_tensors(), {f});
  EXPECT_EQ(r.missing_tolerated, omitted);
  EXPECT_EQ(r.loaded.size(), file.size());
  auto s = src->state_tensors(), d = dst->state_tensors();
  for (size_t i = 0; i < s.size(); ++i) {
    SCOPED_TRACE(s[i].first);
    if (s[i].first == "text_projection.linear1.weight")
      EXPECT_TRUE(torch::allclose(s[i].second, d[i].second, 0, 1e-3));
    else
      EXPECT_TRUE(torch::equal(s[i].second, d[i].second));
  }
}

TEST(Checkpoint, SynclapDirectoryRoundTrip) {
  const std::string dir = test::temp_dir("ckpt_roundtrip") + "/run";
  ClapModel m(tiny_config());
  m->init_weights(42);
  m->eval();
  PreprocessContract contract = PreprocessContract::clap_unfused();
  contract.max_windows = 3;  // something not default, to see it come back
  save_checkpoint(*m, contract, dir, {{"step", "123"}});
  EXPECT_TRUE(test::file_exists(dir + "/model.safetensors"));
  EXPECT_TRUE(test::file_exists(dir + "/model_config.json"));
  EXPECT_TRUE(test::file_exists(dir + "/preprocess.json"));
  EXPECT_EQ(SafetensorsReader(dir + "/model.safetensors").metadata().at("step"), "123");

  for (const std::string& path : {dir, dir + "/model.safetensors"}) {
    SCOPED_TRACE(path);
    LoadedModel l = load_checkpoint(path);
    EXPECT_EQ(l.format, path == dir ? CheckpointFormat::Synclap : CheckpointFormat::SingleFile);
    EXPECT_EQ(l.contract, contract);
    EXPECT_EQ(l.config.to_json(), m->config().to_json());
    EXPECT_TRUE(l.report.missing_tolerated.empty());
    auto a = m->state_tensors(), b = l.model->state_tensors();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
    }
    torch::NoGradGuard no_grad;
    auto feats = torch::randn({1, 1, 1001, 64}) * 20 - 40;
    EXPECT_TRUE(torch::equal(m->audio_embeddings(feats, {}), l.model->audio_embeddings(feats, {})));
  }
  // A contract that does not fit the model is refused on save and on load.
  EXPECT_TRUE(file_error_of([&] { save_checkpoint(*m, PreprocessContract::clap_fused(), dir); }, {"fused"}));
  write_file_atomic(dir + "/preprocess.json", PreprocessContract::clap_fused().to_json());
  EXPECT_TRUE(file_error_of([&] { load_checkpoint(dir); }, {dir, "preprocessing contract is fused"}));
}

TEST(Checkpoint, HuggingFaceDirectory) {
  const std::string weights = golden("tiny_unfused_weights.safetensors");
  if (!test::file_exists(weights)) GTEST_SKIP() << "no golden weights";
  const std::string dir = test::temp_dir("ckpt_hf");
  copy(golden("tiny_unfused_config.json"), dir + "/config.json");
  copy(weights, dir + "/model.safetensors");
  LoadedModel l = load_checkpoint(dir);
  EXPECT_EQ(l.format, CheckpointFormat::HuggingFace);
  EXPECT_EQ(l.contract, PreprocessContract::clap_unfused());
  EXPECT_FALSE(l.model->is_training());
  // With the released preprocessor settings: their mel settings, synclap's deterministic truncation.
  copy(golden("feature_extractor_config.json"), dir + "/preprocessor_config.json");
  l = load_checkpoint(dir);
  EXPECT_EQ(l.contract.f_min, 50.0);
  EXPECT_EQ(l.contract.truncation, Truncation::Middle);
  EXPECT_FALSE(l.contract.fusion);

  // Sharded: two files and an index.
  const std::string sharded = test::temp_dir("ckpt_hf_sharded");
  copy(golden("tiny_unfused_config.json"), sharded + "/config.json");
  SafetensorsReader r(weights);
  std::vector<std::pair<std::string, torch::Tensor>> a, b;
  nlohmann::json map = nlohmann::json::object();
  for (size_t i = 0; i < r.names().size(); ++i) {
    const auto& n = r.names()[i];
    (i % 2 ? a : b).emplace_back(n, read_tensor(r, n));
    map[n] = i % 2 ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  write_tensors(sharded + "/model-00001-of-00002.safetensors", a);
  write_tensors(sharded + "/model-00002-of-00002.safetensors", b);
  write_file_atomic(sharded + "/model.safetensors.index.json", nlohmann::json{{"weight_map", map}}.dump());
  LoadedModel s = load_checkpoint(sharded);
  auto x = l.model->state_tensors(), y = s.model->state_tensors();
  for (size_t i = 0; i < x.size(); ++i) EXPECT_TRUE(torch::equal(x[i].second, y[i].second)) << x[i].first;

  // A fused config with unfused weights: refused, naming the weights file and what is missing.
  copy(golden("tiny_fused_config.json"), dir + "/config.json");
  EXPECT_TRUE(file_error_of([&] { load_checkpoint(dir); },
                    {dir + "/model.safetensors", "missing", "audio_model.audio_encoder.patch_embed.fusion_model."}));
}

TEST(Checkpoint, ClearErrorsForWhatIsNotACheckpoint) {
  const std::string dir = test::temp_dir("ckpt_errors");
  EXPECT_TRUE(file_error_of([&] { load_checkpoint(dir + "/absent"); }, {"absent", "no such"}));
  EXPECT_TRUE(file_error_of([&] { load_checkpoint(dir); }, {dir, "not a model directory"}));
  write_file_atomic(dir + "/config.json", tiny_config().to_json().dump());
  EXPECT_TRUE(file_error_of([&] { load_checkpoint(dir); }, {dir, "no model.safetensors"}));
  write_file_atomic(dir + "/pytorch_model.bin", "x");
  EXPECT_TRUE(file_error_of([&] { load_checkpoint(dir); }, {"pytorch_model.bin"}));
  write_file_atomic(dir + "/model.safetensors", "garbage that is not safetensors");
  EXPECT_TRUE(file_error_of([&] { load_checkpoint(dir); }, {dir + "/model.safetensors"}));
  write_file_atomic(dir + "/config.json", "{\"text_config\": {\"hidden_act\": \"sparkle\"}}");
  EXPECT_TRUE(file_error_of([&] { load_checkpoint(dir); }, {dir + "/config.json", "sparkle"}));
  // A safetensors file without a config.
  write_tensors(dir + "/plain.safetensors", {{"x", torch::zeros({1})}});
  EXPECT_TRUE(file_error_of([&] { load_checkpoint(dir + "/plain.safetensors"); }, {"no model config"}));
}
