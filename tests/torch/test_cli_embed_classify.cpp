// End-to-end checks of `synclap embed` and `synclap classify` on the golden tiny unfused model (random
// weights, 32-d joint space) with the 800-token test vocabulary: what the commands write equals what the
// library computes directly (Model::embed_audio / embed_text / logits_per_audio), rows are unit vectors, the
// same file gives the same row, bad files are skipped, probabilities sum to 1.
// The synclap binary is found beside the tests' build folder (or $SYNCLAP_BIN); the tests skip without it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "synclap/audio.h"
#include "synclap/model.h"
#include "synclap/npy.h"
#include "synclap/safetensors.h"
#include "synclap/tokenizer.h"
#include "synclap/util.h"
#include "test_support.h"

using namespace synclap;
namespace fs = std::filesystem;

namespace {

std::string synclap_bin() {
  if (const char* e = std::getenv("SYNCLAP_BIN")) return e;
  return (fs::path(SYNCLAP_TEST_BINARY_DIR) / ".." / "synclap").string();
}

std::string model_path() { return test::golden_dir() + "/tiny_unfused_weights.safetensors"; }
std::string tokenizer_dir() { return std::string(SYNCLAP_SOURCE_DIR) + "/tests/data/tokenizer/trained"; }

std::string q(const std::string& s) {
  std::string o = "'";
  for (char c : s) o += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return o + "'";
}

// Runs the binary; returns the exit status, stdout in *out (stderr goes to a file, returned in *err).
int run(const std::string& args, std::string* out, std::string* err, const std::string& dir) {
  const std::string errfile = dir + "/stderr.txt";
  const std::string cmd = q(synclap_bin()) + " " + args + " 2>" + q(errfile);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::string o;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) o.append(buf, n);
  const int st = pclose(p);
  if (out) *out = o;
  if (err) *err = read_file(errfile);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct Fixture {
  std::string dir, tone, noise, copy, bad;
};

// A 3 s tone, a 12.5 s noise clip (longer than the 10 s window), a byte copy of the tone, a non-audio file.
Fixture make_files(const std::string& name) {
  Fixture f;
  f.dir = test::temp_dir(name);
  Waveform w;
  w.sample_rate = 48000;
  w.samples.resize(3 * 48000);
  for (size_t i = 0; i < w.samples.size(); ++i) w.samples[i] = 0.3f * float(std::sin(2 * M_PI * 440.0 * i / 48000.0));
  f.tone = f.dir + "/tone.wav";
  write_audio(f.tone, w);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 0.1f);
  w.samples.resize(size_t(12.5 * 48000));
  for (auto& v : w.samples) v = nd(rng);
  f.noise = f.dir + "/noise.wav";
  write_audio(f.noise, w);
  f.copy = f.dir + "/tone_copy.wav";
  fs::copy_file(f.tone, f.copy);
  f.bad = f.dir + "/bad.wav";
  write_file_atomic(f.bad, std::string("not audio at all"));
  return f;
}

Embeddings embed_file(const Model& m, const std::string& path, const PreprocessContract& c) {
  DecodeOptions d;
  d.target_rate = c.sample_rate;
  d.int16_roundtrip = c.int16_roundtrip;
  FeatureExtractor fe(c);
  return m.embed_audio({fe.extract(load_audio(path, d).samples)});
}

std::vector<std::vector<int64_t>> tokens(const Model& m, const std::vector<std::string>& texts) {
  const Tokenizer tok = Tokenizer::from_dir(tokenizer_dir());
  std::vector<std::vector<int64_t>> ids;
  for (const auto& t : texts) {
    const auto e = tok.encode(t, int(m.info().max_text_tokens), true);
    ids.emplace_back(e.begin(), e.end());
  }
  return ids;
}

double max_abs_diff(const float* a, const float* b, int64_t n) {
  double d = 0;
  for (int64_t i = 0; i < n; ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
  return d;
}

bool ready() {
  return test::file_exists(synclap_bin()) && test::file_exists(model_path()) &&
         test::file_exists(tokenizer_dir() + "/vocab.json");
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_file(path));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST(CliEmbed, RowsEqualTheLibraryAndBadFilesAreSkipped) {
  if (!ready()) GTEST_SKIP() << "needs the synclap binary, the golden tiny model and the test vocabulary";
  const Fixture f = make_files("cli_embed");
  const std::string out = f.dir + "/emb.npy";
  std::string so, se;
  const int rc = run("--quiet embed --model " + q(model_path()) + " --tokenizer " + q(tokenizer_dir()) + " --audio " +
                         q(f.tone) + " " + q(f.bad) + " " + q(f.noise) + " " + q(f.copy) +
                         " --text 'a dog barking' --text 'solo piano, slow' --batch 2 --out " + q(out),
                     &so, &se, f.dir);
  EXPECT_EQ(rc, 1) << "a skipped file gives exit status 1\n" << so << se;
  EXPECT_NE(se.find("bad.wav"), std::string::npos) << se;
  const NpyArray a = read_npy(out);
  ASSERT_EQ(a.shape, (std::vector<int64_t>{5, 32}));
  // The same command again: the same bytes (deterministic policy, no random crop).
  const std::string first = read_file(out);
  EXPECT_EQ(run("--quiet embed --model " + q(model_path()) + " --tokenizer " + q(tokenizer_dir()) + " --audio " +
                    q(f.tone) + " " + q(f.bad) + " " + q(f.noise) + " " + q(f.copy) +
                    " --text 'a dog barking' --text 'solo piano, slow' --batch 2 --out " + q(out),
                &so, &se, f.dir),
            1);
  EXPECT_TRUE(read_file(out) == first) << "a second run wrote different embeddings";
  for (int64_t r = 0; r < 5; ++r) {
    double n2 = 0;
    for (int64_t d = 0; d < 32; ++d) n2 += double(a.data[size_t(r * 32 + d)]) * a.data[size_t(r * 32 + d)];
    EXPECT_NEAR(std::sqrt(n2), 1.0, 1e-5) << "row " << r;
  }
  // Same file twice in one batch: the same row up to float rounding (batch position changes GEMM blocking).
  EXPECT_LT(max_abs_diff(&a.data[0], &a.data[2 * 32], 32), 1e-6);
  // Rows equal the library's embeddings.
  const Model m = Model::load(model_path());
  const Embeddings tone = embed_file(m, f.tone, m.contract());
  const Embeddings noise = embed_file(m, f.noise, m.contract());
  EXPECT_LT(max_abs_diff(&a.data[0], tone.row(0), 32), 1e-5);
  EXPECT_LT(max_abs_diff(&a.data[32], noise.row(0), 32), 1e-5);
  const Embeddings t = m.embed_text(tokens(m, {"a dog barking", "solo piano, slow"}));
  EXPECT_LT(max_abs_diff(&a.data[3 * 32], t.row(0), 32), 1e-5);
  EXPECT_LT(max_abs_diff(&a.data[4 * 32], t.row(1), 32), 1e-5);
  // A different file gives a different row.
  EXPECT_GT(max_abs_diff(&a.data[0], &a.data[32], 32), 1e-3);

  const auto items = read_jsonl(out + ".items.jsonl");
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[0]["kind"], "audio");
  EXPECT_EQ(items[0]["path"], f.tone);
  EXPECT_EQ(items[1]["path"], f.noise);
  EXPECT_EQ(items[2]["path"], f.copy);
  EXPECT_EQ(items[1]["windows"], 1);
  EXPECT_NE(items[1]["policy"].get<std::string>().find("truncation=middle"), std::string::npos) << items[1].dump();
  EXPECT_EQ(items[3]["kind"], "text");
  EXPECT_EQ(items[3]["text"], "a dog barking");
  EXPECT_EQ(items[4]["row"], 4);

  // The same through .safetensors and a text file, JSON summary on stdout.
  const std::string st = f.dir + "/emb.safetensors";
  write_file_atomic(f.dir + "/texts.txt", std::string("a dog barking\n\nsolo piano, slow\n"));
  ASSERT_EQ(run("--quiet --json embed --model " + q(model_path()) + " --tokenizer " + q(tokenizer_dir()) +
                    " --audio " + q(f.tone) + " " + q(f.noise) + " " + q(f.copy) + " --text-file " +
                    q(f.dir + "/texts.txt") + " --out " + q(st),
                &so, &se, f.dir),
            0)
      << se;
  const auto summary = nlohmann::json::parse(so);
  EXPECT_EQ(summary["rows"], 5);
  EXPECT_EQ(summary["failed"], 0);
  SafetensorsReader r(st);
  const auto& e = r.info("embeddings");
  ASSERT_EQ(e.shape, (std::vector<int64_t>{5, 32}));
  const std::vector<float> v = r.floats("embeddings");
  EXPECT_LT(max_abs_diff(v.data(), a.data.data(), 5 * 32), 1e-6);
}

TEST(CliEmbed, WindowsPolicyAveragesWindowsOverTheWholeClip) {
  if (!ready()) GTEST_SKIP() << "needs the synclap binary, the golden tiny model and the test vocabulary";
  const Fixture f = make_files("cli_embed_windows");
  const std::string out = f.dir + "/emb.npy";
  std::string so, se;
  ASSERT_EQ(run("--quiet embed --model " + q(model_path()) + " --audio " + q(f.noise) + " " + q(f.tone) +
                    " --policy windows --window-hop 5 --out " + q(out),
                &so, &se, f.dir),
            0)
      << se;
  const NpyArray a = read_npy(out);
  ASSERT_EQ(a.shape, (std::vector<int64_t>{2, 32}));
  const auto items = read_jsonl(out + ".items.jsonl");
  ASSERT_EQ(items.size(), 2u);
  EXPECT_GE(items[0]["windows"].get<int>(), 2) << items[0].dump();  // 12.5 s in 10 s windows, 5 s apart
  EXPECT_EQ(items[1]["windows"], 1);
  const Model m = Model::load(model_path());
  PreprocessContract c = m.contract();
  c.truncation = Truncation::Windows;
  c.window_hop_samples = 5 * 48000;
  const Embeddings want = embed_file(m, f.noise, c);
  EXPECT_LT(max_abs_diff(&a.data[0], want.row(0), 32), 1e-5);
  // ... which is not the middle window's embedding.
  const Embeddings middle = embed_file(m, f.noise, m.contract());
  EXPECT_GT(max_abs_diff(&a.data[0], middle.row(0), 32), 1e-4);
}

TEST(CliClassify, ProbabilitiesAreTheSoftmaxOfTheModelsLogits) {
  if (!ready()) GTEST_SKIP() << "needs the synclap binary, the golden tiny model and the test vocabulary";
  const Fixture f = make_files("cli_classify");
  const std::vector<std::string> labels = {"dog", "piano", "rain", "guitar"};
  const std::vector<std::string> templates = {"This is a sound of {label}.", "a recording of {label}"};
  std::string so, se;
  const std::string csv = f.dir + "/out.csv";
  const int rc = run("--quiet --json classify --model " + q(model_path()) + " --tokenizer " + q(tokenizer_dir()) +
                         " --labels 'dog, piano,rain,guitar' --template " + q(templates[0]) + " --template " +
                         q(templates[1]) + " -k 4 --out " + q(csv) + " " + q(f.tone) + " " + q(f.noise) + " " +
                         q(f.bad) + " " + q(f.copy),
                     &so, &se, f.dir);
  EXPECT_EQ(rc, 1) << se;
  EXPECT_NE(se.find("bad.wav"), std::string::npos) << se;
  const auto j = nlohmann::json::parse(so);
  ASSERT_EQ(j["results"].size(), 3u);
  EXPECT_EQ(j["labels"], labels);

  // The same directly: label = normalised mean of its prompts' embeddings; logits; softmax.
  const Model m = Model::load(model_path());
  std::vector<std::string> prompts;
  for (const auto& l : labels)
    for (const auto& t : templates) prompts.push_back(t.substr(0, t.find("{label}")) + l + t.substr(t.find("{label}") + 7));
  const Embeddings pe = m.embed_text(tokens(m, prompts));
  Embeddings le;
  le.rows = 4;
  le.dim = pe.dim;
  for (int64_t i = 0; i < 4; ++i) {
    std::vector<double> acc(size_t(pe.dim), 0.0);
    for (int64_t t = 0; t < 2; ++t)
      for (int64_t d = 0; d < pe.dim; ++d) acc[size_t(d)] += pe.row(i * 2 + t)[d];
    double n = 0;
    for (double v : acc) n += v * v;
    for (double v : acc) le.data.push_back(float(v / std::sqrt(n)));
  }
  const std::vector<std::string> files = {f.tone, f.noise, f.copy};
  for (size_t k = 0; k < files.size(); ++k) {
    const auto& res = j["results"][k];
    EXPECT_EQ(res["file"], files[k]);
    const std::vector<float> lg = m.logits_per_audio(embed_file(m, files[k], m.contract()), le);
    double mx = lg[0];
    size_t arg = 0;
    for (size_t i = 1; i < lg.size(); ++i)
      if (lg[i] > mx) mx = lg[i], arg = i;
    double z = 0;
    for (float v : lg) z += std::exp(v - mx);
    ASSERT_EQ(res["top"].size(), 4u);
    EXPECT_EQ(res["top"][0]["label"], labels[arg]);
    double sum = 0, prev = 2;
    for (const auto& t : res["top"]) {
      const size_t li = size_t(std::find(labels.begin(), labels.end(), t["label"].get<std::string>()) - labels.begin());
      ASSERT_LT(li, labels.size());
      const double p = t["probability"].get<double>();
      EXPECT_NEAR(p, std::exp(lg[li] - mx) / z, 1e-5) << t.dump();
      EXPECT_NEAR(t["logit"].get<double>(), lg[li], 1e-3);
      EXPECT_LE(p, prev);
      prev = p;
      sum += p;
    }
    EXPECT_NEAR(sum, 1.0, 1e-6);
  }
  // The same file twice: the same ranking and probabilities (up to float rounding).
  for (size_t q2 = 0; q2 < 4; ++q2) {
    EXPECT_EQ(j["results"][0]["top"][q2]["label"], j["results"][2]["top"][q2]["label"]);
    EXPECT_NEAR(j["results"][0]["top"][q2]["probability"].get<double>(),
                j["results"][2]["top"][q2]["probability"].get<double>(), 1e-6);
  }
  // The CSV: header + 3 files x 4 ranks.
  std::istringstream in(read_file(csv));
  int lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  EXPECT_EQ(lines, 1 + 3 * 4);
  // The logits use the model's temperature, not a fixed one.
  EXPECT_NEAR(j["logit_scale"].get<double>(), m.info().logit_scale_audio, 1e-6);
}

TEST(CliClassify, ErrorsAreOneLineAndNameTheProblem) {
  if (!ready()) GTEST_SKIP() << "needs the synclap binary, the golden tiny model and the test vocabulary";
  const std::string dir = test::temp_dir("cli_classify_errors");
  std::string so, se;
  EXPECT_EQ(run("classify --model " + q(model_path()) + " --tokenizer " + q(tokenizer_dir()) + " " + q(dir), &so, &se,
                dir),
            1);
  EXPECT_NE(se.find("labels"), std::string::npos) << se;
  EXPECT_EQ(run("embed --model " + q(dir + "/missing.safetensors") + " --text x --out " + q(dir + "/e.npy"), &so, &se,
                dir),
            1);
  EXPECT_NE(se.find("missing.safetensors"), std::string::npos) << se;
  EXPECT_EQ(run("embed --model " + q(model_path()) + " --text x --out " + q(dir + "/e.txt"), &so, &se, dir), 1);
  EXPECT_NE(se.find(".npy"), std::string::npos) << se;
}

// `synclap score -o F.csv` and `synclap fad --per-item -o F.json` write their pictures beside the numbers:
// F.svg, a histogram of the per-item scores / one bar per generated item, the item that worsens FAD most
// first (the order of the JSON's contributions).
TEST(CliScoreFad, PicturesBesideTheResults) {
  if (!ready()) GTEST_SKIP() << "needs the synclap binary, the golden tiny model and the test vocabulary";
  const Fixture f = make_files("cli_score_fad");
  const std::string gen = f.dir + "/gen", ref = f.dir + "/ref";
  fs::create_directories(gen);
  fs::create_directories(ref);
  // Five generated and five reference tones of different pitch (short, so the test stays quick).
  for (int i = 0; i < 5; ++i) {
    Waveform w;
    w.sample_rate = 48000;
    w.samples.resize(48000);
    for (size_t k = 0; k < w.samples.size(); ++k) {
      w.samples[k] = 0.3f * float(std::sin(2 * M_PI * (220.0 * (i + 1)) * k / 48000.0));
    }
    write_audio(gen + "/g" + std::to_string(i) + ".wav", w);
    for (auto& v : w.samples) v *= 0.5f;
    write_audio(ref + "/r" + std::to_string(i) + ".wav", w);
  }
  write_file_atomic(f.dir + "/prompts.csv", std::string("file,prompt\ng0.wav,a low tone\ng1.wav,piano\ng2.wav,rain\n"
                                                        "g3.wav,a dog\ng4.wav,a high tone\n"));
  std::string so, se;
  const std::string csv = f.dir + "/scores.csv";
  ASSERT_EQ(run("--quiet score --model " + q(model_path()) + " --tokenizer " + q(tokenizer_dir()) + " --prompts " +
                    q(f.dir + "/prompts.csv") + " --audio " + q(gen) + " -o " + q(csv),
                &so, &se, f.dir),
            0)
      << se;
  const std::string hist = read_file(f.dir + "/scores.svg");
  EXPECT_EQ(hist.rfind("<svg", 0), 0u);
  size_t bins = 0;
  for (size_t at = hist.find("class=\"bin\""); at != std::string::npos; at = hist.find("class=\"bin\"", at + 1)) ++bins;
  EXPECT_EQ(bins, 5u);  // max(5, min(30, n / 4)) bins
  EXPECT_NE(hist.find("n = 5"), std::string::npos);

  const std::string fj = f.dir + "/fad.json";
  ASSERT_EQ(run("--quiet fad --model " + q(model_path()) + " --tokenizer " + q(tokenizer_dir()) + " --ref " + q(ref) +
                    " --gen " + q(gen) + " --per-item -o " + q(fj),
                &so, &se, f.dir),
            0)
      << se;
  const auto j = nlohmann::json::parse(read_file(fj));
  ASSERT_EQ(j["per_item"].size(), 5u);
  const std::string bars = read_file(f.dir + "/fad.svg");
  size_t n = 0;
  for (size_t at = bars.find("class=\"bar\""); at != std::string::npos; at = bars.find("class=\"bar\"", at + 1)) ++n;
  EXPECT_EQ(n, 5u);
  // The item that worsens FAD most is drawn first.
  std::string worst;
  double worst_v = -1e300;
  for (const auto& it : j["per_item"])
    if (it["contribution"].get<double>() > worst_v) worst_v = it["contribution"], worst = it["item"];
  const size_t first_bar = bars.find("class=\"bar\"");
  const size_t first_name = bars.find(">" + fs::path(worst).filename().string());
  EXPECT_LT(bars.find(fs::path(worst).filename().string()), first_bar) << bars.substr(0, 800);
  EXPECT_NE(first_name, std::string::npos);
}


// A dataset of five one-second tones with genre, ensemble and instrument labels: a-d in the test split, e in train.
static void write_tone_set(const std::string& dir) {
  struct Clip {
    const char* name;
    double hz;
    const char* genre;
    const char* ensemble;
    const char* instruments;
    const char* split;
  };
  const Clip clips[] = {{"a", 220, "rock", "solo", "[\"piano\"]", "test"},
                        {"b", 330, "jazz", "solo", "[\"trumpet\"]", "test"},
                        {"c", 440, "rock", "duo", "[\"piano\",\"drum kit\"]", "test"},
                        {"d", 660, "jazz", "duo", "[\"trumpet\",\"piano\"]", "test"},
                        {"e", 880, "rock", "solo", "[\"piano\"]", "train"}};
  std::string manifest;
  for (const auto& c : clips) {
    Waveform w;
    w.sample_rate = 48000;
    w.samples.resize(48000);
    for (size_t i = 0; i < w.samples.size(); ++i) w.samples[i] = 0.3f * float(std::sin(2 * M_PI * c.hz * i / 48000.0));
    fs::create_directories(dir + "/audio");
    write_audio(dir + "/audio/" + c.name + ".wav", w);
    manifest += std::string("{\"id\":\"") + c.name + "\",\"audio\":\"audio/" + c.name + ".wav\",\"captions\":[\"" +
                c.genre + " music\"],\"labels\":{\"genre\":\"" + c.genre + "\",\"ensemble\":\"" + c.ensemble +
                "\",\"instruments\":" + c.instruments + "},\"split\":\"" + c.split + "\"}\n";
  }
  write_file_atomic(dir + "/manifest.jsonl", manifest);
}

// `synclap eval --where ATTR=VALUE` evaluates a slice of the split: different attributes must all match, values
// of one attribute are alternatives, a list label matches when it holds the value. Zero-shot writes one row per
// clip to predictions.csv; a clip's row is the same whether it is evaluated in a slice or with the whole split.
TEST(CliEval, WhereSlicesTheSplitAndPredictionsListEachClip) {
  if (!ready()) GTEST_SKIP() << "needs the synclap binary, the golden tiny model and the test vocabulary";
  const std::string dir = test::temp_dir("cli_eval_where");
  write_tone_set(dir);
  auto eval = [&](const std::string& where, const std::string& out, std::string* se) {
    std::string so;
    return run("--quiet eval --model " + q(model_path()) + " --tokenizer " + q(tokenizer_dir()) + " --data " + q(dir) +
                   " --task zeroshot --label genre --templates '{} music' " + where + " -o " + q(dir + "/" + out),
               &so, se, dir);
  };
  auto items_of = [&](const std::string& out) {
    std::set<std::string> names;
    for (const auto& r : test::read_csv(dir + "/" + out + "/predictions.csv"))
      names.insert(fs::path(r.at("audio")).stem().string());
    return names;
  };
  std::string se;
  ASSERT_EQ(eval("", "all", &se), 0) << se;
  EXPECT_EQ(items_of("all"), (std::set<std::string>{"a", "b", "c", "d"}));
  ASSERT_EQ(eval("--where ensemble=solo", "solo", &se), 0) << se;
  EXPECT_EQ(items_of("solo"), (std::set<std::string>{"a", "b"}));
  const auto solo = nlohmann::json::parse(read_file(dir + "/solo/result.json"));
  EXPECT_EQ(solo["items"], 2);
  EXPECT_EQ(solo["where"], "ensemble=solo");
  ASSERT_EQ(eval("--where instruments=piano --where genre=jazz", "piano_jazz", &se), 0) << se;
  EXPECT_EQ(items_of("piano_jazz"), (std::set<std::string>{"d"}));
  ASSERT_EQ(eval("--where ensemble=solo --where ensemble=duo", "either", &se), 0) << se;
  EXPECT_EQ(items_of("either").size(), 4u);

  // A clip's row is the same in the slice as in the whole split, and the rows agree with result.json.
  const auto all_rows = test::read_csv(dir + "/all/predictions.csv");
  const auto all_result = nlohmann::json::parse(read_file(dir + "/all/result.json"));
  int correct = 0;
  for (const auto& r : all_rows) {
    correct += std::stoi(r.at("correct"));
    EXPECT_EQ(r.at("correct") == "1", r.at("label") == r.at("predicted"));
    EXPECT_GE(std::stod(r.at("margin")), 0.0);
  }
  EXPECT_NEAR(all_result["top1"].get<double>(), correct / 4.0, 1e-9);
  // (A slice is classified among the label's values over the whole split: "jazz" alone would be trivial.)
  for (const char* slice : {"solo", "piano_jazz"})
    for (const auto& r : test::read_csv(dir + "/" + slice + "/predictions.csv")) {
      bool found = false;
      for (const auto& a : all_rows)
        if (a.at("audio") == r.at("audio")) {
          found = true;
          EXPECT_EQ(a, r) << slice;
        }
      EXPECT_TRUE(found) << r.at("audio");
    }
  EXPECT_EQ(nlohmann::json::parse(read_file(dir + "/piano_jazz/result.json"))["classes"].size(), 2u);

  // Bad filters: one line naming the problem.
  EXPECT_EQ(eval("--where ensemble", "bad1", &se), 1);
  EXPECT_NE(se.find("ATTR=VALUE"), std::string::npos) << se;
  EXPECT_EQ(eval("--where ensemble=orchestra", "bad2", &se), 1);
  EXPECT_NE(se.find("no item of split 'test' matches --where ensemble=orchestra"), std::string::npos) << se;
}

// Without --templates, zero-shot asks with the prompts the model was trained to classify the label with
// (synclap train stores its label_prompts in the checkpoint's safetensors metadata); a label the training did
// not classify, or a model without them, gets the general templates; --templates wins over both.
TEST(CliEval, DefaultTemplatesAreTheModelsTrainingPrompts) {
  if (!ready()) GTEST_SKIP() << "needs the synclap binary, the golden tiny model and the test vocabulary";
  const std::string dir = test::temp_dir("cli_eval_trained_templates");
  write_tone_set(dir);
  // The golden model with label-prompt metadata, as a training run with label_prompts writes it.
  auto with_prompts = [&](const std::string& value, const std::string& path) {
    const SafetensorsReader in(model_path());
    SafetensorsWriter out;
    for (const auto& name : in.names()) {
      const TensorInfo& t = in.info(name);
      out.add(name, t.dtype, t.shape, in.raw(name), size_t(t.end - t.begin));
    }
    for (const auto& [k, v] : in.metadata()) out.set_metadata(k, v);
    out.set_metadata("synclap_label_prompts", value);
    out.write(path);
    return path;
  };
  const std::string model =
      with_prompts(R"({"genre": ["a {} track", "{} tune"], "lead": ["a {} lead"]})", dir + "/trained.safetensors");
  auto eval = [&](const std::string& m, const std::string& label, const std::string& extra, const std::string& out) {
    std::string so, se;
    const int rc = run("--quiet eval --model " + q(m) + " --tokenizer " + q(tokenizer_dir()) + " --data " + q(dir) +
                           " --task zeroshot --label " + label + " " + extra + " -o " + q(dir + "/" + out),
                       &so, &se, dir);
    EXPECT_EQ(rc, 0) << se;
    return nlohmann::json::parse(read_file(dir + "/" + out + "/result.json"));
  };
  const auto trained = eval(model, "genre", "", "trained");
  EXPECT_EQ(trained["templates"], nlohmann::json::parse(R"(["a {} track", "{} tune"])"));
  EXPECT_EQ(trained["templates_from"], "training");
  const auto other_label = eval(model, "ensemble", "", "other_label");
  EXPECT_EQ(other_label["templates_from"], "default");
  EXPECT_EQ(other_label["templates"].size(), 3u);
  const auto plain = eval(model_path(), "genre", "", "plain");
  EXPECT_EQ(plain["templates_from"], "default");
  EXPECT_EQ(plain["templates"], other_label["templates"]);
  const auto given = eval(model, "genre", "--templates '{} music'", "given");
  EXPECT_EQ(given["templates"], nlohmann::json::parse(R"(["{} music"])"));
  EXPECT_EQ(given["templates_from"], "given");
  // The trained prompts were used, not only recorded: the scores are those of asking with them explicitly, and
  // not those of the general templates.
  eval(model, "genre", "--templates 'a {} track' '{} tune'", "explicit");
  const auto rows_trained = test::read_csv(dir + "/trained/predictions.csv");
  EXPECT_EQ(rows_trained, test::read_csv(dir + "/explicit/predictions.csv"));
  const auto rows_plain = test::read_csv(dir + "/plain/predictions.csv");
  ASSERT_EQ(rows_trained.size(), rows_plain.size());
  bool differ = false;
  for (size_t i = 0; i < rows_trained.size(); ++i) differ |= rows_trained[i].at("score") != rows_plain[i].at("score");
  EXPECT_TRUE(differ);
  // Malformed metadata is an error naming the file.
  const std::string bad = with_prompts(R"({"genre": "a {} track"})", dir + "/bad.safetensors");
  std::string so, se;
  EXPECT_EQ(run("--quiet eval --model " + q(bad) + " --tokenizer " + q(tokenizer_dir()) +
                    " --data " + q(dir) + " --task zeroshot --label genre -o " + q(dir + "/bad"),
                &so, &se, dir),
            1);
  EXPECT_NE(se.find("bad.safetensors"), std::string::npos) << se;
  EXPECT_NE(se.find("is not a list"), std::string::npos) << se;
}
