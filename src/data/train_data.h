// synclap: training data — the items of a dataset (directory with manifest.jsonl, or webdataset tar
// shards), and a loader that turns them into batches of features + captions with worker threads, a
// feature cache, on-the-fly audio and caption augmentation, and a deterministic, resumable order.
// Internal header (LibTorch types).
//
// Order: epoch e visits the items in a permutation drawn from (seed, e). With world_size W each global
// batch of batch_size * W items is cut into W slices; rank r gets slice r. A random caption per clip per
// epoch, the augmentation draws and the random crops all come from (seed, e, item index), so the batches
// of a given (epoch, batch index) are the same whatever the thread count, and `start_epoch(e, k)` resumes
// exactly at batch k. (Every draw is derive_seed(seed, epoch, item, purpose), see data/loader.cpp.)
//
// Feature cache (data/feature_cache.h): an item whose features cannot change between epochs (no audio
// augmentation this epoch, and the clip fits the window or the truncation is deterministic: First,
// Middle, Fusion with centred chunks) is cached in memory (memory_cache_mb) and, with cache_dir, on
// disk (one float32 file per item, keyed by audio path + size + mtime (+ tar member) + contract JSON;
// written atomically; corrupt or mismatching files are ignored and rewritten). Long clips with random
// truncation (RandTrunc, Fusion with random chunks) are not feature-cached: their decoded waveform is
// kept in memory (same budget) and the crop is redrawn each epoch, number for number as the
// FeatureExtractor does it. Items augmented this epoch are computed fresh (from the cached waveform if
// there is one, else decoded). The memory cache keeps what arrives first until the budget is full.
//
// Bad items: an item that fails to decode is replaced by the next usable item of the epoch permutation
// (position p+1, p+2, ... wrapping), with its own captions and draws; so the substitute depends only on
// which files are bad, not on timing or the thread count.
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/train_items.h"
#include "synclap/frontend.h"

namespace synclap {

struct CaptionAugment {
  double prob = 0.0;        // chance that a caption is augmented (per item per epoch)
  double word_drop = 0.1;   // chance to drop each non-essential word when augmented
  bool shuffle_phrases = true;  // shuffle comma-separated phrases when augmented
  bool lowercase = true;    // lower-case when augmented
};
// With probability `prob` (drawn from `seed`) the caption is augmented: comma-separated phrases are
// shuffled, each word except the last of its phrase is dropped with probability word_drop, and the
// result is lower-cased; otherwise it is returned as it is.
// Deterministic for `seed`; never returns an empty string (falls back to the input).
std::string augment_caption(const std::string& caption, uint64_t seed, const CaptionAugment& options);

struct LoaderOptions {
  PreprocessContract contract;  // how features are made (its truncation/padding; RandTrunc/Fusion drawn per item)
  int batch_size = 32;          // per rank
  int rank = 0, world_size = 1;
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = true;        // a last incomplete global batch is dropped (training); false for validation
  int workers = 2;              // decoding / augmentation / feature threads (0: prepared in next())
  int prefetch = 2;             // batches prepared ahead
  std::string cache_dir;        // on-disk feature cache ("" = none); shared across runs, keyed by file + contract
  int64_t memory_cache_mb = 2048;  // features kept in memory (0 = none)
  std::string audio_augment;    // AugmentChain JSON applied on the fly ("" = none)
  double audio_augment_prob = 0.0;  // chance per item per epoch that the chain is applied
  CaptionAugment caption_augment;
  bool random_caption = true;   // a random caption per clip per epoch (false: always the first)
  bool progress = false;        // report cache filling on stderr
};

struct Batch {
  int64_t epoch = 0, index = 0;       // which batch of which epoch
  torch::Tensor features;             // [B, C, frames, n_mels] float32
  torch::Tensor is_longer;            // [B] bool
  std::vector<std::string> captions;  // B, chosen and augmented
  std::vector<int64_t> items;         // B indices into the loader's items
};

struct LoaderStats {
  // cache_hits: items served from the feature cache; cache_misses: items whose features were computed;
  // decoded: audio files actually decoded; augmented: items the audio chain was applied to.
  int64_t cache_hits = 0, cache_misses = 0, decoded = 0, augmented = 0;
  std::vector<std::string> bad_items;  // "path: reason", each once
};

class Loader {
 public:
  Loader(std::vector<TrainItem> items, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  const std::vector<TrainItem>& items() const;
  const LoaderOptions& options() const;
  // Batches of this rank per epoch (the same on every rank). With drop_last = false the last global
  // batch is cut short, so a rank's last batch may hold fewer items (or none).
  int64_t batches_per_epoch() const;
  // Starts (or restarts) the pipeline at batch `first_batch` of `epoch` (0 <= first_batch <=
  // batches_per_epoch(), else Error). next() without start_epoch starts epoch 0.
  void start_epoch(int64_t epoch, int64_t first_batch = 0);
  // The next batch of the epoch; false when the epoch is over. Always batch_size items (except a last
  // batch with drop_last = false): an item that cannot be decoded is reported once (stderr + stats),
  // never used again, and replaced by a deterministic substitute, so every rank keeps the same batch size.
  bool next(Batch& out);
  LoaderStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace synclap
