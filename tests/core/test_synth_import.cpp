// synclap dataset: importing real data (CSV / JSONL captions, webdataset tars), coverage statistics,
// and webdataset shards that import back to the same records.
#ifdef SYNCLAP_HAVE_FLUIDSYNTH
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>

#include "synclap/audio.h"
#include "synclap/error.h"
#include "synclap/synth.h"
#include "synclap/util.h"
#include "test_support.h"

using namespace synclap;
namespace fs = std::filesystem;

namespace {

void write_tone(const std::string& path, double hz, int rate, double seconds) {
  Waveform w;
  w.sample_rate = rate;
  w.samples.resize(size_t(rate * seconds));
  for (size_t i = 0; i < w.samples.size(); ++i) w.samples[i] = float(0.3 * std::sin(2 * M_PI * hz * double(i) / rate));
  write_audio(path, w);
}

std::vector<nlohmann::json> records(const std::string& dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(dir + "/manifest.jsonl");
  for (std::string l; std::getline(in, l);) out.push_back(nlohmann::json::parse(l));
  return out;
}

}  // namespace

TEST(SynthImport, CsvWithQuotedCaptionsAndLabels) {
  const std::string src = test::temp_dir("import_csv_src"), out = test::temp_dir("import_csv_out");
  write_tone(src + "/a.wav", 440, 44100, 0.5);
  write_tone(src + "/b.flac", 220, 16000, 0.25);
  std::ofstream(src + "/captions.csv") << "file,caption,caption2,genre,split\n"
                                          "a.wav,\"A man plays a \"\"bright\"\" tone, loudly\",second one,test-tone,val\n"
                                          "b.flac,low hum,,drone,\n"
                                          "missing.wav,nothing,,x,\n";
  ImportOptions o;
  o.out_dir = out;
  o.audio_dir = src;
  o.captions_file = src + "/captions.csv";
  o.progress = false;
  const auto r = import_dataset(o);
  EXPECT_EQ(r.imported, 2);
  EXPECT_EQ(r.failed, 1);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("missing.wav"), std::string::npos);
  const auto recs = records(out);
  ASSERT_EQ(recs.size(), 2u);
  EXPECT_EQ(recs[0]["captions"][0], "A person plays a \"bright\" tone, loudly");  // de-biased, quotes kept
  EXPECT_EQ(recs[0]["captions"][1], "second one");
  EXPECT_EQ(recs[0]["labels"]["genre"], "test-tone");
  EXPECT_EQ(recs[0]["split"], "val");
  EXPECT_EQ(recs[1]["captions"].size(), 1u);
  const Waveform w = load_audio(out + "/" + recs[1]["audio"].get<std::string>(), {0});
  EXPECT_EQ(w.sample_rate, 48000);
  EXPECT_EQ(w.samples.size(), 12000u);
  // Re-running keeps what is there.
  const auto r2 = import_dataset(o);
  EXPECT_EQ(r2.kept, 2);
  EXPECT_EQ(r2.imported, 0);
}

TEST(SynthImport, JsonlAndStatsCoverage) {
  const std::string src = test::temp_dir("import_jsonl_src"), out = test::temp_dir("import_jsonl_out");
  write_tone(src + "/x.wav", 300, 48000, 0.2);
  write_tone(src + "/y.wav", 600, 48000, 0.2);
  std::ofstream(src + "/c.jsonl") << R"({"path": "x.wav", "captions": ["one", "two"], "labels": {"genre": "jazz", "instruments": ["piano", "drum kit"]}})"
                                  << "\n"
                                  << R"({"audio": "y.wav", "text": "three", "genre": "rock"})" << "\n";
  ImportOptions o;
  o.out_dir = out;
  o.audio_dir = src;
  o.captions_file = src + "/c.jsonl";
  o.progress = false;
  EXPECT_EQ(import_dataset(o).imported, 2);
  const Vocabulary v = Vocabulary::load(std::string(SYNCLAP_SOURCE_DIR) + "/configs/vocab/default.json");
  const auto s = nlohmann::json::parse(dataset_stats_json(out, &v));
  EXPECT_EQ(s["clips"], 2);
  EXPECT_EQ(s["captions"], 3);
  EXPECT_EQ(s["labels"]["genre"]["jazz"], 1);
  EXPECT_EQ(s["labels"]["genre"]["rock"], 1);
  EXPECT_EQ(s["labels"]["instrument"]["piano"], 1);
  EXPECT_EQ(s["missing"]["genre"].size(), v.genres.size() - 2);
  EXPECT_THROW(dataset_stats_json(src + "/nope"), FileError);
}

#ifdef SYNCLAP_HAVE_LIBARCHIVE
TEST(SynthImport, WebdatasetShardsRoundTrip) {
  const std::string ds = test::temp_dir("wds_src");
  SynthRunOptions so;
  so.out_dir = ds;
  so.count = 5;
  so.seconds = 0.5;
  so.seed = 4;
  so.vocab_path = std::string(SYNCLAP_SOURCE_DIR) + "/configs/vocab/default.json";
  so.progress = false;
  run_synth(so);
  const std::string shards_dir = test::temp_dir("wds_shards");
  const auto shards = write_webdataset(ds, shards_dir, 2);
  ASSERT_EQ(shards.size(), 3u);
  // Deterministic bytes.
  const std::string again = test::temp_dir("wds_shards2");
  EXPECT_EQ(sha256_file(shards[0]), sha256_file(write_webdataset(ds, again, 2)[0]));
  ImportOptions o;
  o.out_dir = test::temp_dir("wds_back");
  o.tars = shards;
  o.progress = false;
  EXPECT_EQ(import_dataset(o).imported, 5);
  const auto a = records(ds), b = records(o.out_dir);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["captions"], b[i]["captions"]);
    EXPECT_EQ(a[i]["labels"], b[i]["labels"]);
    EXPECT_EQ(a[i]["split"], b[i]["split"]);
    // FLAC is lossless: the same samples.
    EXPECT_EQ(load_audio(ds + "/" + a[i]["audio"].get<std::string>()).samples,
              load_audio(o.out_dir + "/" + b[i]["audio"].get<std::string>()).samples);
  }
  // A corrupt tar is refused, named.
  std::ofstream(shards_dir + "/bad.tar") << std::string(700, 'x');
  ImportOptions bad;
  bad.out_dir = test::temp_dir("wds_bad");
  bad.tars = {shards_dir + "/bad.tar"};
  bad.progress = false;
  EXPECT_THROW(import_dataset(bad), FileError);
}
#endif
#endif  // SYNCLAP_HAVE_FLUIDSYNTH
