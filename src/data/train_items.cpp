// synclap: the items of a training dataset — a directory with manifest.jsonl, or webdataset tar shards.
// Shards are read by a small tar walker of our own (ustar, pax and GNU long names), which also records
// where each member's bytes lie, so the loader can read one member with a single pread.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "data/data_internal.h"
#include "data/train_data.h"
#include "synclap/error.h"

namespace fs = std::filesystem;

namespace synclap {
namespace data {

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

uint64_t derive_seed(uint64_t seed, int64_t epoch, int64_t item, uint64_t purpose) {
  uint64_t h = mix64(seed ^ 0x5eedc1a9ULL);
  h = mix64(h ^ uint64_t(epoch));
  h = mix64(h ^ uint64_t(item));
  return mix64(h ^ purpose);
}

double unit_double(uint64_t seed) { return double(mix64(seed) >> 11) * (1.0 / 9007199254740992.0); }

std::string item_file_path(const TrainItem& item) {
  if (item.tar_offset < 0) return item.audio;
  const auto p = item.audio.rfind("::");
  return p == std::string::npos ? item.audio : item.audio.substr(0, p);
}

std::string item_file_identity(const TrainItem& item) {
  const std::string path = item_file_path(item);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw FileError(path, std::string("cannot stat: ") + std::strerror(errno));
  std::string id = std::to_string(int64_t(st.st_size)) + "|" + std::to_string(int64_t(st.st_mtim.tv_sec)) + "." +
                   std::to_string(int64_t(st.st_mtim.tv_nsec));
  if (item.tar_offset >= 0) id += "|" + std::to_string(item.tar_offset) + "+" + std::to_string(item.tar_size);
  return id;
}

Waveform read_item_audio(const TrainItem& item, const DecodeOptions& options) {
  if (item.tar_offset < 0) return load_audio(item.audio, options);
  const std::string tar = item_file_path(item);
  if (item.tar_size <= 0) throw FileError(item.audio, "empty tar member");
  if (item.tar_size > (int64_t(1) << 31)) throw FileError(item.audio, "absurd tar member size");
  const int fd = ::open(tar.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FileError(tar, std::string("cannot open: ") + std::strerror(errno));
  std::string bytes(size_t(item.tar_size), '\0');
  size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::pread(fd, &bytes[got], bytes.size() - got, off_t(item.tar_offset + int64_t(got)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += size_t(n);
  }
  ::close(fd);
  if (got != bytes.size()) throw FileError(item.audio, "truncated tar member");
  return decode_audio_memory(bytes.data(), bytes.size(), options, item.audio);
}

}  // namespace data

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return s;
}

bool is_caption_key(const std::string& k) { return k.rfind("caption", 0) == 0 || k == "text" || k == "description"; }

void add_captions(std::vector<std::string>& out, const nlohmann::json& v) {
  if (v.is_string()) {
    if (!v.get<std::string>().empty()) out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const auto& c : v)
      if (c.is_string() && !c.get<std::string>().empty()) out.push_back(c.get<std::string>());
  }
}

void warn_no_caption(const std::string& where) {
  std::cerr << "synclap: skipping " << where << ": no caption\n";
}

std::vector<TrainItem> manifest_records(const std::string& dir, bool keep_captionless) {
  const std::string path = (fs::path(dir) / "manifest.jsonl").string();
  std::ifstream in(path);
  if (!in) throw FileError(path, "cannot open (a dataset directory needs manifest.jsonl)");
  std::vector<TrainItem> items;
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const std::exception& e) {
      throw FileError(path, "line " + std::to_string(lineno) + ": not JSON (" + e.what() + ")");
    }
    if (!j.is_object()) throw FileError(path, "line " + std::to_string(lineno) + ": not a JSON object");
    TrainItem it;
    for (const char* k : {"audio", "path", "file", "audio_path"})
      if (j.contains(k) && j[k].is_string()) {
        it.audio = j[k].get<std::string>();
        break;
      }
    if (it.audio.empty()) throw FileError(path, "line " + std::to_string(lineno) + ": no audio path field");
    if (fs::path(it.audio).is_relative()) it.audio = (fs::path(dir) / it.audio).string();
    if (j.contains("id") && j["id"].is_string()) it.id = j["id"].get<std::string>();
    else if (j.contains("id") && j["id"].is_number_integer()) it.id = std::to_string(j["id"].get<int64_t>());
    else it.id = fs::path(it.audio).stem().string();
    if (j.contains("captions")) add_captions(it.captions, j["captions"]);
    if (it.captions.empty())
      for (const char* k : {"caption", "text"})
        if (j.contains(k)) add_captions(it.captions, j[k]);
    if (j.contains("labels") && j["labels"].is_object()) it.labels = j["labels"];
    if (j.contains("split") && j["split"].is_string()) it.split = j["split"].get<std::string>();
    if (j.contains("duration") && j["duration"].is_number()) it.duration = j["duration"].get<double>();
    if (it.captions.empty() && !keep_captionless) {
      warn_no_caption(path + " line " + std::to_string(lineno) + " (" + it.audio + ")");
      continue;
    }
    items.push_back(std::move(it));
  }
  return items;
}

std::vector<TrainItem> read_manifest_items(const std::string& dir) { return manifest_records(dir, false); }

// --- tar shards -------------------------------------------------------------------------------------

struct TarMember {
  std::string name;
  int64_t offset = 0, size = 0;
};

int64_t parse_tar_number(const unsigned char* f, size_t n) {
  if (f[0] & 0x80) {  // base-256 (GNU) for big sizes
    int64_t v = f[0] & 0x7f;
    for (size_t i = 1; i < n; ++i) v = (v << 8) | f[i];
    return v;
  }
  int64_t v = 0;
  size_t i = 0;
  while (i < n && (f[i] == ' ' || f[i] == '\0')) ++i;
  for (; i < n && f[i] >= '0' && f[i] <= '7'; ++i) v = v * 8 + (f[i] - '0');
  return v;
}

std::string field(const unsigned char* f, size_t n) {
  size_t len = 0;
  while (len < n && f[len]) ++len;
  return std::string(reinterpret_cast<const char*>(f), len);
}

std::vector<TarMember> tar_members(const std::string& tar) {
  std::ifstream in(tar, std::ios::binary);
  if (!in) throw FileError(tar, "cannot open");
  in.seekg(0, std::ios::end);
  const int64_t file_size = int64_t(in.tellg());
  in.seekg(0);
  unsigned char h[512];
  std::vector<TarMember> out;
  int64_t pos = 0;
  std::string next_name;
  int64_t next_size = -1;
  while (true) {
    if (pos + 512 > file_size) {
      if (pos == file_size && pos > 0) break;  // no end blocks: tolerated
      throw FileError(tar, "corrupt or truncated tar (header beyond the end of the file)");
    }
    in.seekg(pos);
    if (!in.read(reinterpret_cast<char*>(h), 512)) throw FileError(tar, "read error");
    if (pos == 0 && ((h[0] == 0x1f && h[1] == 0x8b) || (h[0] == 'B' && h[1] == 'Z' && h[2] == 'h') ||
                     (h[0] == 0xfd && h[1] == '7' && h[2] == 'z') || (h[0] == 0x28 && h[1] == 0xb5)))
      throw FileError(tar, "compressed tar shards are not supported (decompress them first)");
    if (std::all_of(h, h + 512, [](unsigned char c) { return c == 0; })) break;
    int64_t sum = 0;
    for (int i = 0; i < 512; ++i) sum += (i >= 148 && i < 156) ? ' ' : h[i];
    if (parse_tar_number(h + 148, 8) != sum) throw FileError(tar, "corrupt tar (bad header checksum at byte " + std::to_string(pos) + ")");
    int64_t size = parse_tar_number(h + 124, 12);
    const char type = char(h[156]);
    std::string name = field(h, 100);
    if (std::memcmp(h + 257, "ustar", 5) == 0) {
      const std::string prefix = field(h + 345, 155);
      if (!prefix.empty()) name = prefix + "/" + name;
    }
    const int64_t data = pos + 512;
    if (size < 0 || data + size > file_size) throw FileError(tar, "corrupt or truncated tar (member " + name + " runs past the end)");
    if (type == 'x' || type == 'L') {
      std::string body(size_t(size), '\0');
      in.seekg(data);
      if (!in.read(&body[0], size)) throw FileError(tar, "read error");
      if (type == 'L') {
        next_name = body.substr(0, body.find('\0'));
      } else {
        size_t p = 0;
        while (p < body.size()) {
          const size_t sp = body.find(' ', p);
          if (sp == std::string::npos) break;
          const int64_t len = std::atoll(body.c_str() + p);
          if (len <= 0 || p + size_t(len) > body.size()) break;
          const std::string rec = body.substr(sp + 1, size_t(len) - (sp + 1 - p) - 1);
          const size_t eq = rec.find('=');
          if (eq != std::string::npos) {
            if (rec.substr(0, eq) == "path") next_name = rec.substr(eq + 1);
            else if (rec.substr(0, eq) == "size") next_size = std::atoll(rec.c_str() + eq + 1);
          }
          p += size_t(len);
        }
      }
    } else {
      if (!next_name.empty()) name = next_name;
      if (next_size >= 0) size = next_size;
      if (data + size > file_size) throw FileError(tar, "corrupt or truncated tar (member " + name + " runs past the end)");
      if (type == '0' || type == '\0') out.push_back({name, data, size});
      next_name.clear();
      next_size = -1;
    }
    pos = data + (size + 511) / 512 * 512;
  }
  return out;
}

bool is_audio_ext(const std::string& e) {
  static const std::set<std::string> a = {".flac", ".wav", ".mp3", ".ogg", ".opus", ".aiff", ".aif"};
  return a.count(lower(e)) > 0;
}

std::vector<TrainItem> read_tar_items(const std::string& tar) {
  const auto members = tar_members(tar);
  std::map<std::string, TrainItem> by_key;
  std::vector<std::string> order;
  std::ifstream in(tar, std::ios::binary);
  for (const auto& m : members) {
    const auto slash = m.name.rfind('/');
    const std::string base = slash == std::string::npos ? m.name : m.name.substr(slash + 1);
    const auto dot = base.find('.');
    if (dot == std::string::npos || base.empty() || base[0] == '.') continue;
    const std::string key = (slash == std::string::npos ? "" : m.name.substr(0, slash + 1)) + base.substr(0, dot);
    const std::string ext = lower(base.substr(dot));
    const bool audio = is_audio_ext(ext);
    const bool meta = ext == ".json" || ext == ".txt" || ext == ".caption";
    if (!audio && !meta) continue;
    if (!by_key.count(key)) order.push_back(key);
    TrainItem& it = by_key[key];
    it.id = key;
    if (audio) {
      it.audio = tar + "::" + m.name;
      it.tar_offset = m.offset;
      it.tar_size = m.size;
      continue;
    }
    if (m.size > (int64_t(1) << 26)) throw FileError(tar, m.name + ": metadata member too large");
    std::string bytes(size_t(m.size), '\0');
    in.seekg(m.offset);
    if (m.size > 0 && !in.read(&bytes[0], m.size)) throw FileError(tar, m.name + ": read error");
    if (ext == ".json") {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(bytes);
      } catch (const nlohmann::json::exception& ex) {
        throw FileError(tar, m.name + ": not JSON: " + ex.what());
      }
      if (!j.is_object()) throw FileError(tar, m.name + ": not a JSON object");
      for (auto kv = j.begin(); kv != j.end(); ++kv) {
        const std::string k = lower(kv.key());
        if (is_caption_key(k)) add_captions(it.captions, kv.value());
        else if (k == "split" && kv.value().is_string()) it.split = kv.value().get<std::string>();
        else if (k == "duration" && kv.value().is_number()) it.duration = kv.value().get<double>();
        else if (k == "labels" && kv.value().is_object())
          for (auto l = kv.value().begin(); l != kv.value().end(); ++l) it.labels[l.key()] = l.value();
      }
    } else {
      while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == '\r' || bytes.back() == ' ')) bytes.pop_back();
      if (!bytes.empty()) it.captions.push_back(bytes);
    }
  }
  std::vector<TrainItem> items;
  for (const auto& k : order) {
    TrainItem& it = by_key[k];
    if (it.tar_offset < 0) continue;  // metadata without audio
    if (it.captions.empty()) {
      warn_no_caption(it.audio);
      continue;
    }
    items.push_back(std::move(it));
  }
  return items;
}

}  // namespace

std::vector<TrainItem> read_manifest_records(const std::string& dir) { return manifest_records(dir, true); }

std::vector<TrainItem> read_train_items(const std::string& source, const std::string& split) {
  std::vector<TrainItem> all;
  std::error_code ec;
  if (fs::is_directory(source, ec)) {
    if (fs::exists(fs::path(source) / "manifest.jsonl")) {
      all = read_manifest_items(source);
    } else {
      std::vector<std::string> tars;
      for (const auto& e : fs::directory_iterator(source))
        if (e.is_regular_file() && lower(e.path().extension().string()) == ".tar") tars.push_back(e.path().string());
      if (tars.empty()) throw FileError(source, "neither manifest.jsonl nor .tar shards in this directory");
      std::sort(tars.begin(), tars.end());
      for (const auto& t : tars) {
        auto v = read_tar_items(t);
        all.insert(all.end(), std::make_move_iterator(v.begin()), std::make_move_iterator(v.end()));
      }
    }
  } else if (fs::is_regular_file(source, ec)) {
    if (fs::path(source).filename() == "manifest.jsonl") all = read_manifest_items(fs::path(source).parent_path().string());
    else if (lower(fs::path(source).extension().string()) == ".tar") all = read_tar_items(source);
    else throw FileError(source, "not a dataset (expected a directory with manifest.jsonl, or .tar shards)");
  } else {
    throw FileError(source, "no such dataset directory or shard");
  }
  if (split.empty()) return all;
  std::vector<TrainItem> kept;
  for (auto& it : all)
    if (it.split == split) kept.push_back(std::move(it));
  return kept;
}

namespace {

// Walks a template: calls text(piece) for literal text and field(name) for each placeholder; a false from
// field() stops the walk and makes the result false.
template <class Text, class Field>
bool walk_template(const std::string& t, Text text, Field field) {
  size_t i = 0;
  while (i < t.size()) {
    const char ch = t[i];
    if (ch == '{' && i + 1 < t.size() && t[i + 1] == '{') {
      text("{");
      i += 2;
    } else if (ch == '}' && i + 1 < t.size() && t[i + 1] == '}') {
      text("}");
      i += 2;
    } else if (ch == '{') {
      const size_t end = t.find('}', i + 1);
      if (end == std::string::npos) throw Error("label caption template \"" + t + "\": unclosed \"{\"");
      const std::string name = t.substr(i + 1, end - i - 1);
      if (name.empty() || name.find('{') != std::string::npos)
        throw Error("label caption template \"" + t + "\": a placeholder needs a label name, as {genre}");
      if (!field(name)) return false;
      i = end + 1;
    } else if (ch == '}') {
      throw Error("label caption template \"" + t + "\": stray \"}\" (write \"}}\" for a literal brace)");
    } else {
      const size_t next = t.find_first_of("{}", i);
      const size_t stop = next == std::string::npos ? t.size() : next;
      text(t.substr(i, stop - i));
      i = stop;
    }
  }
  return true;
}

std::string label_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::vector<std::string> parts;
    for (const auto& e : v) {
      const std::string s = label_text(e);
      if (!s.empty()) parts.push_back(s);
    }
    std::string out;
    for (size_t k = 0; k < parts.size(); ++k) {
      if (k > 0) out += k + 1 == parts.size() ? " and " : ", ";
      out += parts[k];
    }
    return out;
  }
  if (v.is_null() || v.is_object()) return "";
  return v.dump();
}

}  // namespace

void check_label_caption_template(const std::string& tmpl, const std::string& where) {
  size_t fields = 0;
  try {
    walk_template(tmpl, [](const std::string&) {}, [&](const std::string&) { return ++fields, true; });
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  if (fields == 0) throw Error(where + ": label caption template \"" + tmpl + "\" names no label (as {genre})");
}

bool fill_label_caption(const std::string& tmpl, const nlohmann::json& labels, std::string& out) {
  std::string s;
  const bool ok = walk_template(
      tmpl, [&](const std::string& piece) { s += piece; },
      [&](const std::string& name) {
        if (!labels.is_object() || !labels.contains(name)) return false;
        const std::string v = label_text(labels[name]);
        if (v.empty()) return false;
        s += v;
        return true;
      });
  if (ok) out = std::move(s);
  return ok;
}

size_t apply_label_captions(std::vector<TrainItem>& items, const std::vector<std::string>& templates, bool keep_own) {
  if (templates.empty()) return 0;
  size_t kept = 0;
  for (auto& it : items) {
    std::vector<std::string> caps;
    for (const auto& t : templates) {
      std::string c;
      if (fill_label_caption(t, it.labels, c)) caps.push_back(std::move(c));
    }
    if (caps.empty()) {
      ++kept;
      continue;
    }
    if (keep_own) caps.insert(caps.end(), it.captions.begin(), it.captions.end());
    it.captions = std::move(caps);
  }
  return kept;
}

}  // namespace synclap
