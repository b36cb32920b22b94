// Training data: manifest and shard reading, loader determinism (thread count, resume, ranks), the
// feature cache (memory, disk, corrupt files), bad audio substitution and caption augmentation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "data/data_internal.h"
#include "data/train_data.h"
#include "synclap/audio.h"
#include "synclap/error.h"
#include "synclap/frontend.h"
#include "synclap/synth.h"
#include "synclap/util.h"
#include "test_support.h"

using namespace synclap;
namespace fs = std::filesystem;

namespace {

// A tiny dataset: n clips of 0.5 .. 2 s (48 kHz, WAV and FLAC), 3 captions each.
std::string make_dataset(const std::string& name, int n, const std::vector<int>& bad = {}) {
  const std::string dir = test::temp_dir(name);
  fs::create_directories(fs::path(dir) / "audio");
  std::ofstream man(fs::path(dir) / "manifest.jsonl");
  for (int i = 0; i < n; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "clip_%03d", i);
    const std::string rel = std::string("audio/") + id + (i % 2 ? ".flac" : ".wav");
    const double seconds = 0.5 + 0.15 * (i % 11);
    if (std::find(bad.begin(), bad.end(), i) != bad.end()) {
      std::ofstream(fs::path(dir) / rel) << "this is not audio at all";
    } else {
      Waveform w;
      w.sample_rate = 48000;
      w.samples.resize(size_t(seconds * 48000));
      for (size_t k = 0; k < w.samples.size(); ++k)
        w.samples[k] = float(0.3 * std::sin(2 * M_PI * (220.0 + 37.0 * i) * double(k) / 48000.0) +
                             0.05 * std::sin(0.001 * double(k * (i + 1))));
      write_audio((fs::path(dir) / rel).string(), w);
    }
    nlohmann::json j;
    j["id"] = id;
    j["audio"] = rel;
    j["captions"] = {"A Dog barking loudly, in a park, at night", "sound number " + std::to_string(i),
                     "clip " + std::to_string(i) + ", with hum"};
    j["labels"] = {{"k", i}};
    j["split"] = i % 4 == 3 ? "val" : "train";
    j["duration"] = seconds;
    man << j.dump() << "\n";
  }
  return dir;
}

PreprocessContract small_contract(Truncation t) {
  PreprocessContract c = PreprocessContract::clap_unfused();
  c.max_samples = 48000;  // 1 s window: clips above 1 s are cut
  c.truncation = t;
  return c;
}

LoaderOptions base_options(Truncation t = Truncation::Middle) {
  LoaderOptions o;
  o.contract = small_contract(t);
  o.batch_size = 3;
  o.seed = 7;
  o.workers = 1;
  o.prefetch = 2;
  return o;
}

std::vector<Batch> run_epoch(Loader& l, int64_t epoch, int64_t first = 0) {
  std::vector<Batch> out;
  l.start_epoch(epoch, first);
  Batch b;
  while (l.next(b)) out.push_back(b);
  return out;
}

void expect_same(const Batch& a, const Batch& b) {
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.items, b.items);
  EXPECT_EQ(a.captions, b.captions);
  ASSERT_EQ(a.features.sizes(), b.features.sizes());
  EXPECT_TRUE(torch::equal(a.features, b.features));
  EXPECT_TRUE(torch::equal(a.is_longer, b.is_longer));
}

LogMel reference_mel(const PreprocessContract& c, const std::string& path, uint32_t rng_seed) {
  DecodeOptions d;
  d.target_rate = c.sample_rate;
  const Waveform w = load_audio(path, d);
  FeatureExtractor fx(c);
  NumpyRandom rng(rng_seed);
  return fx.extract(w.samples, &rng);
}
std::vector<float> reference_features(const PreprocessContract& c, const std::string& path, uint32_t rng_seed) {
  return reference_mel(c, path, rng_seed).data;
}

std::vector<float> row(const Batch& b, int i) {
  const auto t = b.features[i].contiguous();
  return std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
}

}  // namespace

TEST(TrainData, ReadsManifest) {
  const std::string dir = make_dataset("td_manifest", 6);
  {  // an item without caption is skipped
    std::ofstream man(fs::path(dir) / "manifest.jsonl", std::ios::app);
    man << R"({"id": "nocap", "audio": "audio/clip_000.wav", "captions": []})" << "\n";
    man << R"({"path": "audio/clip_001.flac", "caption": "single caption"})" << "\n";
  }
  testing::internal::CaptureStderr();
  const auto items = read_train_items(dir);
  const std::string err = testing::internal::GetCapturedStderr();
  ASSERT_EQ(items.size(), 7u);
  EXPECT_NE(err.find("no caption"), std::string::npos);
  EXPECT_EQ(items[0].id, "clip_000");
  EXPECT_EQ(items[0].audio, (fs::path(dir) / "audio/clip_000.wav").string());
  EXPECT_EQ(items[0].captions.size(), 3u);
  EXPECT_EQ(items[2].labels["k"], 2);
  EXPECT_EQ(items[3].split, "val");
  EXPECT_NEAR(items[1].duration, 0.65, 1e-9);
  EXPECT_EQ(items[6].captions, std::vector<std::string>{"single caption"});
  EXPECT_EQ(items[6].id, "clip_001");
  EXPECT_EQ(read_train_items(dir, "val").size(), 1u);
  EXPECT_EQ(read_train_items((fs::path(dir) / "manifest.jsonl").string(), "train").size(), 5u);
  EXPECT_THROW(read_train_items(dir + "/nope"), FileError);
  const std::string bad = test::temp_dir("td_manifest_bad");
  std::ofstream(fs::path(bad) / "manifest.jsonl") << "{\"audio\": \"x.wav\"\nnot json\n";
  EXPECT_THROW(read_train_items(bad), FileError);
}

TEST(TrainData, ReadsWebdatasetShards) {
#ifndef SYNCLAP_HAVE_LIBARCHIVE
  GTEST_SKIP() << "synclap built without libarchive (cannot write shards)";
#else
  const std::string dir = make_dataset("td_tar", 5);
  const std::string shards = test::temp_dir("td_tar_shards");
  ASSERT_EQ(write_webdataset(dir, shards, 2).size(), 3u);
  const auto from_manifest = read_train_items(dir);
  const auto items = read_train_items(shards);
  ASSERT_EQ(items.size(), 5u);
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(items[i].id, from_manifest[i].id);
    EXPECT_EQ(items[i].captions, from_manifest[i].captions);
    EXPECT_EQ(items[i].labels, from_manifest[i].labels);
    EXPECT_EQ(items[i].split, from_manifest[i].split);
    EXPECT_GE(items[i].tar_offset, 512);
    const Waveform a = data::read_item_audio(items[i], {});
    const Waveform b = load_audio(from_manifest[i].audio);
    EXPECT_EQ(a.samples, b.samples) << items[i].audio;
  }
  EXPECT_EQ(read_train_items(shards + "/shard-000001.tar").size(), 2u);
  EXPECT_EQ(read_train_items(shards, "val").size(), 1u);
  // The loader reads shard members like files.
  LoaderOptions o = base_options();
  o.batch_size = 2;
  Loader tar_loader(items, o), file_loader(from_manifest, o);
  const auto a = run_epoch(tar_loader, 0), b = run_epoch(file_loader, 0);
  ASSERT_EQ(a.size(), 2u);
  for (size_t k = 0; k < a.size(); ++k) expect_same(a[k], b[k]);
  // A truncated shard is reported, naming the file.
  const std::string cut = test::temp_dir("td_tar_cut") + "/cut.tar";
  const std::string bytes = read_file(shards + "/shard-000000.tar");
  write_file_atomic(cut, bytes.substr(0, 1500));
  EXPECT_THROW(read_train_items(cut), FileError);
#endif
}

TEST(TrainData, DeterministicAcrossWorkerCounts) {
  const auto items = read_train_items(make_dataset("td_det", 11));
  LoaderOptions o = base_options(Truncation::RandTrunc);
  o.caption_augment.prob = 0.5;
  o.audio_augment = R"([{"type": "gain", "db": [-6, 6]}, {"type": "noise", "snr_db": [20, 30], "p": 0.5}])";
  o.audio_augment_prob = 0.5;
  o.workers = 1;
  Loader one(items, o);
  o.workers = 3;
  o.prefetch = 1;
  Loader three(items, o);
  o.workers = 0;
  Loader inline_loader(items, o);
  EXPECT_EQ(one.batches_per_epoch(), 3);
  for (int64_t e : {0, 1}) {
    const auto a = run_epoch(one, e), b = run_epoch(three, e), c = run_epoch(inline_loader, e);
    ASSERT_EQ(a.size(), 3u);
    ASSERT_EQ(b.size(), 3u);
    ASSERT_EQ(c.size(), 3u);
    for (size_t k = 0; k < a.size(); ++k) {
      expect_same(a[k], b[k]);
      expect_same(a[k], c[k]);
      EXPECT_EQ(a[k].features.sizes(), (std::vector<int64_t>{3, 1, 101, 64}));
    }
  }
  // Epochs differ in order, and the augmentation was exercised.
  const auto e0 = run_epoch(one, 0), e1 = run_epoch(one, 1);
  EXPECT_NE(e0[0].items, e1[0].items);
  EXPECT_GT(one.stats().augmented, 0);
  // Each epoch visits distinct items (no repeats within the kept batches).
  std::set<int64_t> seen;
  for (const auto& b : e0)
    for (auto i : b.items) EXPECT_TRUE(seen.insert(i).second);
  EXPECT_EQ(seen.size(), 9u);
}

TEST(TrainData, ResumeAtBatchK) {
  const auto items = read_train_items(make_dataset("td_resume", 13));
  LoaderOptions o = base_options(Truncation::RandTrunc);
  o.batch_size = 2;
  o.caption_augment.prob = 1.0;
  o.workers = 2;
  Loader a(items, o), b(items, o);
  const auto full = run_epoch(a, 4);
  ASSERT_EQ(full.size(), 6u);
  const auto tail = run_epoch(b, 4, 2);
  ASSERT_EQ(tail.size(), 4u);
  for (size_t k = 0; k < tail.size(); ++k) expect_same(full[k + 2], tail[k]);
  EXPECT_TRUE(run_epoch(b, 4, 6).empty());
  EXPECT_THROW(b.start_epoch(4, 7), Error);
  // Restarting mid-epoch (abandoning prefetched batches) is fine.
  b.start_epoch(4, 0);
  Batch x;
  ASSERT_TRUE(b.next(x));
  expect_same(full[0], x);
  const auto again = run_epoch(b, 4, 5);
  ASSERT_EQ(again.size(), 1u);
  expect_same(full[5], again[0]);
}

TEST(TrainData, RankSlicesPartitionGlobalBatch) {
  const auto items = read_train_items(make_dataset("td_ranks", 14));
  LoaderOptions o = base_options(Truncation::RandTrunc);
  o.batch_size = 6;
  Loader whole(items, o);
  o.batch_size = 2;
  o.world_size = 3;
  std::vector<std::vector<Batch>> parts;
  for (int r = 0; r < 3; ++r) {
    o.rank = r;
    Loader l(items, o);
    EXPECT_EQ(l.batches_per_epoch(), 2);
    parts.push_back(run_epoch(l, 3));
  }
  const auto all = run_epoch(whole, 3);
  ASSERT_EQ(all.size(), 2u);
  for (size_t k = 0; k < 2; ++k) {
    std::vector<int64_t> joined;
    for (int r = 0; r < 3; ++r) {
      ASSERT_EQ(parts[r][k].items.size(), 2u);
      joined.insert(joined.end(), parts[r][k].items.begin(), parts[r][k].items.end());
      EXPECT_TRUE(torch::equal(parts[r][k].features, all[k].features.slice(0, 2 * r, 2 * r + 2)));
    }
    EXPECT_EQ(joined, all[k].items);
  }
  // Validation: keep the last incomplete batch.
  o.world_size = 1;
  o.rank = 0;
  o.batch_size = 4;
  o.drop_last = false;
  o.shuffle = false;
  Loader val(items, o);
  const auto v = run_epoch(val, 0);
  ASSERT_EQ(v.size(), 4u);
  EXPECT_EQ(v[3].items, (std::vector<int64_t>{12, 13}));
  EXPECT_EQ(v[3].features.size(0), 2);
}

TEST(TrainData, CacheHitOnSecondEpochAndAcrossLoaders) {
  const std::string dir = make_dataset("td_cache", 8);
  const auto items = read_train_items(dir);
  const std::string cache = test::temp_dir("td_cache_files");
  LoaderOptions o = base_options(Truncation::Middle);
  o.batch_size = 4;
  o.cache_dir = cache;
  o.workers = 2;
  std::vector<Batch> first;
  {
    Loader l(items, o);
    first = run_epoch(l, 0);
    EXPECT_EQ(l.stats().decoded, 8);
    EXPECT_EQ(l.stats().cache_misses, 8);
    EXPECT_EQ(l.stats().cache_hits, 0);
    run_epoch(l, 1);
    EXPECT_EQ(l.stats().decoded, 8);  // epoch 1 comes from memory
    EXPECT_EQ(l.stats().cache_hits, 8);
  }
  EXPECT_EQ(test::glob_files(cache, "*.f32").size(), 8u);
  o.memory_cache_mb = 0;
  Loader fresh(items, o);
  const auto again = run_epoch(fresh, 0);
  EXPECT_EQ(fresh.stats().decoded, 0);  // all from disk
  EXPECT_EQ(fresh.stats().cache_hits, 8);
  ASSERT_EQ(again.size(), first.size());
  for (size_t k = 0; k < again.size(); ++k) expect_same(first[k], again[k]);
  // A changed file (new mtime and size) is not served from the cache.
  Waveform w;
  w.sample_rate = 48000;
  w.samples.assign(30000, 0.1f);
  write_audio(items[0].audio, w);
  Loader changed(items, o);
  run_epoch(changed, 0);
  EXPECT_EQ(changed.stats().decoded, 1);
  // Long clips with random crops keep their waveform in memory: no second decode.
  LoaderOptions r = base_options(Truncation::RandTrunc);
  r.batch_size = 4;
  Loader rl(items, r);
  const auto r0 = run_epoch(rl, 0), r1 = run_epoch(rl, 1);
  EXPECT_EQ(rl.stats().decoded, 8);
  EXPECT_EQ(rl.stats().cache_hits, 4);  // the 4 clips that fit the window (epoch 1)
  EXPECT_EQ(rl.stats().cache_misses, 12);  // 8 in epoch 0, the 4 long clips again in epoch 1
}

TEST(TrainData, CorruptCacheFileIgnored) {
  const auto items = read_train_items(make_dataset("td_corrupt", 4));
  const std::string cache = test::temp_dir("td_corrupt_files");
  LoaderOptions o = base_options(Truncation::Middle);
  o.batch_size = 4;
  o.shuffle = false;
  o.cache_dir = cache;
  o.memory_cache_mb = 0;
  Loader l(items, o);
  const auto ref = run_epoch(l, 0);
  const auto files = test::glob_files(cache, "*.f32");
  ASSERT_EQ(files.size(), 4u);
  {  // truncate one, flip a data byte in another, garbage in a third
    std::string a = read_file(files[0]);
    write_file_atomic(files[0], a.substr(0, a.size() / 2));
    std::string b = read_file(files[1]);
    b[b.size() - 100] ^= 0x40;
    write_file_atomic(files[1], b);
    write_file_atomic(files[2], "garbage");
  }
  Loader fresh(items, o);
  const auto got = run_epoch(fresh, 0);
  EXPECT_EQ(fresh.stats().decoded, 3);
  EXPECT_EQ(fresh.stats().cache_hits, 1);
  ASSERT_EQ(got.size(), 1u);
  expect_same(ref[0], got[0]);
  Loader third(items, o);  // the files were rewritten
  run_epoch(third, 0);
  EXPECT_EQ(third.stats().decoded, 0);
  // A file of another contract is a miss, not a crash.
  LoaderOptions other = o;
  other.contract.n_mels = 32;
  Loader l32(items, other);
  const auto g32 = run_epoch(l32, 0);
  EXPECT_EQ(l32.stats().decoded, 4);
  EXPECT_EQ(g32[0].features.size(3), 32);
}

TEST(TrainData, BadAudioSkippedAndReplaced) {
  const auto items = read_train_items(make_dataset("td_bad", 9, {4}));
  LoaderOptions o = base_options(Truncation::RandTrunc);
  o.batch_size = 3;
  o.workers = 3;
  Loader l(items, o);
  testing::internal::CaptureStderr();
  const auto e0 = run_epoch(l, 0);
  const auto e1 = run_epoch(l, 1);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("synclap: skipping " + items[4].audio + ": "), std::string::npos) << err;
  EXPECT_EQ(err.find("skipping"), err.rfind("skipping")) << "reported more than once: " << err;
  const auto s = l.stats();
  ASSERT_EQ(s.bad_items.size(), 1u);
  EXPECT_EQ(s.bad_items[0].rfind(items[4].audio + ": ", 0), 0u);
  for (const auto* ep : {&e0, &e1}) {
    ASSERT_EQ(ep->size(), 3u);
    for (const auto& b : *ep) {
      EXPECT_EQ(b.features.size(0), 3);
      EXPECT_EQ(b.items.size(), 3u);
      for (auto i : b.items) EXPECT_NE(i, 4);
    }
  }
  // The substitute is deterministic: a single-threaded loader (which meets the bad file fresh) agrees.
  o.workers = 1;
  Loader l1(items, o);
  testing::internal::CaptureStderr();
  const auto f1 = run_epoch(l1, 1);
  testing::internal::GetCapturedStderr();
  for (size_t k = 0; k < f1.size(); ++k) expect_same(e1[k], f1[k]);
}

TEST(TrainData, CaptionAugmentation) {
  CaptionAugment a;
  a.prob = 1.0;
  a.word_drop = 0.3;
  const std::string cap = "A Dog barking loudly, in a Park, at night, with distant Traffic noise";
  std::set<std::string> outs;
  for (uint64_t s = 0; s < 50; ++s) {
    const std::string x = augment_caption(cap, s, a);
    EXPECT_EQ(x, augment_caption(cap, s, a));
    EXPECT_FALSE(x.empty());
    EXPECT_EQ(x.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), std::string::npos) << x;
    // the head (last) word of every phrase survives
    for (const char* w : {"loudly", "park", "night", "noise"}) EXPECT_NE(x.find(w), std::string::npos) << x;
    outs.insert(x);
  }
  EXPECT_GT(outs.size(), 10u);
  for (const std::string s : {"", " ", ",,,", "a", "Dog"}) {
    const std::string x = augment_caption(s, 3, a);
    if (s.find_first_not_of(" ,") == std::string::npos) EXPECT_EQ(x, s);
    else EXPECT_FALSE(x.empty());
  }
  a.prob = 0.0;
  EXPECT_EQ(augment_caption(cap, 1, a), cap);
  a.prob = 1.0;
  a.word_drop = 0;
  a.shuffle_phrases = false;
  EXPECT_EQ(augment_caption(cap, 1, a), "a dog barking loudly, in a park, at night, with distant traffic noise");
  a.prob = 0.5;
  int changed = 0;
  for (uint64_t s = 0; s < 200; ++s) changed += augment_caption(cap, s, a) != cap;
  EXPECT_GT(changed, 60);
  EXPECT_LT(changed, 140);
}

TEST(TrainData, FeaturesEqualExtractorOutput) {
  const auto items = read_train_items(make_dataset("td_feat", 6));
  LoaderOptions o = base_options(Truncation::Middle);
  o.batch_size = 6;
  o.cache_dir = test::temp_dir("td_feat_cache");
  o.random_caption = false;
  Loader l(items, o);
  for (int64_t e : {0, 1}) {  // computed, then cached
    const auto b = run_epoch(l, e);
    ASSERT_EQ(b.size(), 1u);
    for (int i = 0; i < 6; ++i) {
      const auto& it = items[size_t(b[0].items[size_t(i)])];
      EXPECT_EQ(row(b[0], i), reference_features(o.contract, it.audio, 0)) << it.audio;
      EXPECT_EQ(b[0].captions[size_t(i)], it.captions[0]);
      EXPECT_EQ(b[0].is_longer[i].item<bool>(), reference_mel(o.contract, it.audio, 0).is_longer);
    }
  }
  EXPECT_EQ(l.stats().cache_hits, 6);
  // Random crops come from NumpyRandom(derive_seed(seed, epoch, item, 4)).
  LoaderOptions r = base_options(Truncation::RandTrunc);
  r.batch_size = 6;
  Loader rl(items, r);
  const auto b = run_epoch(rl, 2);
  for (int i = 0; i < 6; ++i) {
    const int64_t item = b[0].items[size_t(i)];
    const uint32_t s = uint32_t(data::derive_seed(r.seed, 2, item, 4));
    EXPECT_EQ(row(b[0], i), reference_features(r.contract, items[size_t(item)].audio, s));
  }
}

TEST(TrainData, FusionContractFeatures) {
  const auto items = read_train_items(make_dataset("td_fusion", 8));
  LoaderOptions o = base_options(Truncation::Fusion);
  o.contract.fusion = true;
  o.contract.chunk_choice = ChunkChoice::Random;
  o.batch_size = 8;
  o.workers = 2;
  Loader l(items, o);
  for (int64_t e : {0, 1}) {
    const auto b = run_epoch(l, e);
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].features.sizes(), (std::vector<int64_t>{8, 4, 101, 64}));
    for (int i = 0; i < 8; ++i) {
      const int64_t item = b[0].items[size_t(i)];
      const LogMel ref = reference_mel(o.contract, items[size_t(item)].audio, uint32_t(data::derive_seed(o.seed, e, item, 4)));
      EXPECT_EQ(row(b[0], i), ref.data) << "epoch " << e << " item " << item;
      EXPECT_EQ(b[0].is_longer[i].item<bool>(), ref.is_longer);
    }
  }
  // Short clips (4 of 8) come from the cache in epoch 1; long ones are re-cropped from memory.
  EXPECT_EQ(l.stats().cache_hits, 4);
  EXPECT_EQ(l.stats().decoded, 8);
}

TEST(TrainData, NoUsableItemIsAnError) {
  const auto items = read_train_items(make_dataset("td_allbad", 3, {0, 1, 2}));
  LoaderOptions o = base_options();
  o.batch_size = 1;
  for (int workers : {0, 2}) {
    o.workers = workers;
    testing::internal::CaptureStderr();
    {
      Loader l(items, o);
      l.start_epoch(0);
      Batch b;
      EXPECT_THROW(l.next(b), Error);
      EXPECT_EQ(l.stats().bad_items.size(), 3u);
    }
    testing::internal::GetCapturedStderr();
  }
}

// Captions from labels (a stage's "label_captions"): placeholders filled from the labels, lists joined in
// prose, templates whose labels an item lacks skipped, items with no applicable template keep their captions.
TEST(LabelCaptions, FillAndApply) {
  const auto labels = nlohmann::json::parse(
      R"({"genre": "bossa nova", "lead": "alto sax", "bpm": 120, "instruments": ["piano", "bass", "drum kit"],
          "mood": null, "key": ""})");
  std::string out = "unchanged";
  EXPECT_TRUE(fill_label_caption("{genre} music with a {lead} lead", labels, out));
  EXPECT_EQ(out, "bossa nova music with a alto sax lead");
  EXPECT_TRUE(fill_label_caption("{instruments} at {bpm} BPM {{live}}", labels, out));
  EXPECT_EQ(out, "piano, bass and drum kit at 120 BPM {live}");
  out = "unchanged";
  EXPECT_FALSE(fill_label_caption("{mood} {genre}", labels, out));  // null label
  EXPECT_FALSE(fill_label_caption("in {key}", labels, out));        // empty label
  EXPECT_FALSE(fill_label_caption("{tempo} music", labels, out));   // missing label
  EXPECT_EQ(out, "unchanged");
  EXPECT_THROW(fill_label_caption("{genre music", labels, out), Error);
  EXPECT_THROW(fill_label_caption("{} music", labels, out), Error);
  EXPECT_THROW(fill_label_caption("genre} music", labels, out), Error);
  EXPECT_THROW(check_label_caption_template("plain music", "stage 0"), Error);
  EXPECT_NO_THROW(check_label_caption_template("{genre}", "stage 0"));

  std::vector<TrainItem> items(3);
  items[0].captions = {"own 0"};
  items[0].labels = labels;
  items[1].captions = {"own 1"};
  items[1].labels = nlohmann::json::parse(R"({"genre": "techno"})");
  items[2].captions = {"own 2"};
  const size_t kept = apply_label_captions(items, {"{genre} music with a {lead} lead", "{genre} music"});
  EXPECT_EQ(kept, 1u);
  EXPECT_EQ(items[0].captions, (std::vector<std::string>{"bossa nova music with a alto sax lead", "bossa nova music"}));
  EXPECT_EQ(items[1].captions, (std::vector<std::string>{"techno music"}));
  EXPECT_EQ(items[2].captions, (std::vector<std::string>{"own 2"}));

  // keep_own_captions: the label captions come first, then the item's own.
  std::vector<TrainItem> mixed(2);
  mixed[0].captions = {"own a", "own b"};
  mixed[0].labels = labels;
  mixed[1].captions = {"own c"};
  EXPECT_EQ(apply_label_captions(mixed, {"{genre} music"}, true), 1u);
  EXPECT_EQ(mixed[0].captions, (std::vector<std::string>{"bossa nova music", "own a", "own b"}));
  EXPECT_EQ(mixed[1].captions, (std::vector<std::string>{"own c"}));
}
