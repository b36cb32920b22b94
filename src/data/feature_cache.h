// synclap: the loader's feature cache (internal). Features of items whose features do not depend on
// the epoch are kept in memory (up to a byte budget, first come first kept, no eviction) and on disk,
// one file per item: DIR/<sha256(key)[0:32]>.f32, where the key names the audio file (path, size,
// mtime, tar member place) and the preprocessing contract. A file holds
//   "SYNCLAPF" | u32 version | u32 key length | key | i32 channels, frames, bins, is_longer |
//   u64 FNV-1a of the float bytes | float32 data
// and is written atomically. A file that is short, corrupt or made for another key is ignored (and
// rewritten by the caller). The memory side also keeps decoded waveforms of long clips whose crops
// are random (so later epochs do not decode them again).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace synclap::data {

struct CachedFeatures {
  std::shared_ptr<const std::vector<float>> data;
  bool is_longer = false;
};

class FeatureCache {
 public:
  // `dir` "" = no disk cache. channels/frames/bins: the expected shape (files of another shape are ignored).
  FeatureCache(std::string dir, int64_t memory_bytes, int channels, int frames, int bins);

  bool get_memory(int64_t item, CachedFeatures& out) const;
  void put_memory(int64_t item, const CachedFeatures& f);
  bool get_wave(int64_t item, std::shared_ptr<const std::vector<float>>& out) const;
  void put_wave(int64_t item, std::shared_ptr<const std::vector<float>> wave);

  bool has_disk() const { return !dir_.empty(); }
  std::string file_for(const std::string& key) const;
  bool get_disk(const std::string& key, CachedFeatures& out) const;
  // Returns false (and warns once on stderr) if the file cannot be written.
  bool put_disk(const std::string& key, const CachedFeatures& f);

  int64_t memory_used() const;

 private:
  bool reserve(int64_t bytes);  // mu_ held
  std::string dir_;
  int64_t budget_;
  int channels_, frames_, bins_;
  mutable std::mutex mu_;
  int64_t used_ = 0;
  bool warned_ = false;
  std::unordered_map<int64_t, CachedFeatures> features_;
  std::unordered_map<int64_t, std::shared_ptr<const std::vector<float>>> waves_;
};

}  // namespace synclap::data
