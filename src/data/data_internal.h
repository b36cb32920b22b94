// synclap: helpers shared by the training-data files (internal).
#pragma once
#include <cstdint>
#include <string>

#include "data/train_data.h"
#include "synclap/audio.h"

namespace synclap::data {

// splitmix64 step: a well-mixed 64-bit hash of x.
uint64_t mix64(uint64_t x);
// A seed for one purpose of one item of one epoch.
uint64_t derive_seed(uint64_t seed, int64_t epoch, int64_t item, uint64_t purpose);
// Uniform double in [0, 1) from a seed.
double unit_double(uint64_t seed);

// Decodes an item's audio (a plain file, or a member of an uncompressed tar shard).
Waveform read_item_audio(const TrainItem& item, const DecodeOptions& options);
// "size|mtime_ns" of the file holding the item's audio (the tar for members), plus the member's place;
// identifies the bytes for the feature cache. Throws FileError if the file cannot be stat'ed.
std::string item_file_identity(const TrainItem& item);
// The path of the file that holds the item's audio (the tar for members).
std::string item_file_path(const TrainItem& item);

}  // namespace synclap::data
