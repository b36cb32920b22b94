// synclap synth's dataset directory: determinism for a seed, resumability after an interrupted run,
// and the external generator hook (quoting, timeout, retries, recorded failures).
#ifdef SYNCLAP_HAVE_FLUIDSYNTH
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "synclap/audio.h"
#include "synclap/error.h"
#include "synclap/synth.h"
#include "synclap/util.h"
#include "test_support.h"

using namespace synclap;
namespace fs = std::filesystem;

namespace {

std::string vocab_path() { return std::string(SYNCLAP_SOURCE_DIR) + "/configs/vocab/default.json"; }

SynthRunOptions options(const std::string& dir, int64_t count) {
  SynthRunOptions o;
  o.out_dir = dir;
  o.count = count;
  o.seed = 99;
  o.seconds = 1.0;
  o.vocab_path = vocab_path();
  o.threads = 2;
  o.progress = false;
  return o;
}

std::string slurp(const std::string& p) { return read_file(p); }

// A tiny text-to-music stand-in: writes a 16-bit WAV sine (frequency from the seed) and records the
// prompt it got, so the test can check the quoting.
std::string write_generator(const std::string& dir) {
  const std::string path = dir + "/gen.py";
  std::ofstream(path) << R"(import sys, wave, struct, math
a = dict(zip(sys.argv[1::2], sys.argv[2::2]))
open(a['--out'] + '.prompt', 'w').write(a['--prompt'])
rate = 16000; n = int(float(a['--seconds']) * rate); f = 200 + int(a['--seed']) % 800
w = wave.open(a['--out'], 'wb'); w.setnchannels(1); w.setsampwidth(2); w.setframerate(rate)
w.writeframes(b''.join(struct.pack('<h', int(8000 * math.sin(2 * math.pi * f * i / rate))) for i in range(n)))
w.close()
)";
  return path;
}

}  // namespace

TEST(SynthDataset, DeterministicForASeedWithEveryLabel) {
  const std::string a = test::temp_dir("synth_det_a"), b = test::temp_dir("synth_det_b");
  auto oa = options(a, 6);
  auto ob = options(b, 6);
  ob.threads = 1;  // the thread count must not matter
  const auto ra = run_synth(oa);
  run_synth(ob);
  EXPECT_EQ(ra.made, 6);
  EXPECT_EQ(slurp(a + "/manifest.jsonl"), slurp(b + "/manifest.jsonl"));
  for (int i = 0; i < 6; ++i) {
    char id[16];
    std::snprintf(id, sizeof id, "%06d", i);
    EXPECT_EQ(sha256_file(a + "/audio/" + id + ".flac"), sha256_file(b + "/audio/" + id + ".flac")) << id;
  }
  std::ifstream in(a + "/manifest.jsonl");
  int n = 0;
  for (std::string line; std::getline(in, line); ++n) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["index"], n);
    for (const char* k : {"genre", "instruments", "parts", "mood", "tempo", "bpm", "key", "mode", "time_signature",
                          "dynamics", "ensemble", "production"})
      EXPECT_TRUE(j["labels"].contains(k)) << k;
    EXPECT_EQ(j["captions"].size(), 5u);
    EXPECT_TRUE(std::set<std::string>({"train", "val", "test", "heldout"}).count(j["split"].get<std::string>()));
    const Waveform w = load_audio(a + "/" + j["audio"].get<std::string>(), {});
    EXPECT_EQ(w.samples.size(), 48000u);
    EXPECT_DOUBLE_EQ(j["duration"].get<double>(), 1.0);
  }
  EXPECT_EQ(n, 6);
  const auto meta = nlohmann::json::parse(slurp(a + "/dataset.json"));
  EXPECT_EQ(meta["seed"], 99);
  EXPECT_EQ(meta["heldout_pairs"].size(), 8u);
}

TEST(SynthDataset, InterruptedRunThenRerunEqualsOneRun) {
  const std::string one = test::temp_dir("synth_one"), two = test::temp_dir("synth_two");
  run_synth(options(one, 7));
  auto partial = options(two, 7);
  partial.stop_after = 3;  // "killed" after three clips: unsorted manifest, no final rewrite
  const auto r1 = run_synth(partial);
  EXPECT_EQ(r1.made, 3);
  // What a kill can leave: a torn manifest line and a temporary audio file.
  { std::ofstream(two + "/manifest.jsonl", std::ios::app) << "{\"id\":\"000006\",\"index\":6,\"aud"; }
  { std::ofstream(two + "/audio/000005.flac.tmp.12345") << "half"; }
  const auto r2 = run_synth(options(two, 7));
  EXPECT_EQ(r2.kept, 3);
  EXPECT_EQ(r2.made, 4);
  EXPECT_EQ(slurp(one + "/manifest.jsonl"), slurp(two + "/manifest.jsonl"));
  EXPECT_FALSE(fs::exists(two + "/audio/000005.flac.tmp.12345"));
  // A third run has nothing to do; a larger count continues.
  const auto r3 = run_synth(options(two, 7));
  EXPECT_EQ(r3.made, 0);
  EXPECT_EQ(r3.kept, 7);
  const auto r4 = run_synth(options(two, 9));
  EXPECT_EQ(r4.made, 2);
  // Other settings are refused, not mixed in.
  auto other = options(two, 9);
  other.seed = 5;
  EXPECT_THROW(run_synth(other), Error);
}

TEST(SynthExternal, ShellQuotingKeepsTheCaptionIntact) {
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(fill_command("gen --prompt {caption} --n {seconds} {unknown}", {{"caption", "a b"}, {"seconds", "10"}}),
            "gen --prompt 'a b' --n '10' {unknown}");
  const std::string dir = test::temp_dir("synth_ext_quote");
  const std::string gen = write_generator(dir);
  ExternalGenerator g;
  g.command_template = "/usr/bin/python3 " + gen + " --prompt {caption} --seconds {seconds} --out {wav} --seed {seed}";
  g.timeout_s = 60;
  const std::string nasty = "it's a \"test\" $(touch " + dir + "/pwned) `id` ; rm -rf /nonexistent";
  const Waveform w = g.generate(nasty, 0.5, 7, dir + "/scratch");
  EXPECT_EQ(w.sample_rate, 48000);
  EXPECT_EQ(w.samples.size(), 24000u);
  EXPECT_EQ(read_file(dir + "/scratch/gen-7.wav.prompt"), nasty);
  EXPECT_FALSE(fs::exists(dir + "/pwned"));
}

TEST(SynthExternal, FailuresAreRetriedTimedOutAndRecorded) {
  const std::string dir = test::temp_dir("synth_ext_fail");
  ExternalGenerator g;
  g.command_template = "echo x >> " + dir + "/attempts; echo boom >&2; exit 3";
  g.retries = 2;
  try {
    g.generate("anything", 1.0, 1, dir + "/scratch");
    FAIL() << "a failing command was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exit code 3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("boom"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_file(dir + "/attempts"), "x\nx\nx\n");
  g.command_template = "sleep 30";
  g.timeout_s = 0.3;
  g.retries = 0;
  const double t0 = now_seconds();
  EXPECT_THROW(g.generate("anything", 1.0, 1, dir + "/scratch"), Error);
  EXPECT_LT(now_seconds() - t0, 10.0);  // killed, not waited for

  // In a batch: every failure is recorded and the batch finishes.
  auto o = options(test::temp_dir("synth_ext_batch"), 3);
  o.generator = "cmd:exit 1";
  o.retries = 0;
  const auto r = run_synth(o);
  EXPECT_EQ(r.failed, 3);
  EXPECT_EQ(r.made, 0);
  std::ifstream in(o.out_dir + "/failures.jsonl");
  int lines = 0;
  for (std::string l; std::getline(in, l);) {
    EXPECT_NE(nlohmann::json::parse(l)["error"].get<std::string>().find("exit code 1"), std::string::npos);
    ++lines;
  }
  EXPECT_EQ(lines, 3);
}

TEST(SynthExternal, BatchWithAGeneratorWritesTheDataset) {
  const std::string dir = test::temp_dir("synth_ext_ok");
  const std::string gen = write_generator(dir);
  auto o = options(dir + "/out", 3);
  o.generator = "cmd:/usr/bin/python3 " + gen + " --prompt {caption} --seconds {seconds} --out {wav} --seed {seed}";
  const auto r = run_synth(o);
  EXPECT_EQ(r.made, 3);
  EXPECT_EQ(r.failed, 0);
  std::ifstream in(o.out_dir + "/manifest.jsonl");
  int n = 0;
  for (std::string l; std::getline(in, l); ++n) {
    const auto j = nlohmann::json::parse(l);
    EXPECT_EQ(j["generator"], "cmd");
    EXPECT_EQ(load_audio(o.out_dir + "/" + j["audio"].get<std::string>(), {}).samples.size(), 48000u);
  }
  EXPECT_EQ(n, 3);
}
#endif  // SYNCLAP_HAVE_FLUIDSYNTH
