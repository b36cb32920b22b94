// synclap search: the faiss-backed vector index (see vector_index.h).
#include "search/vector_index.h"

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFlat.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <queue>
#include <typeinfo>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define SYNCLAP_X86 1
#endif

#include "synclap/error.h"
#include "synclap/util.h"

namespace synclap::search {
namespace {

constexpr char kMagic[] = "SYNCLAP-VECTORS-1\n";

// Faiss selector over positions: live, and accepted by the caller's predicate on ids.
struct PositionSelector : faiss::IDSelector {
  const std::vector<int64_t>* ids;
  const std::vector<uint8_t>* dead;
  const std::function<bool(int64_t)>* allow;
  bool is_member(faiss::Index::idx_t pos) const override {
    if (pos < 0 || size_t(pos) >= ids->size() || (*dead)[size_t(pos)]) return false;
    return !*allow || (*allow)((*ids)[size_t(pos)]);
  }
};

// Keeps the k best (highest score) hits; ties broken by smaller id so results are deterministic.
struct TopK {
  explicit TopK(int k) : k(k) {}
  struct Worse {
    bool operator()(const SearchHit& a, const SearchHit& b) const {
      return a.score > b.score || (a.score == b.score && a.id < b.id);
    }
  };
  void push(int64_t id, float s) {
    if (int(heap.size()) < k) {
      heap.push({id, s});
    } else if (k > 0 && (s > heap.top().score || (s == heap.top().score && id < heap.top().id))) {
      heap.pop();
      heap.push({id, s});
    }
  }
  std::vector<SearchHit> sorted() {
    std::vector<SearchHit> out;
    while (!heap.empty()) {
      out.push_back(heap.top());
      heap.pop();
    }
    std::reverse(out.begin(), out.end());
    return out;
  }
  int k;
  std::priority_queue<SearchHit, std::vector<SearchHit>, Worse> heap;
};

// Inner products. Debian's faiss is built for the x86-64 baseline, where its fvec_inner_product is a
// scalar loop; this one uses AVX2 + FMA when the CPU has them (chosen once at run time).
float dot_generic(const float* a, const float* b, size_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < d; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

#ifdef SYNCLAP_X86
__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
    acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), acc2);
    acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), acc3);
  }
  for (; i + 8 <= d; i += 8) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  const __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
  __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  v = _mm_add_ps(v, _mm_movehl_ps(v, v));
  v = _mm_add_ss(v, _mm_shuffle_ps(v, v, 1));
  float s = _mm_cvtss_f32(v);
  for (; i < d; ++i) s += a[i] * b[i];
  return s;
}
#endif

using DotFn = float (*)(const float*, const float*, size_t);
DotFn pick_dot() {
#ifdef SYNCLAP_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dot_avx2;
#endif
  return dot_generic;
}
const DotFn dot = pick_dot();

// Flat inner-product storage whose distance computer uses the fast dot product; HNSW graphs are built
// and searched through it. It is an IndexFlatIP, so faiss writes and reads it as one.
struct FastIPComputer : faiss::FlatCodesDistanceComputer {
  FastIPComputer(const float* xb, int d)
      : faiss::FlatCodesDistanceComputer(reinterpret_cast<const uint8_t*>(xb), sizeof(float) * size_t(d)),
        xb(xb), d(size_t(d)) {}
  void set_query(const float* x) override { q = x; }
  float distance_to_code(const uint8_t* code) override { return dot(q, reinterpret_cast<const float*>(code), d); }
  float symmetric_dis(idx_t i, idx_t j) override { return dot(xb + size_t(i) * d, xb + size_t(j) * d, d); }
  const float* xb;
  size_t d;
  const float* q = nullptr;
};

struct FastFlatIP : faiss::IndexFlatIP {
  explicit FastFlatIP(int d) : faiss::IndexFlatIP(d) {}
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override {
    return new FastIPComputer(get_xb(), int(d));
  }
};

// Gives an HNSW graph over plain IndexFlatIP storage the fast storage (same vectors, moved over).
void accelerate(faiss::Index* index) {
  auto* h = dynamic_cast<faiss::IndexHNSW*>(index);
  if (!h || !h->storage || h->storage->metric_type != faiss::METRIC_INNER_PRODUCT) return;
  const std::type_info& t = typeid(*h->storage);
  if (t != typeid(faiss::IndexFlatIP) && t != typeid(faiss::IndexFlat)) return;  // already fast, or not flat
  auto* old = static_cast<faiss::IndexFlat*>(h->storage);
  auto* fast = new FastFlatIP(int(old->d));
  fast->codes.swap(old->codes);
  fast->ntotal = old->ntotal;
  if (h->own_fields) delete old;
  h->storage = fast;
  h->own_fields = true;
}

const float* flat_data(const faiss::Index* index) {
  if (auto* f = dynamic_cast<const faiss::IndexFlat*>(index)) return f->get_xb();
  if (auto* h = dynamic_cast<const faiss::IndexHNSW*>(index))
    if (auto* s = dynamic_cast<const faiss::IndexFlat*>(h->storage)) return s->get_xb();
  return nullptr;
}

void write_all(FILE* f, const void* p, size_t n, const std::string& path) {
  if (n && std::fwrite(p, 1, n, f) != n) throw FileError(path, "write failed (disk full?)");
}
void read_all(FILE* f, void* p, size_t n, const std::string& path) {
  if (n && std::fread(p, 1, n, f) != n) throw FileError(path, "truncated vector index");
}

// Trains an untrained index (IVF coarse quantizer, PQ/SQ codebooks) on at most 64 points per IVF list
// (at least 40 000 rows when there are that many), taken at evenly spaced rows: k-means cost stays
// bounded at millions of vectors, and faiss's own minimum (39 per centroid) is met whenever n allows.
void train_on_sample(faiss::Index* index, const float* x, int64_t n, int dim) {
  int64_t want = n;
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index)) want = std::max<int64_t>(40000, 64 * int64_t(ivf->nlist));
  if (want >= n) {
    index->train(n, x);
    return;
  }
  std::vector<float> sample(size_t(want) * size_t(dim));
  for (int64_t i = 0; i < want; ++i) {
    const int64_t row = int64_t((__int128)i * n / want);
    std::memcpy(sample.data() + size_t(i) * size_t(dim), x + size_t(row) * size_t(dim), sizeof(float) * size_t(dim));
  }
  index->train(want, sample.data());
}

}  // namespace

float normalize(float* x, int dim) {
  double s = 0;
  for (int i = 0; i < dim; ++i) s += double(x[i]) * x[i];
  const double n = std::sqrt(s);
  if (n > 0)
    for (int i = 0; i < dim; ++i) x[i] = float(x[i] / n);
  return float(n);
}

VectorIndex::VectorIndex(int dim, std::string kind, int64_t auto_threshold)
    : dim_(dim), kind_(std::move(kind)), auto_threshold_(std::max<int64_t>(1, auto_threshold)) {
  if (dim < 1) throw Error("vector index: dimension must be >= 1");
  if (kind_.empty()) kind_ = "auto";
  rebuild(factory_for(0));
}
VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;
VectorIndex::~VectorIndex() = default;

int VectorIndex::auto_nlist(int64_t n) {
  // ~4 sqrt(n) lists, rounded to a power of two in the log domain (1024 at 50k, 2048 from 131k, 4096
  // from 524k, 8192 from 2.1M), at most n / 39 (faiss's minimum of training points per centroid), >= 1.
  int nlist = 1;
  while (nlist < (1 << 16) && double(nlist) * std::sqrt(2.0) < 4.0 * std::sqrt(double(std::max<int64_t>(n, 1))))
    nlist *= 2;
  while (nlist > 1 && int64_t(nlist) * 39 > n) nlist /= 2;
  return nlist;
}

int VectorIndex::auto_nprobe(int nlist) { return std::max(1, std::min(nlist, std::max(64, nlist / 64))); }

std::string VectorIndex::factory_for(int64_t n) const {
  if (kind_ == "auto") return n < auto_threshold_ ? "Flat" : "IVF" + std::to_string(auto_nlist(n)) + ",Flat";
  return kind_;
}

std::string VectorIndex::structure() const { return factory_; }
int64_t VectorIndex::size() const { return int64_t(ids_.size()) - dead_count_; }

std::vector<int64_t> VectorIndex::ids() const {
  std::vector<int64_t> out;
  out.reserve(size_t(size()));
  for (size_t p = 0; p < ids_.size(); ++p)
    if (!dead_[p]) out.push_back(ids_[p]);
  return out;
}

void VectorIndex::reconstruct_position(int64_t pos, float* out) const {
  if (const float* d = flat_data(index_.get())) {
    std::memcpy(out, d + size_t(pos) * size_t(dim_), sizeof(float) * size_t(dim_));
    return;
  }
  index_->reconstruct(pos, out);
}

// Replaces the faiss index by a fresh one of `factory`, holding the live vectors of the current one.
void VectorIndex::rebuild(const std::string& factory, const float* extra, int64_t n_extra, const int64_t* extra_ids) {
  std::vector<float> live;
  std::vector<int64_t> live_ids;
  if (index_) {
    live.resize(size_t(size() + n_extra) * size_t(dim_));
    for (size_t p = 0, j = 0; p < ids_.size(); ++p) {
      if (dead_[p]) continue;
      reconstruct_position(int64_t(p), live.data() + j * size_t(dim_));
      live_ids.push_back(ids_[p]);
      ++j;
    }
  }
  if (n_extra > 0) {  // new vectors (normalised) join the training set and the index
    if (live.size() < size_t(live_ids.size() + size_t(n_extra)) * size_t(dim_))
      live.resize((live_ids.size() + size_t(n_extra)) * size_t(dim_));
    std::memcpy(live.data() + live_ids.size() * size_t(dim_), extra, sizeof(float) * size_t(n_extra) * size_t(dim_));
    live_ids.insert(live_ids.end(), extra_ids, extra_ids + n_extra);
  }
  std::unique_ptr<faiss::Index> fresh;
  try {
    if (factory == "Flat")
      fresh = std::make_unique<faiss::IndexFlatIP>(dim_);
    else
      fresh.reset(faiss::index_factory(dim_, factory.c_str(), faiss::METRIC_INNER_PRODUCT));
  } catch (const faiss::FaissException& e) {
    throw Error("vector index: faiss cannot build '" + factory + "': " + e.what());
  }
  accelerate(fresh.get());
  if (auto* h = dynamic_cast<faiss::IndexHNSW*>(fresh.get())) h->hnsw.efConstruction = 64;
  const int64_t n = int64_t(live_ids.size());
  if (!fresh->is_trained && n > 0) {
    try {
      train_on_sample(fresh.get(), live.data(), n, dim_);
    } catch (const faiss::FaissException& e) {
      throw Error("vector index: cannot train '" + factory + "' on " + std::to_string(n) + " vectors: " + e.what());
    }
  }
  if (n > 0) fresh->add(n, live.data());
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(fresh.get())) ivf->make_direct_map(true);
  index_ = std::move(fresh);
  factory_ = factory;
  ids_ = std::move(live_ids);
  dead_.assign(ids_.size(), 0);
  dead_count_ = 0;
  pos_.clear();
  for (size_t p = 0; p < ids_.size(); ++p) pos_[ids_[p]] = int64_t(p);
}

void VectorIndex::add(const float* x, int64_t n, const int64_t* ids) {
  if (n <= 0) return;
  std::vector<float> v(x, x + size_t(n) * size_t(dim_));
  std::unordered_map<int64_t, int> seen;
  for (int64_t i = 0; i < n; ++i) {
    const float norm = normalize(v.data() + size_t(i) * size_t(dim_), dim_);
    if (!(norm > 0) || !std::isfinite(norm))
      throw Error("vector index: vector for id " + std::to_string(ids[i]) + " is zero or not finite");
    if (pos_.count(ids[i]) || seen[ids[i]]++)
      throw Error("vector index: id " + std::to_string(ids[i]) + " is already present");
  }
  // "auto" switches to the approximate structure once the size calls for it.
  const std::string want = factory_for(size() + n);
  if (want != factory_) {
    rebuild(want, v.data(), n, ids);  // retrained on the old and the new vectors together
    return;
  }
  try {
    if (!index_->is_trained) train_on_sample(index_.get(), v.data(), n, dim_);
    index_->add(n, v.data());
  } catch (const faiss::FaissException& e) {
    throw Error("vector index (" + factory_ + "): " + e.what());
  }
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index_.get())) ivf->make_direct_map(true);
  for (int64_t i = 0; i < n; ++i) {
    pos_[ids[i]] = int64_t(ids_.size());
    ids_.push_back(ids[i]);
    dead_.push_back(0);
  }
}

int64_t VectorIndex::remove(const std::vector<int64_t>& ids) {
  int64_t removed = 0;
  for (int64_t id : ids) {
    auto it = pos_.find(id);
    if (it == pos_.end()) continue;
    dead_[size_t(it->second)] = 1;
    pos_.erase(it);
    ++dead_count_;
    ++removed;
  }
  return removed;
}

void VectorIndex::compact() { rebuild(factory_for(size())); }

std::vector<float> VectorIndex::vector(int64_t id) const {
  auto it = pos_.find(id);
  if (it == pos_.end()) throw Error("vector index: unknown id " + std::to_string(id));
  std::vector<float> out(static_cast<size_t>(dim_));
  reconstruct_position(it->second, out.data());
  return out;
}

std::vector<SearchHit> VectorIndex::scan(const float* q, int k, const std::function<bool(int64_t)>& allow) const {
  TopK top(k);
  const float* data = flat_data(index_.get());
  std::vector<float> buf(data ? 0 : static_cast<size_t>(dim_));
  for (size_t p = 0; p < ids_.size(); ++p) {
    if (dead_[p] || (allow && !allow(ids_[p]))) continue;
    const float* row = data ? data + p * size_t(dim_) : buf.data();
    if (!data) reconstruct_position(int64_t(p), buf.data());
    top.push(ids_[p], dot(q, row, size_t(dim_)));
  }
  return top.sorted();
}

std::vector<SearchHit> VectorIndex::search_exact(const float* query, int k,
                                                 const std::function<bool(int64_t)>& allow) const {
  std::vector<float> q(query, query + dim_);
  if (normalize(q.data(), dim_) <= 0) throw Error("vector index: zero query vector");
  return scan(q.data(), std::max(k, 0), allow);
}

std::vector<SearchHit> VectorIndex::search(const float* query, int k, const std::function<bool(int64_t)>& allow,
                                           const VectorSearchOptions& options) const {
  std::vector<float> q(query, query + dim_);
  if (normalize(q.data(), dim_) <= 0 || !std::isfinite(q[0])) throw Error("vector index: zero or non-finite query vector");
  if (k <= 0 || size() == 0) return {};
  const bool exact = factory_ == "Flat";
  const bool filtered = bool(allow) || dead_count_ > 0;

  // How many rows the filter lets through decides between an exact scan of them and a faiss search.
  int64_t allowed = size();
  if (allow) {
    allowed = 0;
    for (size_t p = 0; p < ids_.size(); ++p)
      if (!dead_[p] && allow(ids_[p])) ++allowed;
    if (allowed == 0) return {};
  }
  if (allow && (exact || allowed <= options.exact_filter_limit)) return scan(q.data(), k, allow);
  if (exact) return scan(q.data(), k, allow);

  // Approximate search, with a selector when rows are filtered or dead. A selective filter leaves fewer
  // candidates per visited node, so the search breadth grows with 1 / (fraction allowed), capped.
  const double fraction = double(allowed) / double(std::max<int64_t>(1, stored()));
  const double widen = filtered ? std::min(16.0, 1.0 / std::max(fraction, 1e-6)) : 1.0;
  PositionSelector sel;
  sel.ids = &ids_;
  sel.dead = &dead_;
  sel.allow = &allow;
  const int kk = int(std::min<int64_t>(k, allowed));
  std::vector<float> dist(static_cast<size_t>(kk));
  std::vector<faiss::Index::idx_t> lab(size_t(kk), -1);
  // One query is one thread's work: faiss would otherwise open an OpenMP team (for the coarse quantizer's
  // scan) whose barrier costs milliseconds when the cores are busy. Only this thread's setting changes.
  struct OneThread {
    int prev = omp_get_max_threads();
    OneThread() { omp_set_num_threads(1); }
    ~OneThread() { omp_set_num_threads(prev); }
  } one_thread;
  try {
    if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index_.get())) {
      faiss::SearchParametersHNSW p;
      p.efSearch = int(std::min<double>(8192, std::max<double>(kk, options.ef_search * widen)));
      if (filtered) p.sel = &sel;
      std::lock_guard<std::mutex> lock(*hnsw_mutex_);
      hnsw->hnsw.efSearch = p.efSearch;
      index_->search(1, q.data(), kk, dist.data(), lab.data(), &p);
    } else if (auto* ivf = dynamic_cast<const faiss::IndexIVFFlat*>(index_.get());
               ivf && ivf->metric_type == faiss::METRIC_INNER_PRODUCT && dynamic_cast<const faiss::IndexFlat*>(ivf->quantizer)) {
      // Inverted file of raw vectors: scanned here with the fast dot product (faiss's scan is scalar in
      // Debian's build). The nprobe lists whose centroids score highest are visited, as faiss would.
      const double base = options.nprobe > 0 ? options.nprobe : auto_nprobe(int(ivf->nlist));
      const size_t nprobe = size_t(std::max(1.0, std::min<double>(double(ivf->nlist), base * widen)));
      const float* centroids = static_cast<const faiss::IndexFlat*>(ivf->quantizer)->get_xb();
      std::vector<std::pair<float, size_t>> lists(ivf->nlist);
      for (size_t l = 0; l < ivf->nlist; ++l) lists[l] = {dot(q.data(), centroids + l * size_t(dim_), size_t(dim_)), l};
      std::partial_sort(lists.begin(), lists.begin() + long(nprobe), lists.end(),
                        [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
      TopK top(kk);
      for (size_t i = 0; i < nprobe; ++i) {
        const size_t l = lists[i].second;
        const size_t len = ivf->invlists->list_size(l);
        if (len == 0) continue;
        faiss::InvertedLists::ScopedCodes codes(ivf->invlists, l);
        faiss::InvertedLists::ScopedIds pos(ivf->invlists, l);
        const float* rows = reinterpret_cast<const float*>(codes.get());
        for (size_t j = 0; j < len; ++j) {
          const int64_t p = pos[j];
          if (filtered && !sel.is_member(p)) continue;
          top.push(p, dot(q.data(), rows + j * size_t(dim_), size_t(dim_)));
        }
      }
      const std::vector<SearchHit> hits = top.sorted();  // ids are positions here
      for (size_t i = 0; i < hits.size(); ++i) {
        lab[i] = hits[i].id;
        dist[i] = hits[i].score;
      }
    } else if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(index_.get())) {
      faiss::SearchParametersIVF p;
      const double base = options.nprobe > 0 ? options.nprobe : auto_nprobe(int(ivf->nlist));
      p.nprobe = size_t(std::max(1.0, std::min<double>(double(ivf->nlist), base * widen)));
      if (filtered) p.sel = &sel;
      index_->search(1, q.data(), kk, dist.data(), lab.data(), &p);
    } else {
      faiss::SearchParameters p;
      if (filtered) p.sel = &sel;
      index_->search(1, q.data(), kk, dist.data(), lab.data(), filtered ? &p : nullptr);
    }
  } catch (const faiss::FaissException& e) {
    // An index type without selector support: fall back to the exact scan.
    if (filtered) return scan(q.data(), k, allow);
    throw Error(std::string("vector index search: ") + e.what());
  }
  std::vector<SearchHit> out;
  for (int i = 0; i < kk; ++i) {
    const faiss::Index::idx_t p = lab[size_t(i)];
    if (p < 0 || size_t(p) >= ids_.size() || dead_[size_t(p)]) continue;
    if (allow && !allow(ids_[size_t(p)])) continue;  // never trust a selector blindly
    out.push_back({ids_[size_t(p)], dist[size_t(i)]});
  }
  if (int(out.size()) < kk) return scan(q.data(), k, allow);  // the graph ran dry under the filter
  return out;
}

void VectorIndex::save(const std::string& path) const {
  write_file_atomic(path, [&](const std::string& tmp) {
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw FileError(path, std::string("cannot create: ") + std::strerror(errno));
    try {
      const std::string head =
          nlohmann::json{{"dim", dim_}, {"kind", kind_}, {"factory", factory_}, {"stored", ids_.size()},
                          {"auto_threshold", auto_threshold_}}.dump() + "\n";
      write_all(f, kMagic, std::strlen(kMagic), path);
      write_all(f, head.data(), head.size(), path);
      write_all(f, ids_.data(), ids_.size() * sizeof(int64_t), path);
      write_all(f, dead_.data(), dead_.size(), path);
      faiss::write_index(index_.get(), f);
      if (std::fflush(f) != 0 || ::fsync(::fileno(f)) != 0) throw FileError(path, "write failed (disk full?)");
    } catch (const faiss::FaissException& e) {
      std::fclose(f);
      throw FileError(path, std::string("cannot write the faiss index: ") + e.what());
    } catch (...) {
      std::fclose(f);
      throw;
    }
    std::fclose(f);
  });
}

VectorIndex VectorIndex::load(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw FileError(path, std::string("cannot open: ") + std::strerror(errno));
  struct Closer {
    FILE* f;
    ~Closer() { std::fclose(f); }
  } closer{f};
  char magic[sizeof kMagic] = {};
  read_all(f, magic, std::strlen(kMagic), path);
  if (std::memcmp(magic, kMagic, std::strlen(kMagic)) != 0) throw FileError(path, "not a synclap vector index");
  std::string head;
  for (int c; (c = std::fgetc(f)) != EOF && c != '\n';) {
    head.push_back(char(c));
    if (head.size() > 4096) throw FileError(path, "corrupt vector index header");
  }
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(head);
  } catch (const std::exception&) {
    throw FileError(path, "corrupt vector index header");
  }
  const int dim = h.value("dim", 0);
  const int64_t stored = h.value("stored", int64_t(-1));
  if (dim < 1 || stored < 0 || stored > (int64_t(1) << 34)) throw FileError(path, "corrupt vector index header");
  VectorIndex vi(dim, h.value("kind", std::string("auto")), h.value("auto_threshold", kAutoApproxThreshold));
  vi.factory_ = h.value("factory", std::string("Flat"));
  vi.ids_.resize(size_t(stored));
  vi.dead_.resize(size_t(stored));
  read_all(f, vi.ids_.data(), size_t(stored) * sizeof(int64_t), path);
  read_all(f, vi.dead_.data(), size_t(stored), path);
  try {
    vi.index_.reset(faiss::read_index(f));
  } catch (const faiss::FaissException& e) {
    throw FileError(path, std::string("corrupt faiss index: ") + e.what());
  }
  accelerate(vi.index_.get());
  if (vi.index_->d != dim || vi.index_->ntotal != stored)
    throw FileError(path, "vector index header does not match its faiss index");
  if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(vi.index_.get())) ivf->make_direct_map(true);
  vi.pos_.clear();
  vi.dead_count_ = 0;
  for (size_t p = 0; p < vi.ids_.size(); ++p) {
    if (vi.dead_[p]) {
      ++vi.dead_count_;
      continue;
    }
    if (!vi.pos_.emplace(vi.ids_[p], int64_t(p)).second) throw FileError(path, "duplicate id in vector index");
  }
  return vi;
}

}  // namespace synclap::search
