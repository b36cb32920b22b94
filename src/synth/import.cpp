// Real data into synclap's dataset layout (folders + CSV/JSONL captions, webdataset tars), coverage
// statistics of a dataset's labels, and webdataset shard writing.
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#ifdef SYNCLAP_HAVE_LIBARCHIVE
#include <archive.h>
#include <archive_entry.h>
#endif

#include "rng.h"
#include "synclap/error.h"
#include "synclap/synth.h"
#include "synclap/util.h"

namespace synclap {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

// RFC 4180 CSV: quoted fields, doubled quotes, newlines inside quotes.
std::vector<std::vector<std::string>> parse_csv(const std::string& text, const std::string& path) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') field += '"', ++i;
      else if (c == '"') quoted = false;
      else field += c;
    } else if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      rows.back().push_back(field), field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) rows.back().push_back(field);
      field.clear();
      any = false;
      if (!rows.back().empty()) rows.emplace_back();
    } else {
      field += c;
      any = true;
    }
  }
  if (quoted) throw FileError(path, "unterminated quoted field");
  if (any || !field.empty()) rows.back().push_back(field);
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

// One item to import: where its audio is and what is known about it.
struct Item {
  std::string source;               // path, or "tar#key"
  std::string audio_path;           // a file on disk, or
  std::string audio_bytes;          // audio read from a tar
  std::vector<std::string> captions;
  ordered_json labels = ordered_json::object();
  std::string split;
};

bool is_path_key(const std::string& k) { return k == "file" || k == "path" || k == "audio" || k == "filename" || k == "file_name"; }
bool is_caption_key(const std::string& k) { return k.rfind("caption", 0) == 0 || k == "text" || k == "description"; }

void add_captions(Item& it, const nlohmann::json& v) {
  if (v.is_string()) {
    if (!v.get<std::string>().empty()) it.captions.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const auto& c : v)
      if (c.is_string() && !c.get<std::string>().empty()) it.captions.push_back(c.get<std::string>());
  }
}

std::vector<Item> items_from_captions_file(const ImportOptions& o) {
  std::vector<Item> items;
  const std::string text = read_file(o.captions_file);
  const bool jsonl = lower(fs::path(o.captions_file).extension().string()) == ".jsonl" ||
                     lower(fs::path(o.captions_file).extension().string()) == ".json";
  auto resolve = [&](const std::string& p) { return fs::path(p).is_absolute() ? p : (fs::path(o.audio_dir) / p).string(); };
  if (jsonl) {
    std::istringstream in(text);
    int line_no = 0;
    for (std::string line; std::getline(in, line);) {
      ++line_no;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        throw FileError(o.captions_file, "line " + std::to_string(line_no) + ": not JSON: " + e.what());
      }
      Item it;
      for (auto kv = j.begin(); kv != j.end(); ++kv) {
        const std::string k = lower(kv.key());
        if (is_path_key(k) && kv.value().is_string()) it.source = kv.value().get<std::string>();
        else if (is_caption_key(k)) add_captions(it, kv.value());
        else if (k == "split" && kv.value().is_string()) it.split = kv.value().get<std::string>();
        else if (k == "labels" && kv.value().is_object())
          for (auto l = kv.value().begin(); l != kv.value().end(); ++l) it.labels[l.key()] = l.value();
        else it.labels[kv.key()] = kv.value();
      }
      if (it.source.empty()) throw FileError(o.captions_file, "line " + std::to_string(line_no) + ": no \"file\"/\"path\"/\"audio\"");
      it.audio_path = resolve(it.source);
      items.push_back(std::move(it));
    }
  } else {
    const auto rows = parse_csv(text, o.captions_file);
    if (rows.empty()) throw FileError(o.captions_file, "empty CSV");
    std::vector<std::string> head;
    for (const auto& h : rows[0]) head.push_back(lower(h));
    const auto pcol = std::find_if(head.begin(), head.end(), is_path_key);
    if (pcol == head.end()) throw FileError(o.captions_file, "the header needs a file/path/audio column");
    for (size_t r = 1; r < rows.size(); ++r) {
      Item it;
      for (size_t c = 0; c < rows[r].size() && c < head.size(); ++c) {
        const std::string& v = rows[r][c];
        if (int(c) == pcol - head.begin()) it.source = v;
        else if (is_caption_key(head[c])) add_captions(it, v);
        else if (head[c] == "split") it.split = v;
        else if (!v.empty()) it.labels[rows[0][c]] = v;
      }
      if (it.source.empty()) throw FileError(o.captions_file, "row " + std::to_string(r + 1) + ": empty file name");
      it.audio_path = resolve(it.source);
      items.push_back(std::move(it));
    }
  }
  return items;
}

#ifdef SYNCLAP_HAVE_LIBARCHIVE
bool is_audio_ext(const std::string& e) {
  static const std::set<std::string> a = {".flac", ".wav", ".mp3", ".ogg", ".opus", ".aiff", ".aif"};
  return a.count(lower(e)) > 0;
}

// Items of a webdataset tar: files sharing a key (name up to the first dot) form one item.
std::vector<Item> items_from_tar(const std::string& tar) {
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  archive_read_support_filter_all(a);
  if (archive_read_open_filename(a, tar.c_str(), 1 << 16) != ARCHIVE_OK) {
    const std::string err = archive_error_string(a) ? archive_error_string(a) : "cannot open";
    archive_read_free(a);
    throw FileError(tar, err);
  }
  std::map<std::string, Item> by_key;
  std::vector<std::string> order;
  archive_entry* e;
  int rc;
  while ((rc = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    if (archive_entry_filetype(e) != AE_IFREG) continue;
    const std::string name = archive_entry_pathname(e);
    const auto slash = name.rfind('/');
    const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
    const auto dot = base.find('.');
    if (dot == std::string::npos) continue;
    const std::string key = (slash == std::string::npos ? "" : name.substr(0, slash + 1)) + base.substr(0, dot);
    const std::string ext = base.substr(dot);
    const int64_t size = archive_entry_size(e);
    if (size < 0 || size > (int64_t(1) << 31)) {
      archive_read_free(a);
      throw FileError(tar, name + ": absurd member size");
    }
    std::string bytes(size_t(size), '\0');
    if (size > 0 && archive_read_data(a, bytes.data(), bytes.size()) != ssize_t(size)) {
      archive_read_free(a);
      throw FileError(tar, name + ": truncated member");
    }
    if (!by_key.count(key)) order.push_back(key);
    Item& it = by_key[key];
    it.source = tar + "#" + key;
    if (is_audio_ext(ext)) {
      it.audio_bytes = std::move(bytes);
    } else if (lower(ext) == ".json") {
      try {
        const auto j = nlohmann::json::parse(bytes);
        for (auto kv = j.begin(); kv != j.end(); ++kv) {
          const std::string k = lower(kv.key());
          if (is_caption_key(k)) add_captions(it, kv.value());
          else if (k == "split" && kv.value().is_string()) it.split = kv.value().get<std::string>();
          else if (k == "labels" && kv.value().is_object())
            for (auto l = kv.value().begin(); l != kv.value().end(); ++l) it.labels[l.key()] = l.value();
          else if (k != "duration") it.labels[kv.key()] = kv.value();  // the decoded audio says how long it is
        }
      } catch (const nlohmann::json::exception& ex) {
        archive_read_free(a);
        throw FileError(tar, name + ": not JSON: " + ex.what());
      }
    } else if (lower(ext) == ".txt" || lower(ext) == ".caption") {
      it.captions.push_back(bytes);
    }
  }
  const bool bad = rc != ARCHIVE_EOF;
  const std::string err = bad && archive_error_string(a) ? archive_error_string(a) : "";
  archive_read_free(a);
  if (bad) throw FileError(tar, "corrupt or truncated tar: " + err);
  std::vector<Item> items;
  for (const auto& k : order) items.push_back(std::move(by_key[k]));
  return items;
}
#endif

void append_line(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw FileError(path, std::string("cannot open for appending: ") + std::strerror(errno));
  const std::string data = line + "\n";
  const ssize_t n = ::write(fd, data.data(), data.size());
  ::close(fd);
  if (n != ssize_t(data.size())) throw FileError(path, "write failed (disk full?)");
}

}  // namespace

ImportResult import_dataset(const ImportOptions& o) {
  if (o.out_dir.empty()) throw Error("import: an output directory is needed");
  std::vector<Item> items;
  if (!o.captions_file.empty()) items = items_from_captions_file(o);
  for (const auto& t : o.tars) {
#ifdef SYNCLAP_HAVE_LIBARCHIVE
    auto more = items_from_tar(t);
    for (auto& m : more) items.push_back(std::move(m));
#else
    throw Error("import: reading tars needs libarchive (synclap was built without it)");
#endif
  }
  if (items.empty()) throw Error("import: nothing to import (give --captions FILE and/or --tar FILES)");

  const fs::path dir(o.out_dir);
  fs::create_directories(dir / "audio");
  for (const auto& sub : {dir, dir / "audio"})
    for (const auto& e : fs::directory_iterator(sub))
      if (e.path().filename().string().find(".tmp.") != std::string::npos) fs::remove(e.path());
  const std::string manifest = (dir / "manifest.jsonl").string();
  std::map<int64_t, std::string> done;
  {
    std::ifstream in(manifest);
    for (std::string line; std::getline(in, line);) {
      try {
        const auto j = nlohmann::json::parse(line);
        if (fs::exists(dir / j.at("audio").get<std::string>())) done[j.at("index").get<int64_t>()] = line;
      } catch (const nlohmann::json::exception&) {
      }
    }
  }
  ImportResult res;
  res.kept = int64_t(done.size());
  std::vector<int64_t> todo;
  for (int64_t i = 0; i < int64_t(items.size()); ++i)
    if (!done.count(i)) todo.push_back(i);
  std::mutex mu;
  Progress progress("import", int64_t(todo.size()), o.progress);
  parallel_for(int64_t(todo.size()), [&](int64_t k) {
    const int64_t i = todo[size_t(k)];
    const Item& it = items[size_t(i)];
    char id[32];
    std::snprintf(id, sizeof id, "%06lld", static_cast<long long>(i));
    const std::string rel = std::string("audio/") + id + ".flac";
    try {
      const Waveform w = it.audio_path.empty()
                             ? (it.audio_bytes.empty() ? throw Error("no audio member")
                                                       : decode_audio_memory(it.audio_bytes.data(), it.audio_bytes.size(), {}, it.source))
                             : load_audio(it.audio_path, {});
      write_audio((dir / rel).string(), w);
      std::vector<std::string> caps;
      for (const auto& c : it.captions) caps.push_back(o.debias ? debias_gendered(c) : c);
      std::string split = it.split;
      if (split.empty()) {
        const double u = synth::Rng(synth::derive_seed(o.seed, uint64_t(i), "split")).uniform();
        split = u < 0.05 ? "val" : u < 0.10 ? "test" : "train";
      }
      ordered_json rec;
      rec["id"] = id;
      rec["index"] = i;
      rec["audio"] = rel;
      rec["captions"] = caps;
      rec["labels"] = it.labels;
      rec["split"] = split;
      rec["source"] = it.source;
      rec["duration"] = w.duration_s();
      rec["sample_rate"] = w.sample_rate;
      rec["generator"] = "import";
      std::lock_guard<std::mutex> lock(mu);
      append_line(manifest, rec.dump());
      done[i] = rec.dump();
      ++res.imported;
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu);
      ++res.failed;
      res.errors.push_back(it.source + ": " + e.what());
    }
    progress.add();
  }, o.threads);
  progress.finish();
  std::string all;
  for (const auto& [i, line] : done) all += line + "\n";
  write_file_atomic(manifest, all);
  std::sort(res.errors.begin(), res.errors.end());
  return res;
}

std::string dataset_stats_json(const std::string& dir, const Vocabulary* vocab) {
  const std::string manifest = (fs::path(dir) / "manifest.jsonl").string();
  std::ifstream in(manifest);
  if (!in) throw FileError(manifest, "cannot open (is this a synclap dataset directory?)");
  ordered_json out;
  std::map<std::string, std::map<std::string, int64_t>> labels;
  std::map<std::string, int64_t> splits;
  int64_t clips = 0, captions = 0;
  double seconds = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      continue;
    }
    ++clips;
    seconds += j.value("duration", 0.0);
    captions += int64_t(j.value("captions", nlohmann::json::array()).size());
    ++splits[j.value("split", std::string("?"))];
    if (!j.contains("labels") || !j["labels"].is_object()) continue;
    for (auto kv = j["labels"].begin(); kv != j["labels"].end(); ++kv) {
      const auto& v = kv.value();
      if (kv.key() == "parts") continue;
      std::string attr = kv.key() == "instruments" ? "instrument" : kv.key();
      if (v.is_array()) {
        for (const auto& x : v) ++labels[attr][x.is_string() ? x.get<std::string>() : x.dump()];
      } else {
        ++labels[attr][v.is_string() ? v.get<std::string>() : v.dump()];
      }
    }
  }
  out["clips"] = clips;
  out["hours"] = seconds / 3600.0;
  out["captions"] = captions;
  out["splits"] = splits;
  ordered_json lj = ordered_json::object();
  for (const auto& [attr, counts] : labels) lj[attr] = counts;
  out["labels"] = lj;
  if (vocab) {
    ordered_json missing = ordered_json::object();
    for (const auto& attr : Vocabulary::attributes()) {
      std::vector<std::string> miss;
      for (const auto& v : vocab->values(attr))
        if (!labels[attr].count(v)) miss.push_back(v);
      missing[attr] = miss;
    }
    out["missing"] = missing;
  }
  return out.dump(2);
}

std::vector<std::string> write_webdataset(const std::string& dataset_dir, const std::string& out_dir, int per_shard) {
#ifdef SYNCLAP_HAVE_LIBARCHIVE
  if (per_shard < 1) throw Error("webdataset: per_shard must be >= 1");
  const std::string manifest = (fs::path(dataset_dir) / "manifest.jsonl").string();
  std::ifstream in(manifest);
  if (!in) throw FileError(manifest, "cannot open");
  std::vector<nlohmann::json> recs;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) recs.push_back(nlohmann::json::parse(line));
  fs::create_directories(out_dir);
  std::vector<std::string> shards;
  for (size_t s = 0; s * size_t(per_shard) < recs.size(); ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "shard-%06zu.tar", s);
    const std::string path = (fs::path(out_dir) / name).string();
    write_file_atomic(path, [&](const std::string& tmp) {
      archive* a = archive_write_new();
      archive_write_set_format_pax_restricted(a);
      if (archive_write_open_filename(a, tmp.c_str()) != ARCHIVE_OK) {
        archive_write_free(a);
        throw FileError(path, "cannot create");
      }
      auto add = [&](const std::string& member, const std::string& bytes) {
        archive_entry* e = archive_entry_new();
        archive_entry_set_pathname(e, member.c_str());
        archive_entry_set_size(e, la_int64_t(bytes.size()));
        archive_entry_set_filetype(e, AE_IFREG);
        archive_entry_set_perm(e, 0644);
        archive_entry_set_mtime(e, 0, 0);  // reproducible shards
        const bool ok = archive_write_header(a, e) == ARCHIVE_OK &&
                        archive_write_data(a, bytes.data(), bytes.size()) == ssize_t(bytes.size());
        archive_entry_free(e);
        if (!ok) throw FileError(path, "write failed");
      };
      try {
        for (size_t i = s * size_t(per_shard); i < std::min(recs.size(), (s + 1) * size_t(per_shard)); ++i) {
          const auto& r = recs[i];
          const std::string id = r.at("id").get<std::string>();
          add(id + ".flac", read_file((fs::path(dataset_dir) / r.at("audio").get<std::string>()).string()));
          ordered_json meta;
          meta["text"] = r.value("captions", nlohmann::json::array());
          meta["labels"] = r.value("labels", nlohmann::json::object());
          meta["split"] = r.value("split", std::string());
          meta["duration"] = r.value("duration", 0.0);
          add(id + ".json", meta.dump());
        }
      } catch (...) {
        archive_write_free(a);
        throw;
      }
      archive_write_close(a);
      archive_write_free(a);
    });
    shards.push_back(path);
  }
  return shards;
#else
  (void)dataset_dir, (void)out_dir, (void)per_shard;
  throw Error("webdataset: needs libarchive (synclap was built without it)");
#endif
}

}  // namespace synclap
