// Parity of the CLAP model (towers, heads, logits) with the reference (HF transformers v4.43.4 ClapModel,
// random weights) on every case_*.safetensors in SYNCLAP_GOLDEN_DIR. Each case names its weights file in
// its metadata ("weights_file"), whose own metadata holds the model config; so a new case or weights file
// is tested without a code change. Also: models built from every *_config.json with a
// *_state_dict_keys.json listing have exactly the listed tensors (names, order, shapes, dtypes, eps).
//
// Tolerances (the issue's): towers' pooled outputs, embeddings and text intermediates 1e-4 absolute,
// logits 1e-3. The reference's own float32-vs-float64 spread is ~2e-6.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "io/torch/checkpoint.h"
#include "io/torch/tensor_io.h"
#include "model/clap_model.h"
#include "model/roberta.h"
#include "synclap/safetensors.h"
#include "synclap/util.h"
#include "test_support.h"

using namespace synclap;

namespace {

constexpr double kTol = 1e-4;
constexpr double kLogitTol = 1e-3;

std::string base_name(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

struct GoldenCase {
  std::string name;  // e.g. "tiny_unfused"
  std::string path;
  std::string weights_path;
  std::map<std::string, torch::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

std::vector<std::string> case_files() { return test::glob_files(test::golden_dir(), "case_*.safetensors"); }

GoldenCase read_case(const std::string& path) {
  GoldenCase c;
  c.path = path;
  c.name = base_name(path).substr(5);
  c.name = c.name.substr(0, c.name.size() - std::string(".safetensors").size());
  SafetensorsReader r(path);
  c.metadata = r.metadata();
  for (const auto& n : r.names()) c.tensors.emplace(n, read_tensor(r, n));
  // Weights: the metadata names the file; by convention "<model>_weights.safetensors" otherwise.
  std::string weights;
  if (c.metadata.count("weights_file")) weights = c.metadata["weights_file"];
  else if (c.metadata.count("model")) weights = c.metadata["model"] + "_weights.safetensors";
  c.weights_path = test::golden_dir() + "/" + weights;
  return c;
}

// max |a - b| after checking shapes; +inf on a shape mismatch.
double max_abs_diff(const torch::Tensor& got, const torch::Tensor& want) {
  if (got.sizes() != want.sizes()) return INFINITY;
  return (got.to(torch::kFloat64) - want.to(torch::kFloat64)).abs().max().item<double>();
}

#define EXPECT_CLOSE(got, c, key, tol)                                                                    \
  do {                                                                                                    \
    ASSERT_TRUE((c).tensors.count(key)) << (c).name << ": reference tensor " << key << " absent";        \
    const auto& want_ = (c).tensors.at(key);                                                              \
    const double d_ = max_abs_diff((got), want_);                                                         \
    EXPECT_LE(d_, (tol)) << (c).name << ": " << key << " got shape " << (got).sizes() << ", want "       \
                         << want_.sizes();                                                                \
    std::printf("  %-28s %-26s max|diff| %.3g\n", (c).name.c_str(), std::string(key).c_str(), d_);       \
  } while (0)

}  // namespace

TEST(GoldenClap, CasesArePresent) {
  if (!test::file_exists(test::golden_dir())) GTEST_SKIP() << "no golden dir " << test::golden_dir();
  EXPECT_FALSE(case_files().empty()) << "no case_*.safetensors in " << test::golden_dir();
}

// Every case's weights load strictly (nothing missing, unexpected or mis-shaped) into the model built from
// the config stored with them.
TEST(GoldenClap, WeightsLoadStrictly) {
  for (const auto& f : case_files()) {
    GoldenCase c = read_case(f);
    SCOPED_TRACE(c.name);
    LoadedModel m = load_checkpoint(c.weights_path);
    EXPECT_EQ(m.format, CheckpointFormat::SingleFile);
    EXPECT_TRUE(m.report.missing_tolerated.empty());
    EXPECT_EQ(m.report.loaded.size(), SafetensorsReader(c.weights_path).names().size());
    EXPECT_EQ(m.config.enable_fusion, m.contract.fusion);
  }
}

// The text tower and head: every stored text intermediate.
TEST(GoldenClap, TextTower) {
  torch::NoGradGuard no_grad;
  for (const auto& f : case_files()) {
    GoldenCase c = read_case(f);
    SCOPED_TRACE(c.name);
    LoadedModel m = load_checkpoint(c.weights_path);
    const auto& ids = c.tensors.at("input_ids");
    const auto& mask = c.tensors.at("attention_mask");
    if (c.tensors.count("text.position_ids")) {
      EXPECT_TRUE(torch::equal(roberta_position_ids(ids, m.config.text.pad_token_id), c.tensors.at("text.position_ids")));
    }
    TextOutput t = m.model->text_model->encode(ids, mask, /*output_hidden_states=*/true);
    ASSERT_EQ(int64_t(t.hidden_states.size()), m.config.text.num_hidden_layers + 1);
    EXPECT_CLOSE(t.hidden_states[0], c, "text.embeddings_out", kTol);
    for (size_t i = 0; i < t.hidden_states.size(); ++i) {
      const std::string key = "text.hidden_states." + std::to_string(i);
      if (c.tensors.count(key)) EXPECT_CLOSE(t.hidden_states[i], c, key, kTol);
    }
    EXPECT_CLOSE(t.last_hidden_state, c, "text.last_hidden_state", kTol);
    EXPECT_CLOSE(t.pooler_output, c, "text.pooler_output", kTol);
    auto projected = m.model->text_projection->forward(t.pooler_output);
    EXPECT_CLOSE(projected, c, "text.projection_out", kTol);
    EXPECT_CLOSE(l2_normalize(projected), c, "text_embeds", kTol);
    EXPECT_CLOSE(m.model->text_embeddings(ids, mask), c, "text_embeds", kTol);
    EXPECT_CLOSE(t.pooler_output, c, "f64.text.pooler_output", kTol);
  }
}

// The heads and the logits, from the reference's own audio pooled outputs (independent of the audio tower).
TEST(GoldenClap, HeadsAndLogitsFromReferencePooledAudio) {
  torch::NoGradGuard no_grad;
  for (const auto& f : case_files()) {
    GoldenCase c = read_case(f);
    SCOPED_TRACE(c.name);
    LoadedModel m = load_checkpoint(c.weights_path);
    auto audio_proj = m.model->audio_projection->forward(c.tensors.at("audio.pooler_output"));
    EXPECT_CLOSE(audio_proj, c, "audio.projection_out", kTol);
    auto audio = l2_normalize(audio_proj);
    EXPECT_CLOSE(audio, c, "audio_embeds", kTol);
    auto text = m.model->text_embeddings(c.tensors.at("input_ids"), c.tensors.at("attention_mask"));
    EXPECT_CLOSE(m.model->logits_per_audio(audio, text), c, "logits_per_audio", kLogitTol);
    EXPECT_CLOSE(m.model->logits_per_text(text, audio), c, "logits_per_text", kLogitTol);
    // The two temperatures differ in the reference weights: a swap would show here.
    EXPECT_GT(std::fabs(m.model->logit_scale_a.item<double>() - m.model->logit_scale_t.item<double>()), 0.1);
  }
}

// The whole model, audio tower included: input features -> embeddings and logits.
TEST(GoldenClap, FullModel) {
  torch::NoGradGuard no_grad;
  for (const auto& f : case_files()) {
    GoldenCase c = read_case(f);
    SCOPED_TRACE(c.name);
    LoadedModel m = load_checkpoint(c.weights_path);
    ClapOutput o = m.model->forward(c.tensors.at("input_ids"), c.tensors.at("attention_mask"),
                                    c.tensors.at("input_features"), c.tensors.at("is_longer"));
    EXPECT_CLOSE(o.audio_pooler, c, "audio.pooler_output", kTol);
    EXPECT_CLOSE(o.audio_pooler, c, "f64.audio.pooler_output", kTol);
    EXPECT_CLOSE(o.audio_projected, c, "audio.projection_out", kTol);
    EXPECT_CLOSE(o.text_pooler, c, "text.pooler_output", kTol);
    EXPECT_CLOSE(o.text_projected, c, "text.projection_out", kTol);
    EXPECT_CLOSE(o.audio_embeds, c, "audio_embeds", kTol);
    EXPECT_CLOSE(o.text_embeds, c, "text_embeds", kTol);
    EXPECT_CLOSE(o.audio_embeds, c, "f64.audio_embeds", kTol);
    EXPECT_CLOSE(o.text_embeds, c, "f64.text_embeds", kTol);
    EXPECT_CLOSE(o.logits_per_audio, c, "logits_per_audio", kLogitTol);
    EXPECT_CLOSE(o.logits_per_text, c, "logits_per_text", kLogitTol);
    EXPECT_CLOSE(o.logits_per_audio, c, "f64.logits_per_audio", kLogitTol);
    EXPECT_CLOSE(o.logits_per_text, c, "f64.logits_per_text", kLogitTol);
    // One side at a time gives the same embeddings as the joint call.
    EXPECT_CLOSE(m.model->audio_embeddings(c.tensors.at("input_features"), c.tensors.at("is_longer")), c,
                 "audio_embeds", kTol);
  }
}

// Models built from each config have exactly the reference's state dict: names in order, shapes, dtypes,
// parameter count, and the eps of every normalisation layer.
TEST(GoldenShapes, ModelsMatchStateDictListings) {
  const auto listings = test::glob_files(test::golden_dir(), "*_state_dict_keys.json");
  if (listings.empty()) GTEST_SKIP() << "no *_state_dict_keys.json in " << test::golden_dir();
  torch::NoGradGuard no_grad;
  for (const auto& listing : listings) {
    const std::string prefix = listing.substr(0, listing.size() - std::string("_state_dict_keys.json").size());
    SCOPED_TRACE(base_name(prefix));
    const auto want = nlohmann::json::parse(read_file(listing));
    ClapModel model(ClapConfig::from_file(prefix + "_config.json"));
    const auto got = model->state_tensors();
    const auto& tensors = want.at("tensors");
    ASSERT_EQ(got.size(), tensors.size());
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const auto& w = tensors[i];
      const std::vector<int64_t> shape = w.at("shape").get<std::vector<int64_t>>();
      const std::vector<int64_t> gshape(got[i].second.sizes().begin(), got[i].second.sizes().end());
      const std::string dtype = w.at("dtype").get<std::string>();
      const bool ok = got[i].first == w.at("name").get<std::string>() && gshape == shape &&
                      (dtype == "float32" ? got[i].second.scalar_type() == torch::kFloat32
                                          : got[i].second.scalar_type() == torch::kInt64);
      if (!ok && bad++ < 10)
        ADD_FAILURE() << "#" << i << ": got " << got[i].first << " " << got[i].second.sizes() << " "
                      << got[i].second.scalar_type() << ", want " << w.dump();
    }
    EXPECT_EQ(bad, 0u);
    EXPECT_EQ(model->num_parameters(), want.at("num_parameters").get<int64_t>());
    // Normalisation layers: LayerNorm / BatchNorm eps.
    std::map<std::string, std::shared_ptr<torch::nn::Module>> modules;
    for (const auto& item : model->named_modules()) modules[item.key()] = item.value();
    size_t checked = 0;
    for (const auto& n : want.at("norm_layers")) {
      const std::string name = n.at("module").get<std::string>();
      ASSERT_TRUE(modules.count(name)) << "no module " << name;
      const double eps = n.at("eps").get<double>();
      if (auto* ln = modules[name]->as<torch::nn::LayerNormImpl>()) {
        EXPECT_EQ(ln->options.eps(), eps) << name;
        ++checked;
      } else if (auto* bn = modules[name]->as<torch::nn::BatchNorm2dImpl>()) {
        EXPECT_EQ(bn->options.eps(), eps) << name;
        ++checked;
      } else {
        ADD_FAILURE() << name << " is not a LayerNorm/BatchNorm2d";
      }
    }
    EXPECT_EQ(checked, want.at("norm_layers").size());
  }
}
