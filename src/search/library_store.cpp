// synclap search: the SQLite library store (see library_store.h).
#include "search/library_store.h"

#include <fnmatch.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstring>

#include "synclap/error.h"

namespace synclap::search {
namespace {

constexpr int kSchemaVersion = 1;

// A prepared statement, finalised on scope exit.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql, const std::string& path) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql.c_str(), int(sql.size()), &st_, nullptr) != SQLITE_OK)
      throw FileError(path, std::string("database error: ") + sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(st_); }
  Stmt& bind(int i, int64_t v) {
    check(sqlite3_bind_int64(st_, i, v));
    return *this;
  }
  Stmt& bind(int i, double v) {
    check(sqlite3_bind_double(st_, i, v));
    return *this;
  }
  Stmt& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(st_, i, v.data(), int(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& bind_blob(int i, const void* p, size_t n) {
    check(sqlite3_bind_blob(st_, i, p, int(n), SQLITE_TRANSIENT));
    return *this;
  }
  // True while there is a row.
  bool step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw FileError(path_, std::string("database error: ") + sqlite3_errmsg(db_));
  }
  int64_t i64(int c) const { return sqlite3_column_int64(st_, c); }
  double f64(int c) const { return sqlite3_column_double(st_, c); }
  std::string text(int c) const {
    const unsigned char* t = sqlite3_column_text(st_, c);
    return t ? std::string(reinterpret_cast<const char*>(t), size_t(sqlite3_column_bytes(st_, c))) : std::string();
  }
  std::vector<float> floats(int c) const {
    const void* p = sqlite3_column_blob(st_, c);
    const int n = sqlite3_column_bytes(st_, c);
    std::vector<float> v(size_t(n) / sizeof(float));
    if (p && n) std::memcpy(v.data(), p, v.size() * sizeof(float));
    return v;
  }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) throw FileError(path_, std::string("database error: ") + sqlite3_errmsg(db_));
  }
  sqlite3* db_;
  std::string path_;
  sqlite3_stmt* st_ = nullptr;
};

constexpr const char* kItemColumns =
    "id, path, size, mtime_ns, sha256, duration_s, sample_rate, channels, format, tags";

LibraryItem read_item(const Stmt& s) {
  LibraryItem it;
  it.id = s.i64(0);
  it.path = s.text(1);
  it.size = s.i64(2);
  it.mtime_ns = s.i64(3);
  it.sha256 = s.text(4);
  it.duration_s = s.f64(5);
  it.sample_rate = int(s.i64(6));
  it.channels = int(s.i64(7));
  it.format = s.text(8);
  it.tags = split_tags(s.text(9));
  return it;
}

}  // namespace

std::string join_tags(const std::vector<std::string>& tags) {
  std::string out = "|";
  for (const auto& t : tags) {
    if (t.empty() || t.find('|') != std::string::npos) continue;
    out += t + "|";
  }
  return out;
}

std::vector<std::string> split_tags(const std::string& joined) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < joined.size()) {
    size_t end = joined.find('|', start);
    if (end == std::string::npos) end = joined.size();
    if (end > start) out.push_back(joined.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

LibraryStore LibraryStore::open(const std::string& db_path, bool create) {
  LibraryStore s;
  s.path_ = db_path;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
  if (sqlite3_open_v2(db_path.c_str(), &s.db_, flags, nullptr) != SQLITE_OK) {
    const std::string msg = s.db_ ? sqlite3_errmsg(s.db_) : "out of memory";
    throw FileError(db_path, "cannot open library database: " + msg);
  }
  sqlite3_busy_timeout(s.db_, 10000);
  try {
    s.exec("PRAGMA journal_mode=WAL");
    s.exec("PRAGMA synchronous=NORMAL");
    s.exec("PRAGMA foreign_keys=ON");
    if (create) {
      s.exec(
          "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
          "CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT UNIQUE NOT NULL,"
          " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL, duration_s REAL NOT NULL,"
          " sample_rate INTEGER NOT NULL, channels INTEGER NOT NULL, format TEXT NOT NULL, tags TEXT NOT NULL,"
          " embedding BLOB NOT NULL, indexed_at REAL NOT NULL DEFAULT (julianday('now')));"
          "CREATE INDEX IF NOT EXISTS items_sha256 ON items(sha256);"
          "CREATE TABLE IF NOT EXISTS failures(path TEXT PRIMARY KEY, size INTEGER NOT NULL,"
          " mtime_ns INTEGER NOT NULL, error TEXT NOT NULL);");
      if (s.meta("schema").empty()) s.set_meta("schema", std::to_string(kSchemaVersion));
    }
    if (s.meta("schema") != std::to_string(kSchemaVersion))
      throw FileError(db_path, "not a synclap library database (schema " + s.meta("schema", "missing") + ")");
  } catch (const FileError&) {
    throw;
  } catch (const std::exception& e) {
    throw FileError(db_path, e.what());
  }
  return s;
}

LibraryStore::LibraryStore(LibraryStore&& o) noexcept : path_(std::move(o.path_)), db_(o.db_) { o.db_ = nullptr; }
LibraryStore& LibraryStore::operator=(LibraryStore&& o) noexcept {
  if (this != &o) {
    if (db_) sqlite3_close(db_);
    path_ = std::move(o.path_);
    db_ = o.db_;
    o.db_ = nullptr;
  }
  return *this;
}
LibraryStore::~LibraryStore() {
  if (db_) sqlite3_close(db_);
}

void LibraryStore::exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errmsg(db_);
    sqlite3_free(err);
    throw FileError(path_, "database error: " + msg);
  }
}

std::string LibraryStore::meta(const std::string& key, const std::string& fallback) const {
  try {
    Stmt s(db_, "SELECT value FROM meta WHERE key = ?", path_);
    s.bind(1, key);
    return s.step() ? s.text(0) : fallback;
  } catch (const FileError&) {
    return fallback;  // no meta table: not a synclap store (open() reports it)
  }
}

void LibraryStore::set_meta(const std::string& key, const std::string& value) {
  Stmt s(db_, "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", path_);
  s.bind(1, key).bind(2, value).step();
}

LibraryStore::Transaction::Transaction(LibraryStore& s) : s_(&s) { s_->exec("BEGIN IMMEDIATE"); }
LibraryStore::Transaction::~Transaction() {
  if (!done_) {
    try {
      s_->exec("ROLLBACK");
    } catch (...) {
    }
  }
}
void LibraryStore::Transaction::commit() {
  s_->exec("COMMIT");
  done_ = true;
}

std::optional<LibraryItem> LibraryStore::find(const std::string& rel_path) const {
  Stmt s(db_, std::string("SELECT ") + kItemColumns + " FROM items WHERE path = ?", path_);
  s.bind(1, rel_path);
  if (!s.step()) return std::nullopt;
  return read_item(s);
}

std::optional<LibraryItem> LibraryStore::get(int64_t id) const {
  Stmt s(db_, std::string("SELECT ") + kItemColumns + " FROM items WHERE id = ?", path_);
  s.bind(1, id);
  if (!s.step()) return std::nullopt;
  return read_item(s);
}

std::optional<std::pair<LibraryItem, std::vector<float>>> LibraryStore::find_by_hash(const std::string& sha256) const {
  Stmt s(db_, std::string("SELECT ") + kItemColumns + ", embedding FROM items WHERE sha256 = ? LIMIT 1", path_);
  s.bind(1, sha256);
  if (!s.step()) return std::nullopt;
  return std::make_pair(read_item(s), s.floats(10));
}

std::optional<LibraryFailure> LibraryStore::find_failure(const std::string& rel_path) const {
  Stmt s(db_, "SELECT path, size, mtime_ns, error FROM failures WHERE path = ?", path_);
  s.bind(1, rel_path);
  if (!s.step()) return std::nullopt;
  return LibraryFailure{s.text(0), s.i64(1), s.i64(2), s.text(3)};
}

int64_t LibraryStore::insert(const LibraryItem& it, const std::vector<float>& embedding) {
  if (embedding.empty()) throw Error("library store: empty embedding for " + it.path);
  {
    Stmt d(db_, "DELETE FROM items WHERE path = ?", path_);
    d.bind(1, it.path).step();
  }
  Stmt s(db_,
         "INSERT INTO items(path, size, mtime_ns, sha256, duration_s, sample_rate, channels, format, tags, embedding)"
         " VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
         path_);
  s.bind(1, it.path).bind(2, it.size).bind(3, it.mtime_ns).bind(4, it.sha256).bind(5, it.duration_s);
  s.bind(6, int64_t(it.sample_rate)).bind(7, int64_t(it.channels)).bind(8, it.format).bind(9, join_tags(it.tags));
  s.bind_blob(10, embedding.data(), embedding.size() * sizeof(float));
  s.step();
  clear_failure(it.path);
  return sqlite3_last_insert_rowid(db_);
}

void LibraryStore::touch(int64_t id, int64_t size, int64_t mtime_ns) {
  Stmt s(db_, "UPDATE items SET size = ?, mtime_ns = ? WHERE id = ?", path_);
  s.bind(1, size).bind(2, mtime_ns).bind(3, id).step();
}

void LibraryStore::remove(int64_t id) {
  Stmt s(db_, "DELETE FROM items WHERE id = ?", path_);
  s.bind(1, id).step();
}

void LibraryStore::record_failure(const LibraryFailure& f) {
  Stmt s(db_,
         "INSERT INTO failures(path, size, mtime_ns, error) VALUES(?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET"
         " size = excluded.size, mtime_ns = excluded.mtime_ns, error = excluded.error",
         path_);
  s.bind(1, f.path).bind(2, f.size).bind(3, f.mtime_ns).bind(4, f.error).step();
}

void LibraryStore::clear_failure(const std::string& rel_path) {
  Stmt s(db_, "DELETE FROM failures WHERE path = ?", path_);
  s.bind(1, rel_path).step();
}

int64_t LibraryStore::count() const {
  Stmt s(db_, "SELECT COUNT(*) FROM items", path_);
  s.step();
  return s.i64(0);
}

std::vector<LibraryItem> LibraryStore::items() const {
  Stmt s(db_, std::string("SELECT ") + kItemColumns + " FROM items ORDER BY id", path_);
  std::vector<LibraryItem> out;
  while (s.step()) out.push_back(read_item(s));
  return out;
}

std::vector<LibraryFailure> LibraryStore::failures() const {
  Stmt s(db_, "SELECT path, size, mtime_ns, error FROM failures ORDER BY path", path_);
  std::vector<LibraryFailure> out;
  while (s.step()) out.push_back({s.text(0), s.i64(1), s.i64(2), s.text(3)});
  return out;
}

std::vector<float> LibraryStore::embedding(int64_t id) const {
  Stmt s(db_, "SELECT embedding FROM items WHERE id = ?", path_);
  s.bind(1, id);
  if (!s.step()) throw Error("library store: no item with id " + std::to_string(id));
  return s.floats(0);
}

void LibraryStore::for_each_embedding(const std::function<void(int64_t, const std::vector<float>&)>& fn,
                                      int64_t after) const {
  Stmt s(db_, "SELECT id, embedding FROM items WHERE id > ? ORDER BY id", path_);
  s.bind(1, after);
  while (s.step()) fn(s.i64(0), s.floats(1));
}

std::vector<int64_t> LibraryStore::filter(const SearchFilter& f) const {
  std::string sql = "SELECT id, path FROM items WHERE 1";
  if (f.min_duration_s >= 0) sql += " AND duration_s >= ?";
  if (f.max_duration_s >= 0) sql += " AND duration_s <= ?";
  for (size_t i = 0; i < f.tags.size(); ++i) sql += " AND instr(tags, ?) > 0";
  sql += " ORDER BY id";
  Stmt s(db_, sql, path_);
  int k = 1;
  if (f.min_duration_s >= 0) s.bind(k++, f.min_duration_s);
  if (f.max_duration_s >= 0) s.bind(k++, f.max_duration_s);
  for (const auto& t : f.tags) {
    std::string lower = t;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    s.bind(k++, "|" + lower + "|");
  }
  std::vector<int64_t> out;
  while (s.step()) {
    if (!f.path_glob.empty() && fnmatch(f.path_glob.c_str(), s.text(1).c_str(), 0) != 0) continue;
    out.push_back(s.i64(0));
  }
  return out;
}

}  // namespace synclap::search
