// synclap: the training loader — worker threads that decode, augment and extract features for the
// items of an epoch, assembled into batches in a fixed order, with the feature cache and bad-item
// substitution. See data/train_data.h for the order and determinism rules and data/feature_cache.h
// for the cache.
//
// Per item and epoch, every random choice is drawn from derive_seed(seed, epoch, item, purpose):
//   1 caption choice, 2 caption augmentation, 3 whether the audio chain is applied, 4 the feature
//   extractor's NumpyRandom (random crop / fusion chunks), 5 the audio chain's draws.
// Caching: an item whose features cannot change between epochs (no audio augmentation this epoch and
// either the clip fits the window or the contract's truncation is deterministic: First, Middle, or
// Fusion with centred chunks) has its features cached (memory + disk). A long clip with random
// truncation keeps its decoded waveform in the memory cache instead (within memory_cache_mb), so its
// crop is redrawn each epoch without decoding the file again.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "data/data_internal.h"
#include "data/feature_cache.h"
#include "data/train_data.h"
#include "synclap/augment.h"
#include "synclap/error.h"

namespace synclap {

namespace {

struct Prepared {
  std::shared_ptr<const std::vector<float>> features;
  bool is_longer = false;
  std::string caption;
  int64_t item = -1;
};

struct PendingBatch {
  std::vector<Prepared> slots;
  size_t done = 0;
};

}  // namespace

struct Loader::Impl {
  std::vector<TrainItem> items;
  LoaderOptions opt;
  FeatureExtractor fx;
  AugmentChain chain;
  std::unique_ptr<data::FeatureCache> cache;
  std::string contract_json;
  size_t feature_floats = 0;

  // Item state shared by the workers.
  mutable std::mutex state_mu;
  LoaderStats st;
  std::vector<char> bad;          // never used again
  std::vector<char> random_long;  // features differ per epoch: not feature-cached
  int64_t computed = 0;

  // Epoch pipeline.
  std::mutex mu;
  std::condition_variable cv_work, cv_done;
  int64_t epoch = 0, consumer = 0, end_batch = 0, first_batch = 0;
  std::vector<int64_t> perm;
  std::vector<std::vector<int64_t>> batch_positions;  // [batch - first_batch] -> epoch positions
  std::vector<std::pair<int64_t, int>> slots;         // (batch, slot in batch)
  size_t next_slot = 0;
  std::map<int64_t, PendingBatch> pending;
  std::exception_ptr error;
  bool stop = false;
  std::vector<std::thread> threads;
  bool started = false;

  Impl(std::vector<TrainItem> it, LoaderOptions o) : items(std::move(it)), opt(std::move(o)), fx(opt.contract) {}

  int64_t global_batch() const { return int64_t(opt.batch_size) * opt.world_size; }

  int64_t batches_per_epoch() const {
    const int64_t n = int64_t(items.size()), g = global_batch();
    return opt.drop_last ? n / g : (n + g - 1) / g;
  }

  std::vector<int64_t> permutation(int64_t e) const {
    std::vector<int64_t> p(items.size());
    for (size_t i = 0; i < p.size(); ++i) p[i] = int64_t(i);
    if (opt.shuffle && p.size() > 1) {
      uint64_t s = data::derive_seed(opt.seed, e, -1, 0);
      for (size_t i = p.size() - 1; i > 0; --i) {
        s = data::mix64(s);
        std::swap(p[i], p[size_t(s % (i + 1))]);
      }
    }
    return p;
  }

  std::string feature_key(int64_t item) const {
    const TrainItem& t = items[size_t(item)];
    return "synclap-features v1\n" + t.audio + "\n" + data::item_file_identity(t) + "\n" + contract_json;
  }

  bool deterministic_features(size_t n) const {
    const PreprocessContract& c = opt.contract;
    if (int64_t(n) <= c.max_samples) return true;
    switch (c.truncation) {
      case Truncation::First:
      case Truncation::Middle:
        return true;
      case Truncation::Fusion:
        return c.chunk_choice == ChunkChoice::Centered;
      default:
        return false;
    }
  }

  void report_bad(int64_t item, const std::string& reason) {
    const std::string path = items[size_t(item)].audio;
    std::lock_guard<std::mutex> lock(state_mu);
    if (bad[size_t(item)]) return;
    bad[size_t(item)] = 1;
    st.bad_items.push_back(path + ": " + reason);
    std::cerr << "synclap: skipping " << path << ": " << reason << "\n";
  }

  bool is_bad(int64_t item) const {
    std::lock_guard<std::mutex> lock(state_mu);
    return bad[size_t(item)] != 0;
  }

  void count(int64_t LoaderStats::*field) {
    std::lock_guard<std::mutex> lock(state_mu);
    ++(st.*field);
  }

  void note_computed() {
    if (!opt.progress) return;
    std::lock_guard<std::mutex> lock(state_mu);
    ++computed;
    if (computed % 1000 == 0)
      std::cerr << "synclap: feature cache: " << computed << " items computed, "
                << (cache->memory_used() >> 20) << " MiB in memory\n";
  }

  // Features of `item` for epoch `e`; false if the item's audio is unusable (reported, marked bad).
  bool prepare_item(int64_t item, int64_t e, Prepared& out) {
    const TrainItem& t = items[size_t(item)];
    out.item = item;
    // Caption.
    size_t ci = 0;
    if (opt.random_caption && t.captions.size() > 1)
      ci = size_t(data::mix64(data::derive_seed(opt.seed, e, item, 1)) % t.captions.size());
    out.caption = augment_caption(t.captions[ci], data::derive_seed(opt.seed, e, item, 2), opt.caption_augment);

    const bool augment =
        !chain.empty() && data::unit_double(data::derive_seed(opt.seed, e, item, 3)) < opt.audio_augment_prob;
    bool known_random = false;
    {
      std::lock_guard<std::mutex> lock(state_mu);
      known_random = random_long[size_t(item)] != 0;
    }
    std::string key;
    if (!augment && !known_random) {
      data::CachedFeatures cf;
      if (cache->get_memory(item, cf)) {
        count(&LoaderStats::cache_hits);
        out.features = cf.data;
        out.is_longer = cf.is_longer;
        return true;
      }
      if (cache->has_disk()) {
        try {
          key = feature_key(item);
        } catch (const FileError& ex) {
          report_bad(item, ex.problem());
          return false;
        }
        if (cache->get_disk(key, cf)) {
          count(&LoaderStats::cache_hits);
          cache->put_memory(item, cf);
          out.features = cf.data;
          out.is_longer = cf.is_longer;
          return true;
        }
      }
    }
    count(&LoaderStats::cache_misses);

    // The waveform: from memory (long clips with random crops) or decoded.
    std::shared_ptr<const std::vector<float>> wave;
    if (!cache->get_wave(item, wave)) {
      try {
        DecodeOptions d;
        d.target_rate = opt.contract.sample_rate;
        d.int16_roundtrip = opt.contract.int16_roundtrip;
        Waveform w = data::read_item_audio(t, d);
        count(&LoaderStats::decoded);
        if (w.samples.empty()) throw Error("no samples");
        wave = std::make_shared<const std::vector<float>>(std::move(w.samples));
      } catch (const FileError& ex) {
        report_bad(item, ex.problem());
        return false;
      } catch (const Error& ex) {
        report_bad(item, ex.what());
        return false;
      }
    }
    const bool deterministic = deterministic_features(wave->size());
    if (!deterministic) {
      {
        std::lock_guard<std::mutex> lock(state_mu);
        random_long[size_t(item)] = 1;
      }
      cache->put_wave(item, wave);
    }

    NumpyRandom rng(uint32_t(data::derive_seed(opt.seed, e, item, 4)));
    LogMel mel;
    if (augment) {
      Waveform w;
      w.samples = *wave;
      w.sample_rate = opt.contract.sample_rate;
      chain.apply(w, data::derive_seed(opt.seed, e, item, 5));
      count(&LoaderStats::augmented);
      if (w.samples.empty()) w.samples = *wave;
      std::vector<const std::vector<float>*> one{&w.samples};
      mel = std::move(fx.extract_batch(one, &rng, 1).front());
    } else {
      std::vector<const std::vector<float>*> one{wave.get()};
      mel = std::move(fx.extract_batch(one, &rng, 1).front());
    }
    if (mel.data.size() != feature_floats)
      throw Error("feature extractor returned " + std::to_string(mel.data.size()) + " values, expected " +
                  std::to_string(feature_floats));
    auto feats = std::make_shared<const std::vector<float>>(std::move(mel.data));
    out.features = feats;
    out.is_longer = mel.is_longer;
    if (!augment && deterministic) {
      data::CachedFeatures cf{feats, mel.is_longer};
      cache->put_memory(item, cf);
      if (cache->has_disk()) {
        try {
          if (key.empty()) key = feature_key(item);
          cache->put_disk(key, cf);
        } catch (const Error&) {
        }
      }
      note_computed();
    }
    return true;
  }

  // The item at epoch position `pos`, or its substitute: the next usable item of the permutation.
  Prepared prepare_position(int64_t e, const std::vector<int64_t>& p, int64_t pos) {
    const int64_t n = int64_t(p.size());
    for (int64_t k = 0; k < n; ++k) {
      const int64_t item = p[size_t((pos + k) % n)];
      if (is_bad(item)) continue;
      Prepared out;
      if (prepare_item(item, e, out)) return out;
    }
    throw Error("training data: no usable item left (every audio file failed to decode)");
  }

  void worker() {
    while (true) {
      std::pair<int64_t, int> slot;
      int64_t e;
      int64_t pos;
      {
        std::unique_lock<std::mutex> lock(mu);
        cv_work.wait(lock, [&] {
          return stop || next_slot >= slots.size() ||
                 slots[next_slot].first <= consumer + std::max(0, opt.prefetch);
        });
        if (stop || next_slot >= slots.size()) return;
        slot = slots[next_slot++];
        e = epoch;
        pos = batch_positions[size_t(slot.first - first_batch)][size_t(slot.second)];
      }
      Prepared r;
      std::exception_ptr err;
      try {
        r = prepare_position(e, perm, pos);
      } catch (...) {
        err = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        if (err) {
          if (!error) error = err;  // the batch never completes; next() rethrows when it gets there
        } else {
          auto& b = pending[slot.first];
          b.slots[size_t(slot.second)] = std::move(r);
          ++b.done;
        }
      }
      cv_done.notify_all();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mu);
      stop = true;
    }
    cv_work.notify_all();
    for (auto& t : threads) t.join();
    threads.clear();
    stop = false;
  }
};

Loader::Loader(std::vector<TrainItem> items, LoaderOptions options)
    : impl_(std::make_unique<Impl>(std::move(items), std::move(options))) {
  Impl& m = *impl_;
  const LoaderOptions& o = m.opt;
  if (m.items.empty()) throw Error("training data: no items");
  if (o.batch_size < 1) throw Error("training data: batch_size must be >= 1");
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size)
    throw Error("training data: rank " + std::to_string(o.rank) + " is not in [0, world_size " +
                std::to_string(o.world_size) + ")");
  o.contract.validate();
  if (o.contract.truncation == Truncation::Windows)
    throw Error("training data: truncation 'windows' is an inference policy (use rand_trunc, fusion, first or middle)");
  for (const auto& t : m.items)
    if (t.captions.empty()) throw Error("training data: item " + t.id + " has no caption");
  if (!o.audio_augment.empty()) m.chain = AugmentChain::parse(o.audio_augment);
  m.contract_json = o.contract.to_json();
  m.feature_floats = size_t(o.contract.channels()) * o.contract.frames() * o.contract.n_mels;
  m.cache = std::make_unique<data::FeatureCache>(o.cache_dir, o.memory_cache_mb << 20, o.contract.channels(),
                                                  o.contract.frames(), o.contract.n_mels);
  m.bad.assign(m.items.size(), 0);
  m.random_long.assign(m.items.size(), 0);
}

Loader::~Loader() { impl_->stop_workers(); }

const std::vector<TrainItem>& Loader::items() const { return impl_->items; }
const LoaderOptions& Loader::options() const { return impl_->opt; }
int64_t Loader::batches_per_epoch() const { return impl_->batches_per_epoch(); }

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  Impl& m = *impl_;
  m.stop_workers();
  const int64_t nb = m.batches_per_epoch();
  if (first_batch < 0 || first_batch > nb)
    throw Error("training data: batch " + std::to_string(first_batch) + " is outside epoch of " +
                std::to_string(nb) + " batches");
  std::lock_guard<std::mutex> lock(m.mu);
  m.epoch = epoch;
  m.first_batch = m.consumer = first_batch;
  m.end_batch = nb;
  m.perm = m.permutation(epoch);
  m.batch_positions.clear();
  m.slots.clear();
  m.pending.clear();
  m.next_slot = 0;
  m.error = nullptr;
  const int64_t n = int64_t(m.items.size()), g = m.global_batch(), bs = m.opt.batch_size;
  for (int64_t b = first_batch; b < nb; ++b) {
    std::vector<int64_t> pos;
    for (int64_t j = 0; j < bs; ++j) {
      const int64_t p = b * g + int64_t(m.opt.rank) * bs + j;
      if (p < n) pos.push_back(p);
    }
    for (int j = 0; j < int(pos.size()); ++j) m.slots.emplace_back(b, j);
    m.pending[b].slots.resize(pos.size());
    m.batch_positions.push_back(std::move(pos));
  }
  m.started = true;
  for (int i = 0; i < m.opt.workers; ++i) m.threads.emplace_back([&m] { m.worker(); });
}

bool Loader::next(Batch& out) {
  Impl& m = *impl_;
  if (!m.started) start_epoch(0, 0);
  PendingBatch b;
  int64_t index;
  {
    std::unique_lock<std::mutex> lock(m.mu);
    if (m.consumer >= m.end_batch) return false;
    index = m.consumer;
    if (m.opt.workers <= 0) {
      const auto& pos = m.batch_positions[size_t(index - m.first_batch)];
      auto& pb = m.pending[index];
      lock.unlock();
      for (size_t j = 0; j < pos.size(); ++j) pb.slots[j] = m.prepare_position(m.epoch, m.perm, pos[j]);
      lock.lock();
      pb.done = pos.size();
    } else {
      auto& pb = m.pending[index];
      m.cv_done.wait(lock, [&] { return m.error || pb.done == pb.slots.size(); });
      if (pb.done != pb.slots.size()) std::rethrow_exception(m.error);
    }
    b = std::move(m.pending[index]);
    m.pending.erase(index);
    ++m.consumer;
  }
  m.cv_work.notify_all();

  const PreprocessContract& c = m.opt.contract;
  const int64_t n = int64_t(b.slots.size());
  out.epoch = m.epoch;
  out.index = index;
  out.features = torch::empty({n, c.channels(), c.frames(), c.n_mels}, torch::kFloat32);
  out.is_longer = torch::empty({n}, torch::kBool);
  out.captions.clear();
  out.items.clear();
  float* dst = out.features.data_ptr<float>();
  bool* lg = out.is_longer.data_ptr<bool>();
  for (int64_t i = 0; i < n; ++i) {
    const Prepared& p = b.slots[size_t(i)];
    std::memcpy(dst + size_t(i) * m.feature_floats, p.features->data(), m.feature_floats * sizeof(float));
    lg[i] = p.is_longer;
    out.captions.push_back(p.caption);
    out.items.push_back(p.item);
  }
  return true;
}

LoaderStats Loader::stats() const {
  std::lock_guard<std::mutex> lock(impl_->state_mu);
  return impl_->st;
}

}  // namespace synclap
