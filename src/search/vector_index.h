// synclap search: a faiss-backed index of L2-normalised float vectors searched by inner product
// (= cosine similarity), with caller-chosen int64 ids that stay stable across adds and removals.
//
// Kind of index:
//   "auto"  exact (faiss IndexFlatIP) below kAutoApproxThreshold vectors, an inverted file
//           ("IVF<nlist>,Flat", nlist = auto_nlist(n): ~4 sqrt(n) as a power of two) from there on; the
//           switch happens inside add() when the count crosses the threshold, and the index is rebuilt
//           (retrained) whenever growth changes nlist (at 131k, 524k, 2.1M, ... vectors).
//   "Flat"  always exact.
//   anything else: a faiss index_factory string used with METRIC_INNER_PRODUCT, e.g. "HNSW32",
//           "HNSW64", "IVF1024,Flat", "IVF4096,SQ8". Kinds that need training (IVF, PQ, SQ) are
//           trained on the first add(), which must then hold enough vectors (faiss says how many);
//           training uses an evenly spaced sample of at most max(40 000, 64 x nlist) of them.
//
// Ids: faiss stores vectors at positions 0..n-1; this class keeps the position -> id table itself
// (faiss 1.7.3's IndexIDMap cannot combine with search-time selectors). remove() marks positions
// dead (they are skipped by every search); compact() rebuilds without them.
//
// Filtered search: search() takes an optional predicate on ids. The filter is applied inside the
// search, never after it: when the allowed set is small (<= exact_filter_limit vectors) or the index is
// exact, the allowed vectors are scored exactly (a full scan of those rows only); otherwise faiss searches
// with an IDSelector built from the predicate (HNSW efSearch / IVF nprobe raised in proportion to how
// selective the filter is), and should that still return fewer than k hits, the exact scan over the
// allowed rows is used. So a filtered query always returns min(k, #allowed) hits.
//
// Files: save() writes one file atomically (header, ids, dead flags, faiss index); load() checks it.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace faiss {
struct Index;
}

namespace synclap::search {

struct SearchHit {
  int64_t id = -1;
  float score = 0;  // inner product of unit vectors, in [-1, 1]
};

struct VectorSearchOptions {
  int ef_search = 256;              // HNSW breadth (higher: better recall, slower)
  int nprobe = 0;                   // IVF lists visited; 0: VectorIndex::auto_nprobe(nlist)
  int64_t exact_filter_limit = 20000;  // filtered queries with at most this many allowed rows are scored exactly
};

class VectorIndex {
 public:
  static constexpr int64_t kAutoApproxThreshold = 50000;
  // "auto" above the threshold: IVF lists for n vectors, and the lists a query visits by default.
  static int auto_nlist(int64_t n);
  static int auto_nprobe(int nlist);

  // auto_threshold: the size at which "auto" switches to the approximate structure (tests lower it).
  explicit VectorIndex(int dim, std::string kind = "auto", int64_t auto_threshold = kAutoApproxThreshold);
  VectorIndex(VectorIndex&&) noexcept;
  VectorIndex& operator=(VectorIndex&&) noexcept;
  ~VectorIndex();

  int dim() const { return dim_; }
  const std::string& kind() const { return kind_; }  // as asked ("auto", "Flat", a factory string)
  std::string structure() const;                     // what is in force now: "Flat", "HNSW32", ...
  int64_t size() const;                              // live vectors
  int64_t stored() const { return int64_t(ids_.size()); }  // live + dead positions
  bool contains(int64_t id) const { return pos_.count(id) != 0; }
  std::vector<int64_t> ids() const;  // live ids in insertion order

  // Adds n vectors (row-major n x dim), normalised here (a zero vector is an Error). Ids must be new.
  void add(const float* x, int64_t n, const int64_t* ids);
  // Marks ids dead (unknown ids are ignored); returns how many were removed.
  int64_t remove(const std::vector<int64_t>& ids);
  // Rebuilds the faiss index without dead rows (and, for "auto", with the structure the size calls for).
  void compact();

  // Top-k by inner product with the (normalised) query; `allow` restricts to ids it accepts.
  std::vector<SearchHit> search(const float* query, int k, const std::function<bool(int64_t)>& allow = nullptr,
                                const VectorSearchOptions& options = {}) const;
  // Exact top-k (full scan), with the same filter semantics; the reference for recall.
  std::vector<SearchHit> search_exact(const float* query, int k,
                                      const std::function<bool(int64_t)>& allow = nullptr) const;
  // The stored (normalised) vector of an id; Error if unknown.
  std::vector<float> vector(int64_t id) const;

  void save(const std::string& path) const;
  static VectorIndex load(const std::string& path);

 private:
  // Replaces the faiss index by a fresh `factory` one over the live vectors plus `extra` (normalised,
  // with new ids), trained on all of them.
  void rebuild(const std::string& factory, const float* extra = nullptr, int64_t n_extra = 0,
               const int64_t* extra_ids = nullptr);
  void reconstruct_position(int64_t pos, float* out) const;
  std::vector<SearchHit> scan(const float* q, int k, const std::function<bool(int64_t)>& allow) const;
  std::string factory_for(int64_t n) const;

  int dim_;
  std::string kind_;
  int64_t auto_threshold_;
  // faiss 1.7.3 ignores efSearch in SearchParametersHNSW, so it is set on the index: one search at a time.
  std::unique_ptr<std::mutex> hnsw_mutex_ = std::make_unique<std::mutex>();
  std::string factory_;  // of the faiss index in force
  std::unique_ptr<faiss::Index> index_;
  std::vector<int64_t> ids_;           // position -> id
  std::vector<uint8_t> dead_;          // position -> removed?
  std::unordered_map<int64_t, int64_t> pos_;  // live id -> position
  int64_t dead_count_ = 0;
};

// L2-normalises a vector in place; returns its former norm.
float normalize(float* x, int dim);

}  // namespace synclap::search
