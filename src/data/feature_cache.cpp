// synclap: the loader's feature cache (memory + one file per item on disk).
#include "data/feature_cache.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "synclap/error.h"
#include "synclap/util.h"

namespace fs = std::filesystem;

namespace synclap::data {
namespace {

constexpr char kMagic[8] = {'S', 'Y', 'N', 'C', 'L', 'A', 'P', 'F'};
constexpr uint32_t kVersion = 1;

template <typename T>
void put(std::string& s, T v) {
  s.append(reinterpret_cast<const char*>(&v), sizeof v);
}
template <typename T>
bool get(const std::string& s, size_t& pos, T& v) {
  if (pos + sizeof v > s.size()) return false;
  std::memcpy(&v, s.data() + pos, sizeof v);
  pos += sizeof v;
  return true;
}

}  // namespace

FeatureCache::FeatureCache(std::string dir, int64_t memory_bytes, int channels, int frames, int bins)
    : dir_(std::move(dir)), budget_(std::max<int64_t>(0, memory_bytes)), channels_(channels), frames_(frames), bins_(bins) {
  if (!dir_.empty()) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (!fs::is_directory(dir_)) throw FileError(dir_, "cannot create the feature cache directory: " + ec.message());
  }
}

bool FeatureCache::reserve(int64_t bytes) {
  if (used_ + bytes > budget_) return false;
  used_ += bytes;
  return true;
}

bool FeatureCache::get_memory(int64_t item, CachedFeatures& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = features_.find(item);
  if (it == features_.end()) return false;
  out = it->second;
  return true;
}

void FeatureCache::put_memory(int64_t item, const CachedFeatures& f) {
  std::lock_guard<std::mutex> lock(mu_);
  if (features_.count(item)) return;
  if (!reserve(int64_t(f.data->size() * sizeof(float)))) return;
  features_[item] = f;
}

bool FeatureCache::get_wave(int64_t item, std::shared_ptr<const std::vector<float>>& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = waves_.find(item);
  if (it == waves_.end()) return false;
  out = it->second;
  return true;
}

void FeatureCache::put_wave(int64_t item, std::shared_ptr<const std::vector<float>> wave) {
  std::lock_guard<std::mutex> lock(mu_);
  if (waves_.count(item)) return;
  if (!reserve(int64_t(wave->size() * sizeof(float)))) return;
  waves_[item] = std::move(wave);
}

int64_t FeatureCache::memory_used() const {
  std::lock_guard<std::mutex> lock(mu_);
  return used_;
}

std::string FeatureCache::file_for(const std::string& key) const {
  return (fs::path(dir_) / (sha256_hex(key).substr(0, 32) + ".f32")).string();
}

bool FeatureCache::get_disk(const std::string& key, CachedFeatures& out) const {
  if (dir_.empty()) return false;
  const std::string path = file_for(key);
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  const size_t expect_floats = size_t(channels_) * frames_ * bins_;
  const size_t max_size = 8 + 8 + key.size() + 16 + 8 + expect_floats * 4;
  std::string s;
  s.resize(max_size + 1);
  in.read(&s[0], std::streamsize(s.size()));
  s.resize(size_t(in.gcount()));
  if (s.size() != max_size || std::memcmp(s.data(), kMagic, 8) != 0) return false;
  size_t pos = 8;
  uint32_t version = 0, keylen = 0;
  if (!get(s, pos, version) || version != kVersion || !get(s, pos, keylen) || keylen != key.size()) return false;
  if (s.compare(pos, keylen, key) != 0) return false;
  pos += keylen;
  int32_t c = 0, f = 0, b = 0, longer = 0;
  uint64_t sum = 0;
  if (!get(s, pos, c) || !get(s, pos, f) || !get(s, pos, b) || !get(s, pos, longer) || !get(s, pos, sum)) return false;
  if (c != channels_ || f != frames_ || b != bins_ || (longer != 0 && longer != 1)) return false;
  if (fnv1a64(s.data() + pos, expect_floats * 4) != sum) return false;
  auto data = std::make_shared<std::vector<float>>(expect_floats);
  std::memcpy(data->data(), s.data() + pos, expect_floats * 4);
  out.data = std::move(data);
  out.is_longer = longer != 0;
  return true;
}

bool FeatureCache::put_disk(const std::string& key, const CachedFeatures& f) {
  if (dir_.empty()) return false;
  std::string s(kMagic, 8);
  put(s, kVersion);
  put(s, uint32_t(key.size()));
  s += key;
  put(s, int32_t(channels_));
  put(s, int32_t(frames_));
  put(s, int32_t(bins_));
  put(s, int32_t(f.is_longer ? 1 : 0));
  const size_t bytes = f.data->size() * sizeof(float);
  put(s, fnv1a64(f.data->data(), bytes));
  s.append(reinterpret_cast<const char*>(f.data->data()), bytes);
  try {
    write_file_atomic(file_for(key), s);
    return true;
  } catch (const std::exception& e) {
    std::lock_guard<std::mutex> lock(mu_);
    if (!warned_) std::cerr << "synclap: feature cache: " << e.what() << " (continuing without writing)\n";
    warned_ = true;
    return false;
  }
}

}  // namespace synclap::data
