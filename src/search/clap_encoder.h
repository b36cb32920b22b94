// synclap search: a CLAP model as the encoder of a search index: audio files / uploaded bytes / text
// to unit vectors in the joint space, and an AudioEmbedder for index_library().
//
// Long files: for models without fusion, the features use Truncation::Windows (up to `windows`
// 10-second windows spread over the file, their embeddings averaged), so a whole track is described,
// not only its middle. Fused models keep their own contract.
// Model calls are serialised (a mutex), so one encoder can serve several HTTP clients.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "search/library_indexer.h"
#include "synclap/audio.h"
#include "synclap/model.h"
#include "search/query_tokenizer.h"

namespace synclap::search {

struct EncoderOptions {
  std::string tokenizer_dir;  // default: the model folder, or the folder the checkpoint file is in
  int windows = 4;            // windows per long file (non-fused models); 1 = the contract's own choice
  int threads = 0;
  std::string device = "cpu";
};

class ClapEncoder {
 public:
  explicit ClapEncoder(const std::string& model_path, const EncoderOptions& options = {});
  ~ClapEncoder();

  const std::string& model_path() const { return path_; }
  int dim() const;
  int sample_rate() const;
  const DecodeOptions& decode_options() const { return decode_; }

  std::vector<float> text(const std::string& query) const;
  std::vector<std::vector<float>> audio(const std::vector<Waveform>& waves) const;  // at sample_rate()
  std::vector<float> audio_file(const std::string& path) const;
  std::vector<float> audio_bytes(const void* data, size_t size, const std::string& name) const;
  AudioEmbedder embedder() const;

 private:
  std::string path_;
  EncoderOptions options_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<FeatureExtractor> fe_;
  DecodeOptions decode_;
  mutable std::unique_ptr<QueryTokenizer> tokenizer_;
  mutable std::mutex mutex_;
};

// Weighted sum of two unit vectors, renormalised: w * a + (1 - w) * b.
std::vector<float> blend(const std::vector<float>& a, const std::vector<float>& b, double w);

}  // namespace synclap::search
