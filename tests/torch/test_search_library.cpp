// Library indexing: the SQLite store, incremental re-index, bad files, resume after a kill, shards and
// their merge, filters together with the vector search, library-only file access. The embedder is a
// stand-in that maps a sine tone's frequency (from zero crossings) to a bump on a 32-d axis, so
// neighbours are known: tones of close frequencies are close.
#if defined(SYNCLAP_HAVE_FAISS)
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "search/library_indexer.h"
#include "synclap/audio.h"
#include "synclap/error.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace synclap::search {
namespace {

constexpr int kDim = 32;

std::vector<float> bump(double freq) {
  std::vector<float> v(kDim);
  const double c = freq / 100.0;
  for (int j = 0; j < kDim; ++j) v[size_t(j)] = float(std::exp(-(j - c) * (j - c) / 2.0)) + 1e-3f;
  return v;
}

double tone_frequency(const Waveform& w) {
  int64_t crossings = 0;
  for (size_t i = 1; i < w.samples.size(); ++i) crossings += (w.samples[i - 1] < 0) != (w.samples[i] < 0);
  return crossings / 2.0 / w.duration_s();
}

struct FakeModel {
  int calls = 0;
  int64_t clips = 0;
  AudioEmbedder embedder() {
    AudioEmbedder e;
    e.model = "fake-tone-model";
    e.sample_rate = 16000;
    e.dim = kDim;
    e.embed = [this](const std::vector<Waveform>& ws) {
      ++calls;
      clips += int64_t(ws.size());
      std::vector<std::vector<float>> out;
      for (const auto& w : ws) out.push_back(bump(tone_frequency(w)));
      return out;
    };
    return e;
  }
};

void write_tone(const std::string& path, double freq, double seconds) {
  fs::create_directories(fs::path(path).parent_path());
  Waveform w;
  w.sample_rate = 16000;
  w.samples.resize(size_t(seconds * 16000));
  for (size_t i = 0; i < w.samples.size(); ++i) w.samples[i] = float(0.5 * std::sin(2 * M_PI * freq * (i + 0.5) / 16000.0));
  write_audio(path, w);
}

std::string make_library(const std::string& name) {
  const std::string lib = test::temp_dir(name) + "/lib";
  write_tone(lib + "/Rock/a_200.wav", 200, 2);
  write_tone(lib + "/rock/b_400.wav", 400, 4);
  write_tone(lib + "/jazz/c_420.wav", 420, 1);
  write_tone(lib + "/jazz/live/d_1000.flac", 1000, 3);
  write_tone(lib + "/e_2500.wav", 2500, 1.5);
  std::ofstream(lib + "/jazz/broken.wav") << "RIFF this is not audio";
  std::ofstream(lib + "/notes.txt") << "not audio, ignored";
  return lib;
}

IndexOptions options(const std::string& lib, const std::string& out) {
  IndexOptions o;
  o.library = lib;
  o.out = out;
  o.progress = false;
  o.batch = 2;
  return o;
}

std::vector<std::string> paths(const std::vector<SearchResult>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs) out.push_back(r.item.path);
  return out;
}

TEST(SearchLibrary, IndexSearchAndFilters) {
  const std::string lib = make_library("search_lib_basic");
  const std::string out = fs::path(lib).parent_path().string() + "/index";
  FakeModel m;
  IndexReport r = index_library(options(lib, out), m.embedder());
  EXPECT_EQ(r.files, 6);
  EXPECT_EQ(r.embedded, 5);
  EXPECT_EQ(r.failed, 1);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("broken.wav"), std::string::npos);
  EXPECT_EQ(r.items, 5);
  EXPECT_EQ(r.structure, "Flat");

  LibraryIndex li = LibraryIndex::open(out);
  EXPECT_EQ(li.size(), 5);
  EXPECT_EQ(li.model(), "fake-tone-model");
  // Nearest to 410 Hz: the 400 and 420 Hz tones, then 200 Hz.
  auto res = li.search(bump(410), 3);
  ASSERT_EQ(res.size(), 3u);
  const auto rp = paths(res);
  EXPECT_EQ(rp[2], "Rock/a_200.wav");
  EXPECT_EQ(std::set<std::string>(rp.begin(), rp.begin() + 2),
            (std::set<std::string>{"rock/b_400.wav", "jazz/c_420.wav"}));
  EXPECT_GT(res[0].score, 0.9f);
  // Metadata came along.
  auto b = li.store().find("rock/b_400.wav");
  ASSERT_TRUE(b);
  EXPECT_NEAR(b->duration_s, 4.0, 1e-3);
  EXPECT_EQ(b->tags, std::vector<std::string>{"rock"});
  EXPECT_EQ(b->sample_rate, 16000);
  EXPECT_EQ(b->sha256.size(), 64u);

  SearchFilter f;
  f.tags = {"jazz"};
  EXPECT_EQ(paths(li.search(bump(400), 10, f)), (std::vector<std::string>{"jazz/c_420.wav", "jazz/live/d_1000.flac"}));
  f = {};
  f.min_duration_s = 2.5;
  EXPECT_EQ(paths(li.search(bump(400), 10, f)), (std::vector<std::string>{"rock/b_400.wav", "jazz/live/d_1000.flac"}));
  f = {};
  f.max_duration_s = 1.6;
  f.path_glob = "*.wav";
  EXPECT_EQ(paths(li.search(bump(2000), 10, f)), (std::vector<std::string>{"e_2500.wav", "jazz/c_420.wav"}));
  f = {};
  f.tags = {"ROCK"};  // folder names are tags, case-insensitively
  EXPECT_EQ(li.search(bump(100), 10, f).size(), 2u);
  f.tags = {"jazz", "live"};
  EXPECT_EQ(paths(li.search(bump(100), 10, f)), std::vector<std::string>{"jazz/live/d_1000.flac"});
  f.tags = {"nope"};
  EXPECT_TRUE(li.search(bump(100), 10, f).empty());
}

TEST(SearchLibrary, IncrementalReindex) {
  const std::string lib = make_library("search_lib_incremental");
  const std::string out = fs::path(lib).parent_path().string() + "/index";
  FakeModel m;
  index_library(options(lib, out), m.embedder());
  const int64_t clips0 = m.clips;
  EXPECT_EQ(clips0, 5);
  const int64_t old_id = LibraryIndex::open(out).store().find("Rock/a_200.wav")->id;

  // Nothing changed: nothing decoded or embedded, the bad file skipped.
  IndexReport r = index_library(options(lib, out), m.embedder());
  EXPECT_EQ(m.clips, clips0);
  EXPECT_EQ(r.unchanged, 5);
  EXPECT_EQ(r.skipped_bad, 1);
  EXPECT_EQ(r.embedded + r.failed + r.removed, 0);

  // One file changed (another tone), one touched only, one copied, one deleted, the bad one repaired.
  write_tone(lib + "/Rock/a_200.wav", 3000, 2);
  fs::last_write_time(lib + "/rock/b_400.wav", fs::last_write_time(lib + "/rock/b_400.wav") + std::chrono::seconds(5));
  fs::copy_file(lib + "/jazz/c_420.wav", lib + "/jazz/c_copy.wav");
  fs::remove(lib + "/e_2500.wav");
  write_tone(lib + "/jazz/broken.wav", 800, 1);
  r = index_library(options(lib, out), m.embedder());
  EXPECT_EQ(m.clips, clips0 + 2);  // the changed file and the repaired one
  EXPECT_EQ(r.embedded, 2);
  EXPECT_EQ(r.reused, 1);
  EXPECT_EQ(r.removed, 1);
  EXPECT_EQ(r.failed, 0);
  EXPECT_EQ(r.items, 6);

  LibraryIndex li = LibraryIndex::open(out);
  EXPECT_EQ(li.size(), 6);
  auto a = li.store().find("Rock/a_200.wav");
  ASSERT_TRUE(a);
  EXPECT_NE(a->id, old_id);                  // changed content: new id ...
  EXPECT_FALSE(li.store().get(old_id));      // ... and the old one is gone
  EXPECT_EQ(paths(li.search(bump(3000), 1)), std::vector<std::string>{"Rock/a_200.wav"});
  EXPECT_TRUE(li.store().failures().empty());
  for (const auto& res : li.search(bump(2500), 10)) EXPECT_NE(res.item.path, "e_2500.wav");
  const auto copy = paths(li.search(bump(420), 2));
  EXPECT_EQ(std::set<std::string>(copy.begin(), copy.end()),
            (std::set<std::string>{"jazz/c_420.wav", "jazz/c_copy.wav"}));
}

TEST(SearchLibrary, ResumesAfterKillWithNothingCorrupted) {
  const std::string dir = test::temp_dir("search_lib_resume");
  const std::string lib = dir + "/lib", out = dir + "/index";
  for (int i = 0; i < 9; ++i) write_tone(lib + "/t" + std::to_string(i) + ".wav", 100 + 150 * i, 0.5);
  // A child process indexes in batches of 2 and is SIGKILLed inside the third embedding call, i.e. with
  // two batches committed and the third in flight.
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    FakeModel m;
    AudioEmbedder e = m.embedder();
    auto inner = e.embed;
    e.embed = [inner, &m](const std::vector<Waveform>& ws) {
      if (m.calls == 2) ::kill(::getpid(), SIGKILL);
      return inner(ws);
    };
    try {
      index_library(options(lib, out), e);
    } catch (...) {
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  {
    LibraryStore s = LibraryStore::open(out + "/library.db", false);
    EXPECT_EQ(s.count(), 4);  // the two committed batches, nothing half-written
  }
  EXPECT_FALSE(fs::exists(out + "/vectors.idx"));
  FakeModel m;
  IndexReport r = index_library(options(lib, out), m.embedder());
  EXPECT_EQ(r.unchanged, 4);
  EXPECT_EQ(r.embedded, 5);
  EXPECT_EQ(m.clips, 5);
  LibraryIndex li = LibraryIndex::open(out);
  EXPECT_EQ(li.size(), 9);
  for (int i = 0; i < 9; ++i)
    EXPECT_EQ(li.search(bump(100 + 150 * i), 1).at(0).item.path, "t" + std::to_string(i) + ".wav");
}

TEST(SearchLibrary, ShardsMergeToTheFullIndex) {
  const std::string lib = make_library("search_lib_shards");
  const std::string base = fs::path(lib).parent_path().string();
  FakeModel m;
  int64_t files = 0;
  for (int i = 0; i < 3; ++i) {
    IndexOptions o = options(lib, base + "/shard" + std::to_string(i));
    o.shard_index = i;
    o.shard_count = 3;
    files += index_library(o, m.embedder()).files;
  }
  EXPECT_EQ(files, 6);  // every file in exactly one shard
  EXPECT_EQ(m.clips, 5);
  EXPECT_EQ(merge_indexes({base + "/shard0", base + "/shard1", base + "/shard2"}, base + "/merged"), 5);
  index_library(options(lib, base + "/full"), m.embedder());
  LibraryIndex merged = LibraryIndex::open(base + "/merged"), full = LibraryIndex::open(base + "/full");
  EXPECT_EQ(merged.size(), 5);
  for (double f : {150.0, 410.0, 990.0, 2600.0}) EXPECT_EQ(paths(merged.search(bump(f), 5)), paths(full.search(bump(f), 5)));
  EXPECT_THROW(merge_indexes({base + "/shard0"}, base + "/merged"), FileError);  // never over an index
  // Shards of another model are refused.
  AudioEmbedder other = m.embedder();
  other.model = "other";
  EXPECT_THROW(index_library(options(lib, base + "/full"), other), FileError);
}

TEST(SearchLibrary, OnlyLibraryFilesAreHandedOut) {
  const std::string dir = test::temp_dir("search_lib_paths");
  const std::string lib = dir + "/lib", out = dir + "/index";
  write_tone(lib + "/in.wav", 300, 0.5);
  write_tone(dir + "/secret.wav", 600, 0.5);
  fs::create_symlink(dir + "/secret.wav", lib + "/link.wav");  // points outside the library
  FakeModel m;
  index_library(options(lib, out), m.embedder());
  LibraryIndex li = LibraryIndex::open(out);
  const int64_t in = li.store().find("in.wav")->id, link = li.store().find("link.wav")->id;
  EXPECT_EQ(li.audio_path(in), fs::canonical(lib + "/in.wav").string());
  EXPECT_THROW(li.audio_path(link), FileError);
  EXPECT_THROW(li.audio_path(123456), Error);
  fs::remove(lib + "/in.wav");
  EXPECT_THROW(li.audio_path(in), FileError);
}

TEST(SearchLibrary, StoreRefusesForeignDatabases) {
  const std::string dir = test::temp_dir("search_store_foreign");
  std::ofstream(dir + "/junk.db") << "definitely not sqlite, but long enough to look like a header....";
  EXPECT_THROW(LibraryStore::open(dir + "/junk.db", false), FileError);
  EXPECT_THROW(LibraryStore::open(dir + "/missing.db", false), FileError);
  EXPECT_THROW(LibraryIndex::open(dir), FileError);
  EXPECT_EQ(split_tags(join_tags({"a", "b|c", "d"})), (std::vector<std::string>{"a", "d"}));
}

}  // namespace
}  // namespace synclap::search
#endif  // SYNCLAP_HAVE_FAISS
