// synclap::Model: the public inference API over ClapModel.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "model/model_internal.h"
#include "synclap/error.h"

namespace synclap {

torch::Tensor to_tensor(const Embeddings& e) {
  if (int64_t(e.data.size()) != e.rows * e.dim) throw Error("embeddings: data size does not match rows x dim");
  return torch::from_blob(const_cast<float*>(e.data.data()), {e.rows, e.dim}, torch::kFloat32).clone();
}

Embeddings to_embeddings(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  if (c.dim() != 2) throw Error("embeddings: expected a [rows, dim] tensor");
  Embeddings e;
  e.rows = c.size(0);
  e.dim = c.size(1);
  e.data.assign(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  return e;
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const std::string& path, const ModelOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.audio_batch < 1 || options.text_batch < 1) throw Error("model options: batch sizes must be >= 1");
  if (options.threads > 0) torch::set_num_threads(options.threads);
  try {
    impl->device = torch::Device(options.device);
  } catch (const std::exception& e) {
    throw Error("unknown device '" + options.device + "'");
  }
  if (impl->device.is_cuda() && !torch::cuda::is_available())
    throw Error("device '" + options.device + "' requested but CUDA is not available");
  impl->loaded = load_checkpoint(path);
  auto& m = impl->loaded.model;
  m->eval();
  m->to(impl->device);
  const ClapConfig& c = impl->loaded.config;
  ModelInfo& info = impl->info;
  info.path = path;
  info.format = to_string(impl->loaded.format);
  info.name = c.name;
  info.audio_tower = c.audio_model_type;
  info.text_tower = c.text.model_type;
  info.embedding_dim = c.projection_dim;
  info.num_parameters = m->num_parameters();
  info.fused = c.enable_fusion;
  info.max_text_tokens = c.text.max_tokens();
  info.vocab_size = c.text.vocab_size;
  info.pad_token_id = c.text.pad_token_id;
  info.bos_token_id = c.text.bos_token_id;
  info.eos_token_id = c.text.eos_token_id;
  info.logit_scale_audio = std::exp(m->logit_scale_a.item<double>());
  info.logit_scale_text = std::exp(m->logit_scale_t.item<double>());
  info.metadata = impl->loaded.report.metadata;
  return Model(std::move(impl));
}

const ModelInfo& Model::info() const { return impl_->info; }
const PreprocessContract& Model::contract() const { return impl_->loaded.contract; }

Embeddings Model::embed_audio_features(const float* features, int64_t batch, int64_t channels, int64_t frames,
                                       int64_t bins, const std::vector<uint8_t>& is_longer) const {
  if (batch < 0 || channels <= 0 || frames <= 0 || bins <= 0) throw Error("audio features: bad shape");
  const int64_t want_channels = impl_->loaded.contract.channels();
  if (channels != want_channels)
    throw Error("audio features have " + std::to_string(channels) + " channels, the model takes " +
                std::to_string(want_channels));
  if (bins != impl_->loaded.contract.n_mels)
    throw Error("audio features have " + std::to_string(bins) + " mel bins, the model takes " +
                std::to_string(impl_->loaded.contract.n_mels));
  if (!is_longer.empty() && int64_t(is_longer.size()) != batch)
    throw Error("audio features: " + std::to_string(is_longer.size()) + " is_longer flags for " +
                std::to_string(batch) + " items");
  const int64_t dim = impl_->info.embedding_dim;
  if (batch == 0) return Embeddings{0, dim, {}};
  c10::InferenceMode guard;
  auto& m = impl_->loaded.model;
  const size_t item = size_t(channels * frames * bins);
  std::vector<torch::Tensor> parts;
  for (int64_t b0 = 0; b0 < batch; b0 += impl_->options.audio_batch) {
    const int64_t n = std::min<int64_t>(impl_->options.audio_batch, batch - b0);
    auto x = torch::from_blob(const_cast<float*>(features) + size_t(b0) * item, {n, channels, frames, bins},
                              torch::kFloat32)
                 .to(impl_->device);
    auto longer = torch::zeros({n}, torch::kBool);
    if (!is_longer.empty())
      for (int64_t i = 0; i < n; ++i) longer[i] = bool(is_longer[size_t(b0 + i)]);
    parts.push_back(m->audio_embeddings(x, longer.to(impl_->device)).to(torch::kCPU));
  }
  return to_embeddings(torch::cat(parts, 0));
}

Embeddings Model::embed_audio(const std::vector<LogMel>& clips) const {
  const int64_t dim = impl_->info.embedding_dim;
  if (clips.empty()) return Embeddings{0, dim, {}};
  const LogMel& first = clips.front();
  int64_t total_windows = 0;
  for (size_t i = 0; i < clips.size(); ++i) {
    const LogMel& c = clips[i];
    if (c.channels != first.channels || c.frames != first.frames || c.bins != first.bins)
      throw Error("audio clip " + std::to_string(i) + ": features of a different shape than clip 0");
    if (c.windows < 1 || c.data.size() != size_t(c.windows) * c.window_size())
      throw Error("audio clip " + std::to_string(i) + ": feature data does not match its shape");
    total_windows += c.windows;
  }
  // All windows of all clips, in order.
  std::vector<float> feats;
  feats.reserve(size_t(total_windows) * first.window_size());
  std::vector<uint8_t> longer;
  for (const LogMel& c : clips) {
    feats.insert(feats.end(), c.data.begin(), c.data.end());
    for (int w = 0; w < c.windows; ++w) longer.push_back(c.is_longer ? 1 : 0);
  }
  Embeddings per_window =
      embed_audio_features(feats.data(), total_windows, first.channels, first.frames, first.bins, longer);
  if (total_windows == int64_t(clips.size())) return per_window;
  // Clips with several windows: normalised mean of the window embeddings.
  c10::InferenceMode guard;
  auto w = to_tensor(per_window);
  std::vector<torch::Tensor> rows;
  int64_t at = 0;
  for (const LogMel& c : clips) {
    rows.push_back(w.slice(0, at, at + c.windows).mean(0, /*keepdim=*/true));
    at += c.windows;
  }
  return to_embeddings(l2_normalize(torch::cat(rows, 0)));
}

Embeddings Model::embed_text(const std::vector<std::vector<int64_t>>& token_ids) const {
  const int64_t dim = impl_->info.embedding_dim;
  const int64_t n = int64_t(token_ids.size());
  if (n == 0) return Embeddings{0, dim, {}};
  const ModelInfo& info = impl_->info;
  for (int64_t i = 0; i < n; ++i) {
    const auto& ids = token_ids[size_t(i)];
    if (ids.empty()) throw Error("text " + std::to_string(i) + ": no tokens");
    if (int64_t(ids.size()) > info.max_text_tokens)
      throw Error("text " + std::to_string(i) + ": " + std::to_string(ids.size()) + " tokens, the model takes at most " +
                  std::to_string(info.max_text_tokens));
    for (int64_t t : ids)
      if (t < 0 || t >= info.vocab_size)
        throw Error("text " + std::to_string(i) + ": token id " + std::to_string(t) + " outside the vocabulary of " +
                    std::to_string(info.vocab_size));
  }
  // Longest first, so that each batch is padded only to its own longest text.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return token_ids[size_t(a)].size() > token_ids[size_t(b)].size();
  });
  c10::InferenceMode guard;
  auto& m = impl_->loaded.model;
  torch::Tensor out = torch::empty({n, dim}, torch::kFloat32);
  for (int64_t b0 = 0; b0 < n; b0 += impl_->options.text_batch) {
    const int64_t bn = std::min<int64_t>(impl_->options.text_batch, n - b0);
    const int64_t len = int64_t(token_ids[size_t(order[size_t(b0)])].size());
    auto ids = torch::full({bn, len}, info.pad_token_id, torch::kInt64);
    auto mask = torch::zeros({bn, len}, torch::kInt64);
    auto ids_a = ids.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    for (int64_t i = 0; i < bn; ++i) {
      const auto& seq = token_ids[size_t(order[size_t(b0 + i)])];
      for (size_t j = 0; j < seq.size(); ++j) {
        ids_a[i][int64_t(j)] = seq[j];
        mask_a[i][int64_t(j)] = 1;
      }
    }
    auto e = m->text_embeddings(ids.to(impl_->device), mask.to(impl_->device)).to(torch::kCPU);
    for (int64_t i = 0; i < bn; ++i) out[order[size_t(b0 + i)]] = e[i];
  }
  return to_embeddings(out);
}

namespace {
std::vector<float> scaled_products(const Embeddings& a, const Embeddings& b, double scale) {
  if (a.dim != b.dim) throw Error("embeddings of different widths (" + std::to_string(a.dim) + " vs " +
                                  std::to_string(b.dim) + ")");
  auto l = torch::matmul(to_tensor(a), to_tensor(b).t()) * scale;
  std::vector<float> out(size_t(l.numel()));
  if (!out.empty()) std::copy(l.data_ptr<float>(), l.data_ptr<float>() + l.numel(), out.begin());
  return out;
}
}  // namespace

std::vector<float> Model::logits_per_audio(const Embeddings& audio, const Embeddings& text) const {
  c10::InferenceMode guard;
  return scaled_products(audio, text, impl_->info.logit_scale_audio);
}

std::vector<float> Model::logits_per_text(const Embeddings& text, const Embeddings& audio) const {
  c10::InferenceMode guard;
  return scaled_products(text, audio, impl_->info.logit_scale_text);
}

}  // namespace synclap
