// synclap search: indexing a library, merging shards, opening an index (see library_indexer.h).
#include "search/library_indexer.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>
#include <unordered_set>

#include "synclap/error.h"
#include "synclap/util.h"

namespace fs = std::filesystem;

namespace synclap::search {
namespace {

constexpr const char* kDbName = "library.db";
constexpr const char* kVectorsName = "vectors.idx";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

struct FileStat {
  int64_t size = 0, mtime_ns = 0;
};

FileStat stat_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw FileError(path, "cannot stat");
  return {int64_t(st.st_size), int64_t(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec};
}

std::vector<std::string> folder_tags(const std::string& rel) {
  std::vector<std::string> tags;
  fs::path p(rel);
  for (const auto& part : p.parent_path()) {
    const std::string t = lower(part.string());
    if (!t.empty() && t != "." && std::find(tags.begin(), tags.end(), t) == tags.end()) tags.push_back(t);
  }
  return tags;
}

struct Pending {
  std::string rel, abs;
  FileStat st;
  std::optional<LibraryItem> existing;
};

}  // namespace

bool is_audio_file_name(const std::string& name) {
  const std::string e = lower(fs::path(name).extension().string());
  static const std::set<std::string> ok = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif",
                                           ".aifc", ".au", ".caf", ".w64", ".rf64"};
  return ok.count(e) != 0;
}

int shard_of(const std::string& rel_path, int count) {
  return count <= 1 ? 0 : int(fnv1a64(rel_path) % uint64_t(count));
}

IndexReport index_library(const IndexOptions& o, const AudioEmbedder& embedder) {
  const double t0 = now_seconds();
  if (o.shard_count < 1 || o.shard_index < 0 || o.shard_index >= o.shard_count)
    throw Error("--shard must be i/N with 0 <= i < N");
  if (!embedder.embed || embedder.dim < 1) throw Error("index: no embedder");
  std::error_code ec;
  if (!fs::is_directory(o.library, ec)) throw FileError(o.library, "not a folder");
  const fs::path root = fs::canonical(o.library);
  fs::create_directories(o.out);
  LibraryStore store = LibraryStore::open((fs::path(o.out) / kDbName).string(), true);

  // The index belongs to one library, one model and one shard.
  auto check_meta = [&](const std::string& key, const std::string& value) {
    const std::string have = store.meta(key);
    if (have.empty())
      store.set_meta(key, value);
    else if (have != value)
      throw FileError(o.out, "index was built with " + key + " '" + have + "', not '" + value + "'");
  };
  check_meta("root", root.string());
  check_meta("model", embedder.model);
  check_meta("dim", std::to_string(embedder.dim));
  check_meta("shard", std::to_string(o.shard_index) + "/" + std::to_string(o.shard_count));
  // The structure is chosen on the first run ("auto" unless told); a later explicit kind replaces it.
  if (store.meta("index_kind").empty() || o.index_kind != "auto") store.set_meta("index_kind", o.index_kind);

  // Walk.
  std::vector<std::string> rels;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file(ec) || !is_audio_file_name(it->path().filename().string())) continue;
    const std::string rel = it->path().lexically_relative(root).generic_string();
    if (shard_of(rel, o.shard_count) == o.shard_index) rels.push_back(rel);
  }
  std::sort(rels.begin(), rels.end());

  IndexReport r;
  r.files = int64_t(rels.size());
  std::vector<Pending> todo;
  for (const auto& rel : rels) {
    Pending p{rel, (root / rel).string(), {}, store.find(rel)};
    try {
      p.st = stat_file(p.abs);
    } catch (const std::exception&) {
      continue;  // vanished while walking
    }
    if (p.existing && p.existing->size == p.st.size && p.existing->mtime_ns == p.st.mtime_ns) {
      ++r.unchanged;
      continue;
    }
    if (!p.existing) {
      auto f = store.find_failure(rel);
      if (f && f->size == p.st.size && f->mtime_ns == p.st.mtime_ns) {
        ++r.skipped_bad;
        continue;
      }
    }
    todo.push_back(std::move(p));
  }

  // Files gone from disk.
  {
    std::unordered_set<std::string> present(rels.begin(), rels.end());
    LibraryStore::Transaction tx(store);
    for (const auto& it : store.items())
      if (!present.count(it.path)) {
        store.remove(it.id);
        ++r.removed;
      }
    for (const auto& f : store.failures())
      if (!present.count(f.path)) store.clear_failure(f.path);
    tx.commit();
  }

  Progress progress("index", int64_t(todo.size()), o.progress);
  const size_t batch = size_t(std::max(1, o.batch));
  int64_t done = 0;
  for (size_t b = 0; b < todo.size(); b += batch) {
    const size_t e = std::min(todo.size(), b + batch);
    struct Work {
      Pending* p;
      LibraryItem item;
      std::vector<float> emb;
      std::string error;
      bool touch = false, reused = false;
      Waveform wave;
    };
    std::vector<Work> works;
    for (size_t i = b; i < e; ++i) {
      Work w;
      w.p = &todo[i];
      w.item.path = w.p->rel;
      w.item.size = w.p->st.size;
      w.item.mtime_ns = w.p->st.mtime_ns;
      w.item.tags = folder_tags(w.p->rel);
      try {
        w.item.sha256 = sha256_file(w.p->abs);
        if (w.p->existing && w.p->existing->sha256 == w.item.sha256) {
          w.touch = true;  // same bytes, new mtime
        } else if (auto same = store.find_by_hash(w.item.sha256);
                   same && int64_t(same->second.size()) == embedder.dim) {
          const LibraryItem& s = same->first;
          w.item.duration_s = s.duration_s;
          w.item.sample_rate = s.sample_rate;
          w.item.channels = s.channels;
          w.item.format = s.format;
          w.emb = std::move(same->second);
          w.reused = true;
        } else {
          const AudioInfo info = probe_audio(w.p->abs);
          DecodeOptions d;
          d.target_rate = embedder.sample_rate;
          d.max_duration_s = embedder.max_duration_s;
          w.wave = load_audio(w.p->abs, d);
          if (w.wave.samples.empty()) throw FileError(w.p->abs, "no audio samples");
          w.item.duration_s = w.wave.duration_s();
          w.item.sample_rate = info.sample_rate;
          w.item.channels = info.channels;
          w.item.format = info.format;
        }
      } catch (const std::exception& ex) {
        w.error = ex.what();
      }
      works.push_back(std::move(w));
    }
    // Embed what was decoded, in one call; if the call fails, one by one to find the culprit.
    std::vector<Work*> need;
    for (auto& w : works)
      if (w.error.empty() && !w.touch && w.emb.empty()) need.push_back(&w);
    auto run = [&](const std::vector<Work*>& ws) {
      std::vector<Waveform> waves;
      for (auto* w : ws) waves.push_back(std::move(w->wave));
      auto embs = embedder.embed(waves);
      if (embs.size() != ws.size()) throw Error("embedder returned the wrong number of vectors");
      for (size_t i = 0; i < ws.size(); ++i) {
        if (int64_t(embs[i].size()) != embedder.dim) throw Error("embedder returned a vector of the wrong size");
        ws[i]->emb = std::move(embs[i]);
      }
    };
    if (!need.empty()) {
      std::vector<Waveform> keep;
      for (auto* w : need) keep.push_back(w->wave);  // copies, in case of a retry one by one
      try {
        run(need);
      } catch (const std::exception&) {
        for (size_t i = 0; i < need.size(); ++i) {
          need[i]->wave = std::move(keep[i]);
          try {
            run({need[i]});
          } catch (const std::exception& ex) {
            need[i]->error = need[i]->p->abs + ": " + ex.what();
          }
        }
      }
    }
    {
      LibraryStore::Transaction tx(store);
      for (auto& w : works) {
        if (!w.error.empty()) {
          store.record_failure({w.p->rel, w.p->st.size, w.p->st.mtime_ns, w.error});
          if (w.p->existing) {
            store.remove(w.p->existing->id);  // its old content is gone
            ++r.removed;
          }
          r.errors.push_back(w.error);
          ++r.failed;
        } else if (w.touch) {
          store.touch(w.p->existing->id, w.item.size, w.item.mtime_ns);
          ++r.unchanged;
        } else {
          store.insert(w.item, w.emb);
          ++(w.reused ? r.reused : r.embedded);
        }
      }
      tx.commit();
    }
    done += int64_t(e - b);
    progress.add(int64_t(e - b));
    if (o.after_batch) o.after_batch(done);
  }
  progress.finish();
  r.items = store.count();
  r.structure = sync_vectors(o.out, "", o.progress);
  r.seconds = now_seconds() - t0;
  return r;
}

std::string sync_vectors(const std::string& index_dir, const std::string& kind_in, bool progress) {
  LibraryStore store = LibraryStore::open((fs::path(index_dir) / kDbName).string(), false);
  const int dim = std::atoi(store.meta("dim", "0").c_str());
  if (dim < 1) throw FileError(store.path(), "no embedding dimension recorded");
  const std::string kind = kind_in.empty() ? store.meta("index_kind", "auto") : kind_in;
  if (!kind_in.empty()) store.set_meta("index_kind", kind_in);
  const std::string vpath = (fs::path(index_dir) / kVectorsName).string();

  std::unique_ptr<VectorIndex> vi;
  if (fs::exists(vpath)) {
    try {
      auto loaded = std::make_unique<VectorIndex>(VectorIndex::load(vpath));
      if (loaded->dim() == dim && loaded->kind() == kind) vi = std::move(loaded);
    } catch (const std::exception& e) {
      std::cerr << "synclap: " << e.what() << " (rebuilding it)\n";
    }
  }
  if (!vi) vi = std::make_unique<VectorIndex>(dim, kind);

  // Drop ids no longer in the store; add rows newer than the newest id indexed (ids only grow).
  std::vector<int64_t> store_ids;
  for (const auto& it : store.items()) store_ids.push_back(it.id);
  std::unordered_set<int64_t> in_store(store_ids.begin(), store_ids.end());
  std::vector<int64_t> stale;
  int64_t newest = -1;
  for (int64_t id : vi->ids()) {
    if (!in_store.count(id)) stale.push_back(id);
    newest = std::max(newest, id);
  }
  vi->remove(stale);
  const int64_t missing_old = int64_t(std::count_if(store_ids.begin(), store_ids.end(), [&](int64_t id) {
    return id <= newest && !vi->contains(id);
  }));
  if (missing_old > 0) {  // not built by us from this store: start over
    vi = std::make_unique<VectorIndex>(dim, kind);
    newest = -1;
  }
  std::vector<float> buf;
  std::vector<int64_t> ids;
  Progress p("vectors", int64_t(std::count_if(store_ids.begin(), store_ids.end(), [&](int64_t id) { return id > newest; })),
             progress);
  auto flush = [&]() {
    if (ids.empty()) return;
    vi->add(buf.data(), int64_t(ids.size()), ids.data());
    p.add(int64_t(ids.size()));
    buf.clear();
    ids.clear();
  };
  store.for_each_embedding(
      [&](int64_t id, const std::vector<float>& e) {
        if (int64_t(e.size()) != dim) throw FileError(store.path(), "embedding of the wrong size for id " + std::to_string(id));
        buf.insert(buf.end(), e.begin(), e.end());
        ids.push_back(id);
        if (ids.size() >= 8192) flush();
      },
      newest);
  flush();
  p.finish();
  if (vi->stored() > 0 && (vi->stored() - vi->size()) * 4 > vi->stored()) vi->compact();
  vi->save(vpath);
  return vi->structure();
}

int64_t merge_indexes(const std::vector<std::string>& shards, const std::string& out, bool progress) {
  if (shards.empty()) throw Error("merge: no shard indexes given");
  fs::create_directories(out);
  const std::string db = (fs::path(out) / kDbName).string();
  if (fs::exists(db)) throw FileError(out, "already holds an index (merge into a new folder)");
  LibraryStore dst = LibraryStore::open(db, true);
  std::string root, model, dim, kind;
  for (const auto& dir : shards) {
    LibraryStore src = LibraryStore::open((fs::path(dir) / kDbName).string(), false);
    if (root.empty()) {
      root = src.meta("root");
      model = src.meta("model");
      dim = src.meta("dim");
      kind = src.meta("index_kind", "auto");
      dst.set_meta("root", root);
      dst.set_meta("model", model);
      dst.set_meta("dim", dim);
      dst.set_meta("index_kind", kind);
      dst.set_meta("shard", "0/1");
    } else if (src.meta("root") != root || src.meta("model") != model || src.meta("dim") != dim) {
      throw FileError(dir, "shard of another library or model (root " + src.meta("root") + ", model " +
                               src.meta("model") + ")");
    }
    auto items = src.items();
    Progress p("merge " + fs::path(dir).filename().string(), int64_t(items.size()), progress);
    LibraryStore::Transaction tx(dst);
    for (const auto& it : items) {
      dst.insert(it, src.embedding(it.id));
      p.add();
    }
    for (const auto& f : src.failures()) dst.record_failure(f);
    tx.commit();
    p.finish();
  }
  sync_vectors(out, "", progress);
  return dst.count();
}

// ---------------------------------------------------------------------------------------------------------

LibraryIndex LibraryIndex::open(const std::string& index_dir) {
  const std::string db = (fs::path(index_dir) / kDbName).string();
  const std::string vp = (fs::path(index_dir) / kVectorsName).string();
  if (!fs::exists(db)) throw FileError(index_dir, "not a synclap index (no " + std::string(kDbName) + "; run synclap index)");
  if (!fs::exists(vp)) throw FileError(index_dir, "no vector index yet (run synclap index to finish it)");
  LibraryIndex li;
  li.dir_ = index_dir;
  li.store_ = std::make_unique<LibraryStore>(LibraryStore::open(db, false));
  li.vectors_ = std::make_unique<VectorIndex>(VectorIndex::load(vp));
  if (std::to_string(li.vectors_->dim()) != li.store_->meta("dim"))
    throw FileError(vp, "dimension does not match the library database");
  return li;
}

LibraryIndex::LibraryIndex(LibraryIndex&&) noexcept = default;
LibraryIndex& LibraryIndex::operator=(LibraryIndex&&) noexcept = default;
LibraryIndex::~LibraryIndex() = default;

std::vector<SearchResult> LibraryIndex::search(const std::vector<float>& query, int k, const SearchFilter& filter,
                                               const VectorSearchOptions& options) const {
  if (int(query.size()) != dim())
    throw Error("query has " + std::to_string(query.size()) + " dimensions, the index " + std::to_string(dim()));
  std::vector<SearchHit> hits;
  if (filter.empty()) {
    hits = vectors_->search(query.data(), k, nullptr, options);
  } else {
    const std::vector<int64_t> allowed = store_->filter(filter);  // sorted
    if (allowed.empty()) return {};
    hits = vectors_->search(query.data(), k,
                            [&](int64_t id) { return std::binary_search(allowed.begin(), allowed.end(), id); }, options);
  }
  std::vector<SearchResult> out;
  for (const auto& h : hits)
    if (auto it = store_->get(h.id)) out.push_back({h.score, std::move(*it)});
  return out;
}

std::string LibraryIndex::audio_path(int64_t id) const {
  auto it = store_->get(id);
  if (!it) throw Error("no item with id " + std::to_string(id));
  std::error_code ec;
  const fs::path base = fs::canonical(root(), ec);
  if (ec) throw FileError(root(), "library folder is gone");
  const fs::path p = fs::weakly_canonical(base / fs::path(it->path), ec);
  if (ec || !fs::is_regular_file(p, ec)) throw FileError(it->path, "file is gone");
  const std::string rs = base.string() + "/";
  if (p.string().compare(0, rs.size(), rs) != 0) throw FileError(it->path, "outside the library folder");
  return p.string();
}

}  // namespace synclap::search
