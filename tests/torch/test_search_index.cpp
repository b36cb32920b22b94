// The vector index: exact and approximate search on synthetic vectors with known neighbours, filters
// applied inside the search, stable ids across adds / removals / the automatic switch, save and load.
#if defined(SYNCLAP_HAVE_FAISS)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include "search/vector_index.h"
#include "synclap/error.h"
#include "test_support.h"

namespace synclap::search {
namespace {

std::vector<float> random_unit(int64_t n, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> v(static_cast<size_t>(n) * size_t(dim));
  for (auto& x : v) x = g(rng);
  for (int64_t i = 0; i < n; ++i) normalize(v.data() + size_t(i) * size_t(dim), dim);
  return v;
}

std::vector<int64_t> iota_ids(int64_t n, int64_t first, int64_t step = 1) {
  std::vector<int64_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[size_t(i)] = first + i * step;
  return ids;
}

// Brute-force reference: ids of the k best inner products (ties by smaller id).
std::vector<int64_t> brute(const std::vector<float>& data, const std::vector<int64_t>& ids, int dim, const float* q,
                           int k, const std::function<bool(int64_t)>& allow = nullptr) {
  std::vector<std::pair<float, int64_t>> s;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (allow && !allow(ids[i])) continue;
    double d = 0;
    for (int j = 0; j < dim; ++j) d += double(q[j]) * data[i * size_t(dim) + size_t(j)];
    s.push_back({float(d), ids[i]});
  }
  std::sort(s.begin(), s.end(), [](auto& a, auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  std::vector<int64_t> out;
  for (size_t i = 0; i < s.size() && int(i) < k; ++i) out.push_back(s[i].second);
  return out;
}

std::vector<int64_t> hit_ids(const std::vector<SearchHit>& h) {
  std::vector<int64_t> out;
  for (auto& x : h) out.push_back(x.id);
  return out;
}

TEST(SearchIndex, ExactFindsPlantedNeighboursWithScores) {
  const int dim = 32;
  auto data = random_unit(2000, dim, 1);
  auto ids = iota_ids(2000, 1000, 7);  // ids unrelated to positions
  VectorIndex vi(dim);
  vi.add(data.data(), 2000, ids.data());
  EXPECT_EQ(vi.structure(), "Flat");
  EXPECT_EQ(vi.size(), 2000);
  // A query equal to a stored vector finds it first with score 1; a slightly perturbed copy too.
  for (int probe : {0, 17, 1999}) {
    std::vector<float> q(data.begin() + probe * dim, data.begin() + (probe + 1) * dim);
    for (int j = 0; j < dim; ++j) q[size_t(j)] = q[size_t(j)] * 3.0f + (j % 2 ? 0.01f : -0.01f);  // scale must not matter
    auto hits = vi.search(q.data(), 10);
    ASSERT_EQ(hits.size(), 10u);
    EXPECT_EQ(hits[0].id, ids[size_t(probe)]);
    EXPECT_GT(hits[0].score, 0.99f);
    EXPECT_EQ(hit_ids(hits), brute(data, ids, dim, q.data(), 10)) << "probe " << probe;
    for (size_t i = 1; i < hits.size(); ++i) EXPECT_GE(hits[i - 1].score, hits[i].score);
  }
}

TEST(SearchIndex, FiltersAreAppliedInsideTheSearch) {
  const int dim = 16;
  auto data = random_unit(3000, dim, 2);
  auto ids = iota_ids(3000, 0);
  VectorIndex vi(dim);
  vi.add(data.data(), 3000, ids.data());
  auto q = random_unit(1, dim, 99);
  // Only multiples of 97: 31 allowed rows; a post-filter of the top-10 would return almost nothing.
  auto allow = [](int64_t id) { return id % 97 == 0; };
  auto hits = vi.search(q.data(), 10, allow);
  ASSERT_EQ(hits.size(), 10u);
  EXPECT_EQ(hit_ids(hits), brute(data, ids, dim, q.data(), 10, allow));
  for (auto& h : hits) EXPECT_EQ(h.id % 97, 0);
  // Fewer allowed rows than k: all of them.
  auto few = vi.search(q.data(), 10, [](int64_t id) { return id < 3; });
  EXPECT_EQ(few.size(), 3u);
  EXPECT_TRUE(vi.search(q.data(), 10, [](int64_t) { return false; }).empty());
}

TEST(SearchIndex, RemoveSkipsIdsAndCompactKeepsTheRest) {
  const int dim = 8;
  auto data = random_unit(500, dim, 3);
  auto ids = iota_ids(500, 1);
  VectorIndex vi(dim, "Flat");
  vi.add(data.data(), 500, ids.data());
  std::vector<int64_t> gone;
  for (int64_t i = 1; i <= 500; i += 2) gone.push_back(i);
  EXPECT_EQ(vi.remove(gone), 250);
  EXPECT_EQ(vi.remove({1, 3, 123456}), 0);
  EXPECT_EQ(vi.size(), 250);
  auto q = random_unit(1, dim, 5);
  auto even = [](int64_t id) { return id % 2 == 0; };
  auto expect = brute(data, ids, dim, q.data(), 10, even);
  EXPECT_EQ(hit_ids(vi.search(q.data(), 10)), expect);
  vi.compact();
  EXPECT_EQ(vi.stored(), 250);
  EXPECT_EQ(hit_ids(vi.search(q.data(), 10)), expect);
  // A removed id can come back (a re-embedded file), with its new vector.
  vi.add(q.data(), 1, gone.data());
  EXPECT_EQ(vi.search(q.data(), 1)[0].id, gone[0]);
  EXPECT_THROW(vi.add(q.data(), 1, gone.data()), Error);  // now present: refused
}

TEST(SearchIndex, AutoSwitchesToIvfAndKeepsIdsAndRecall) {
  const int dim = 24;
  const int64_t threshold = 4000, n = threshold + 1000;
  auto data = random_unit(n, dim, 4);
  auto ids = iota_ids(n, 10, 3);
  VectorIndex vi(dim, "auto", threshold);
  // Added in two parts: the switch happens inside the second add.
  const int64_t first = threshold - 10;
  vi.add(data.data(), first, ids.data());
  EXPECT_EQ(vi.structure(), "Flat");
  vi.add(data.data() + size_t(first) * dim, n - first, ids.data() + first);
  // ~4 sqrt(5000) = 283 -> 256 lists, but at most 5000 / 39 -> 128; a query visits 64 of them.
  EXPECT_EQ(VectorIndex::auto_nlist(n), 128);
  EXPECT_EQ(VectorIndex::auto_nprobe(128), 64);
  EXPECT_EQ(VectorIndex::auto_nprobe(4096), 64);
  EXPECT_EQ(VectorIndex::auto_nprobe(16384), 256);
  EXPECT_EQ(vi.structure(), "IVF128,Flat");
  EXPECT_EQ(vi.size(), n);
  auto queries = random_unit(40, dim, 77);
  int found = 0;
  for (int i = 0; i < 40; ++i) {
    const float* q = queries.data() + i * dim;
    auto truth = hit_ids(vi.search_exact(q, 10));
    EXPECT_EQ(truth, brute(data, ids, dim, q, 10));
    auto got = hit_ids(vi.search(q, 10));
    for (auto id : got) found += std::count(truth.begin(), truth.end(), id);
  }
  EXPECT_GE(found, int(0.95 * 400)) << "recall@10 of the automatic IVF on 24-d data";
  // Saved and loaded, the index answers the same.
  const std::string path = test::temp_dir("search_index_auto") + "/v.idx";
  vi.save(path);
  VectorIndex back = VectorIndex::load(path);
  EXPECT_EQ(back.structure(), "IVF128,Flat");
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(hit_ids(back.search(queries.data() + i * dim, 10)), hit_ids(vi.search(queries.data() + i * dim, 10)));
  // A stored vector is its own nearest neighbour under its id.
  EXPECT_EQ(vi.search(data.data() + 4321 * dim, 1)[0].id, ids[4321]);
  // Filtered approximate search (allowed set above the exact limit) still returns only allowed ids.
  VectorSearchOptions o;
  o.exact_filter_limit = 100;
  auto allow = [](int64_t id) { return (id / 3) % 5 == 0; };
  auto hits = vi.search(queries.data(), 10, allow, o);
  ASSERT_EQ(hits.size(), 10u);
  for (auto& h : hits) EXPECT_TRUE(allow(h.id));
  auto truth = brute(data, ids, dim, queries.data(), 10, allow);
  int common = 0;
  for (auto& h : hits) common += std::count(truth.begin(), truth.end(), h.id);
  EXPECT_GE(common, 8);
}

TEST(SearchIndex, FactoryOverrideIvf) {
  const int dim = 16;
  auto data = random_unit(4000, dim, 6);
  auto ids = iota_ids(4000, 0);
  VectorIndex vi(dim, "IVF16,Flat");
  vi.add(data.data(), 4000, ids.data());  // trained on the first add
  EXPECT_EQ(vi.structure(), "IVF16,Flat");
  auto q = random_unit(1, dim, 8);
  VectorSearchOptions o;
  o.nprobe = 16;  // all lists: exact
  EXPECT_EQ(hit_ids(vi.search(q.data(), 5, nullptr, o)), brute(data, ids, dim, q.data(), 5));
  EXPECT_EQ(vi.vector(77), std::vector<float>(data.begin() + 77 * dim, data.begin() + 78 * dim));
  EXPECT_THROW(VectorIndex(dim, "NoSuchIndex12"), Error);
}

TEST(SearchIndex, AutoRetrainsWithMoreListsAsItGrows) {
  const int dim = 16;
  auto data = random_unit(10000, dim, 11);
  auto ids = iota_ids(10000, 5, 2);
  VectorIndex vi(dim, "auto", 1000);
  vi.add(data.data(), 2000, ids.data());
  EXPECT_EQ(vi.structure(), "IVF32,Flat");  // 4 sqrt(2000) = 179 -> 128, capped at 2000 / 39 -> 32
  vi.add(data.data() + 2000 * dim, 8000, ids.data() + 2000);
  EXPECT_EQ(vi.structure(), "IVF256,Flat");  // retrained: 4 sqrt(10000) = 400 -> 512, capped -> 256
  EXPECT_EQ(vi.size(), 10000);
  for (int64_t i : {0, 1999, 2000, 7777, 9999}) EXPECT_EQ(vi.search(data.data() + i * dim, 1)[0].id, ids[size_t(i)]);
  VectorSearchOptions all;
  all.nprobe = 256;  // every list: exact
  auto q = random_unit(1, dim, 12);
  EXPECT_EQ(hit_ids(vi.search(q.data(), 10, nullptr, all)), brute(data, ids, dim, q.data(), 10));
}

TEST(SearchIndex, FactoryOverrideHnswSavesAndLoads) {
  const int dim = 24;
  auto data = random_unit(3000, dim, 13);
  auto ids = iota_ids(3000, 100);
  VectorIndex vi(dim, "HNSW32");
  vi.add(data.data(), 3000, ids.data());
  EXPECT_EQ(vi.structure(), "HNSW32");
  auto queries = random_unit(20, dim, 14);
  int found = 0;
  for (int i = 0; i < 20; ++i) {
    auto truth = brute(data, ids, dim, queries.data() + i * dim, 10);
    for (auto id : hit_ids(vi.search(queries.data() + i * dim, 10))) found += std::count(truth.begin(), truth.end(), id);
  }
  EXPECT_GE(found, int(0.95 * 200)) << "recall@10 of HNSW32 on 24-d data";
  const std::string path = test::temp_dir("search_index_hnsw") + "/v.idx";
  vi.save(path);
  VectorIndex back = VectorIndex::load(path);
  EXPECT_EQ(back.structure(), "HNSW32");
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(hit_ids(back.search(queries.data() + i * dim, 10)), hit_ids(vi.search(queries.data() + i * dim, 10)));
}

TEST(SearchIndex, SaveLoadRoundTripAndCorruptionIsAnError) {
  const std::string dir = test::temp_dir("search_index_io");
  const int dim = 12;
  auto data = random_unit(300, dim, 9);
  auto ids = iota_ids(300, 5, 2);
  VectorIndex vi(dim);
  vi.add(data.data(), 300, ids.data());
  vi.remove({5, 7});
  const std::string path = dir + "/v.idx";
  vi.save(path);
  VectorIndex back = VectorIndex::load(path);
  EXPECT_EQ(back.size(), 298);
  EXPECT_EQ(back.dim(), dim);
  EXPECT_FALSE(back.contains(5));
  EXPECT_TRUE(back.contains(9));
  auto q = random_unit(1, dim, 10);
  auto a = vi.search(q.data(), 7), b = back.search(q.data(), 7);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id);
    EXPECT_FLOAT_EQ(a[i].score, b[i].score);
  }
  // Truncated or foreign files are refused with the file named.
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(dir + "/cut.idx", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::ofstream(dir + "/junk.idx", std::ios::binary) << "hello";
  for (const std::string f : {dir + "/cut.idx", dir + "/junk.idx", dir + "/missing.idx"}) {
    try {
      VectorIndex::load(f);
      ADD_FAILURE() << f << " loaded";
    } catch (const FileError& e) {
      EXPECT_EQ(e.path(), f);
    }
  }
}

TEST(SearchIndex, RejectsBadVectors) {
  VectorIndex vi(4);
  std::vector<float> zero(4, 0.0f), nan = {NAN, 1, 1, 1}, ok = {1, 2, 3, 4};
  int64_t id = 1;
  EXPECT_THROW(vi.add(zero.data(), 1, &id), Error);
  EXPECT_THROW(vi.add(nan.data(), 1, &id), Error);
  std::vector<float> two = {1, 0, 0, 0, 0, 1, 0, 0};
  std::vector<int64_t> dup = {3, 3};
  EXPECT_THROW(vi.add(two.data(), 2, dup.data()), Error);
  EXPECT_EQ(vi.size(), 0);
  vi.add(ok.data(), 1, &id);
  EXPECT_THROW(vi.search(zero.data(), 1), Error);
  EXPECT_NEAR(vi.vector(1)[3], 4 / std::sqrt(30.0f), 1e-6);
}

}  // namespace
}  // namespace synclap::search
#endif  // SYNCLAP_HAVE_FAISS
