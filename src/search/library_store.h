// synclap search: the SQLite metadata store of an indexed music library.
//
// One row per indexed file: its path relative to the library root, size, modification time (ns),
// SHA-256 of its bytes, decoded duration / rate / channels / format, tags (the names of the folders it
// lies in, lower-cased), and its embedding (float32 BLOB). The row id is the vector index id. Ids come
// from AUTOINCREMENT, so an id is never reused: a changed file gets a new row and a new id, and the
// vector index drops the old one. Files that failed to decode are kept in a separate table with the
// size and mtime they had, so an unchanged bad file is skipped on the next run and a changed one retried.
//
// Durability: WAL journal, every write inside a transaction (Transaction below); a process killed at any
// point leaves the database as of the last commit. The connection is serialised (SQLITE_OPEN_FULLMUTEX),
// so one store may be read from several threads (the HTTP server).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace synclap::search {

struct LibraryItem {
  int64_t id = -1;
  std::string path;  // relative to the library root, '/'-separated
  int64_t size = 0;
  int64_t mtime_ns = 0;
  std::string sha256;
  double duration_s = 0;
  int sample_rate = 0;
  int channels = 0;
  std::string format;
  std::vector<std::string> tags;
};

struct LibraryFailure {
  std::string path;
  int64_t size = 0, mtime_ns = 0;
  std::string error;
};

// Metadata filters; empty fields do not filter. Several tags: an item must have all of them.
struct SearchFilter {
  double min_duration_s = -1, max_duration_s = -1;
  std::string path_glob;  // fnmatch on the relative path ('*' also crosses '/')
  std::vector<std::string> tags;
  bool empty() const { return min_duration_s < 0 && max_duration_s < 0 && path_glob.empty() && tags.empty(); }
};

class LibraryStore {
 public:
  // Opens (creating if `create`) the database. FileError naming it when unreadable or not a synclap store.
  static LibraryStore open(const std::string& db_path, bool create);
  LibraryStore(LibraryStore&&) noexcept;
  LibraryStore& operator=(LibraryStore&&) noexcept;
  ~LibraryStore();

  const std::string& path() const { return path_; }

  // Key/value settings: "root", "model", "dim", "index_kind", "shard".
  std::string meta(const std::string& key, const std::string& fallback = "") const;
  void set_meta(const std::string& key, const std::string& value);

  // All writes between begin() and commit() land together or not at all (RAII: rolled back if not committed).
  class Transaction {
   public:
    explicit Transaction(LibraryStore& s);
    ~Transaction();
    void commit();

   private:
    LibraryStore* s_;
    bool done_ = false;
  };

  std::optional<LibraryItem> find(const std::string& rel_path) const;
  std::optional<LibraryItem> get(int64_t id) const;
  // Any item whose file has this content hash (a moved or copied file), with its embedding.
  std::optional<std::pair<LibraryItem, std::vector<float>>> find_by_hash(const std::string& sha256) const;
  std::optional<LibraryFailure> find_failure(const std::string& rel_path) const;

  // Inserts a new row (replacing any row with the same path, whose id then disappears); returns its id.
  int64_t insert(const LibraryItem& item, const std::vector<float>& embedding);
  // Same content, new size/mtime (the file was touched or copied back): keeps id and embedding.
  void touch(int64_t id, int64_t size, int64_t mtime_ns);
  void remove(int64_t id);
  void record_failure(const LibraryFailure& f);
  void clear_failure(const std::string& rel_path);

  int64_t count() const;
  std::vector<LibraryItem> items() const;
  std::vector<LibraryFailure> failures() const;
  std::vector<float> embedding(int64_t id) const;
  // Calls fn(id, embedding) for every row in id order; `after` skips ids <= after.
  void for_each_embedding(const std::function<void(int64_t, const std::vector<float>&)>& fn, int64_t after = -1) const;
  // Ids of the items the filter accepts (sorted).
  std::vector<int64_t> filter(const SearchFilter& f) const;

 private:
  LibraryStore() = default;
  void exec(const std::string& sql) const;
  std::string path_;
  sqlite3* db_ = nullptr;
};

// Tags as stored: "|a|b|" so that a tag matches exactly with LIKE '%|tag|%'.
std::string join_tags(const std::vector<std::string>& tags);
std::vector<std::string> split_tags(const std::string& joined);

}  // namespace synclap::search
