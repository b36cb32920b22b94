// synclap search: indexing a music library into an index directory, and opening one for search.
//
// An index directory holds
//   library.db    the SQLite store (metadata and embeddings; the source of truth, see library_store.h)
//   vectors.idx   the faiss vector index derived from it (see vector_index.h), rewritten atomically
//
// index_library() walks the library (every extension the decoder reads), and for each file of its shard:
// unchanged (same size and mtime) -> nothing; same content hash as an indexed file (touched, moved or
// copied) -> its embedding is reused without decoding; otherwise decoded and embedded, in batches, each
// batch committed in one transaction. A kill loses at most the batch in flight; the next run resumes.
// Files that fail to decode are recorded and skipped (retried when they change); files gone from disk
// are dropped. At the end the vector index is brought up to date (new ids added, dropped ids removed,
// compacted when many are dead) and saved.
//
// The embedder is a callback, so the indexing logic does not depend on a model (tests use a fake one).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "search/library_store.h"
#include "search/vector_index.h"
#include "synclap/audio.h"

namespace synclap::search {

struct AudioEmbedder {
  std::string model;     // recorded in the index ("model" meta); a re-run with another model is refused
  int sample_rate = 48000;
  int dim = 0;
  double max_duration_s = 3600;  // longer files are recorded as failures (memory bound)
  // One unit-norm vector of `dim` floats per waveform.
  std::function<std::vector<std::vector<float>>(const std::vector<Waveform>&)> embed;
};

struct IndexOptions {
  std::string library;   // folder to index
  std::string out;       // index directory (created)
  int shard_index = 0, shard_count = 1;
  int batch = 8;                     // files per embedding call and per transaction
  std::string index_kind = "auto";   // VectorIndex kind
  bool progress = true;
  // Test hook: called after each committed batch with the number of files done; throwing stops the run.
  std::function<void(int64_t)> after_batch;
};

struct IndexReport {
  int64_t files = 0;       // audio files of this shard found on disk
  int64_t embedded = 0;    // decoded and embedded this run
  int64_t reused = 0;      // same content as an indexed file: embedding reused
  int64_t unchanged = 0;
  int64_t failed = 0;      // failed this run
  int64_t skipped_bad = 0; // failed before and unchanged since: skipped
  int64_t removed = 0;     // gone from disk: dropped
  int64_t items = 0;       // rows in the store afterwards
  std::string structure;   // vector index structure in force
  double seconds = 0;
  std::vector<std::string> errors;  // "path: problem" for this run's failures
};

// True for the file extensions the decoder handles.
bool is_audio_file_name(const std::string& name);
// The shard a relative path belongs to (FNV-1a of the path, mod count).
int shard_of(const std::string& rel_path, int count);

IndexReport index_library(const IndexOptions& options, const AudioEmbedder& embedder);

// Brings DIR/vectors.idx up to date with DIR/library.db; returns the structure in force.
std::string sync_vectors(const std::string& index_dir, const std::string& kind = "", bool progress = false);

// Merges shard index directories (same library root and model) into `out`: rows are copied (new ids),
// embeddings reused, then the vector index is built. Returns the number of items.
int64_t merge_indexes(const std::vector<std::string>& shards, const std::string& out, bool progress = false);

// An opened index directory, for search. Thread-safe for concurrent searches.
struct SearchResult {
  float score = 0;
  LibraryItem item;
};

class LibraryIndex {
 public:
  static LibraryIndex open(const std::string& index_dir);
  LibraryIndex(LibraryIndex&&) noexcept;
  LibraryIndex& operator=(LibraryIndex&&) noexcept;
  ~LibraryIndex();

  const std::string& dir() const { return dir_; }
  std::string root() const { return store_->meta("root"); }
  std::string model() const { return store_->meta("model"); }
  int dim() const { return vectors_->dim(); }
  int64_t size() const { return vectors_->size(); }
  std::string structure() const { return vectors_->structure(); }
  const LibraryStore& store() const { return *store_; }

  // Top-k items for a query vector (normalised here), filters applied inside the vector search.
  std::vector<SearchResult> search(const std::vector<float>& query, int k, const SearchFilter& filter = {},
                                   const VectorSearchOptions& options = {}) const;
  std::vector<float> embedding(int64_t id) const { return vectors_->vector(id); }
  // Absolute path of an indexed item's file; Error if the id is unknown or the file is no longer a regular
  // file inside the library root (symlinks resolved), so only indexed library files are ever handed out.
  std::string audio_path(int64_t id) const;

 private:
  LibraryIndex() = default;
  std::string dir_;
  std::unique_ptr<LibraryStore> store_;
  std::unique_ptr<VectorIndex> vectors_;
};

}  // namespace synclap::search
