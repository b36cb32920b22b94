#include "model/clap_model.h"

#include <cmath>

#include "model/cnn_tower.h"
#include "model/htsat_tower.h"
#include "model/roberta.h"
#include "model/small_text.h"
#include "synclap/error.h"

namespace synclap {

std::shared_ptr<TextTower> make_text_tower(const TextConfig& config) {
  if (config.is_roberta()) return std::make_shared<RobertaTextModel>(config);
  if (config.is_small()) return std::make_shared<SmallTextModel>(config);
  throw Error("model config: unknown text_config.model_type '" + config.model_type + "'");
}

std::shared_ptr<AudioTower> make_audio_tower(const ClapConfig& config) {
  if (config.audio_model_type == "clap_audio_model" || config.audio_model_type == "htsat")
    return std::make_shared<HtsatAudioTower>(config);
  if (config.audio_model_type == "cnn_audio") return std::make_shared<CnnAudioTower>(config);
  throw Error("model config: unknown audio_config.model_type '" + config.audio_model_type + "'");
}

torch::Tensor l2_normalize(const torch::Tensor& x) {
  return torch::nn::functional::normalize(x, torch::nn::functional::NormalizeFuncOptions().p(2.0).dim(-1));
}

ClapModelImpl::ClapModelImpl(const ClapConfig& config) : config_(config) {
  config_.validate();
  const double scale = std::log(config_.logit_scale_init_value);
  logit_scale_a = register_parameter("logit_scale_a", torch::full({}, scale, torch::kFloat32));
  logit_scale_t = register_parameter("logit_scale_t", torch::full({}, scale, torch::kFloat32));
  text_model = register_module("text_model", make_text_tower(config_.text));
  text_projection = register_module(
      "text_projection",
      ProjectionHead(text_model->hidden_size(), config_.projection_dim, config_.projection_hidden_act));
  audio_model = register_module("audio_model", make_audio_tower(config_));
  config_.audio_hidden_size = audio_model->hidden_size();  // the tower's own setting is authoritative
  audio_projection = register_module(
      "audio_projection",
      ProjectionHead(audio_model->hidden_size(), config_.projection_dim, config_.projection_hidden_act));
}

torch::Tensor ClapModelImpl::audio_embeddings(const torch::Tensor& input_features, const torch::Tensor& is_longer) {
  torch::Tensor longer = is_longer.defined() ? is_longer.reshape({-1}).to(torch::kBool) : is_longer;
  if (longer.defined() && longer.size(0) != input_features.size(0))
    throw Error("audio: is_longer has " + std::to_string(longer.size(0)) + " entries for a batch of " +
                std::to_string(input_features.size(0)));
  return l2_normalize(audio_projection->forward(audio_model->encode(input_features, longer).pooler_output));
}

torch::Tensor ClapModelImpl::text_embeddings(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  return l2_normalize(text_projection->forward(text_model->encode(input_ids, attention_mask).pooler_output));
}

torch::Tensor ClapModelImpl::logits_per_audio(const torch::Tensor& audio_embeds, const torch::Tensor& text_embeds) const {
  return torch::matmul(audio_embeds, text_embeds.t()) * logit_scale_a.exp();
}

torch::Tensor ClapModelImpl::logits_per_text(const torch::Tensor& text_embeds, const torch::Tensor& audio_embeds) const {
  return torch::matmul(text_embeds, audio_embeds.t()) * logit_scale_t.exp();
}

ClapOutput ClapModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                  const torch::Tensor& input_features, const torch::Tensor& is_longer) {
  ClapOutput o;
  torch::Tensor longer = is_longer.defined() ? is_longer.reshape({-1}).to(torch::kBool) : is_longer;
  o.audio_pooler = audio_model->encode(input_features, longer).pooler_output;
  o.text_pooler = text_model->encode(input_ids, attention_mask).pooler_output;
  o.audio_projected = audio_projection->forward(o.audio_pooler);
  o.text_projected = text_projection->forward(o.text_pooler);
  o.audio_embeds = l2_normalize(o.audio_projected);
  o.text_embeds = l2_normalize(o.text_projected);
  o.logits_per_audio = logits_per_audio(o.audio_embeds, o.text_embeds);
  o.logits_per_text = logits_per_text(o.text_embeds, o.audio_embeds);
  return o;
}

std::vector<std::pair<std::string, torch::Tensor>> ClapModelImpl::state_tensors() const {
  // HF's state_dict visits each module's own parameters, then its buffers, then its children.
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::function<void(const torch::nn::Module&, const std::string&)> visit = [&](const torch::nn::Module& m,
                                                                                 const std::string& prefix) {
    for (const auto& p : m.named_parameters(false)) out.emplace_back(prefix + p.key(), p.value());
    for (const auto& b : m.named_buffers(false)) out.emplace_back(prefix + b.key(), b.value());
    for (const auto& c : m.named_children()) visit(*c.value(), prefix + c.key() + ".");
  };
  visit(*this, "");
  return out;
}

int64_t ClapModelImpl::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : parameters(true)) n += p.numel();
  return n;
}

void ClapModelImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  const double scale = std::log(config_.logit_scale_init_value);
  logit_scale_a.fill_(scale);
  logit_scale_t.fill_(scale);
  text_model->init_weights(seed * 4 + 1);
  text_projection->init_weights(seed * 4 + 2);
  audio_model->init_weights(seed * 4 + 3);
  audio_projection->init_weights(seed * 4 + 4);
}

}  // namespace synclap
