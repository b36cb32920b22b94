#include "model/roberta.h"

#include <cmath>
#include <limits>

#include "model/projection.h"
#include "synclap/error.h"

namespace synclap {

namespace {

// A plain container module, so that the module tree has HF's intermediate names.
std::shared_ptr<torch::nn::Module> container(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>());
}

torch::nn::LayerNorm layer_norm(int64_t n, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({n}).eps(eps));
}

}  // namespace

torch::Tensor roberta_position_ids(const torch::Tensor& input_ids, int64_t pad_id) {
  auto mask = input_ids.ne(pad_id).to(torch::kInt64);
  return torch::cumsum(mask, 1) * mask + pad_id;
}

torch::Tensor additive_attention_mask(const torch::Tensor& attention_mask, torch::ScalarType dtype) {
  auto m = attention_mask.to(dtype);
  const double lowest = dtype == torch::kFloat64 ? std::numeric_limits<double>::lowest()
                        : dtype == torch::kFloat16 ? -65504.0
                        : dtype == torch::kBFloat16 ? -3.3895313892515355e38
                                                    : double(std::numeric_limits<float>::lowest());
  return ((1.0 - m) * lowest).unsqueeze(1).unsqueeze(2);
}

RobertaLayerImpl::RobertaLayerImpl(const TextConfig& c)
    : heads_(c.num_attention_heads),
      head_dim_(c.hidden_size / c.num_attention_heads),
      act_(c.hidden_act),
      hidden_dropout_(c.hidden_dropout_prob),
      attn_dropout_(c.attention_probs_dropout_prob) {
  const int64_t h = c.hidden_size;
  auto attention = container(*this, "attention");
  auto self = container(*attention, "self");
  query = self->register_module("query", torch::nn::Linear(h, h));
  key = self->register_module("key", torch::nn::Linear(h, h));
  value = self->register_module("value", torch::nn::Linear(h, h));
  auto self_out = container(*attention, "output");
  attn_out = self_out->register_module("dense", torch::nn::Linear(h, h));
  attn_norm = self_out->register_module("LayerNorm", layer_norm(h, c.layer_norm_eps));
  auto inter = container(*this, "intermediate");
  intermediate = inter->register_module("dense", torch::nn::Linear(h, c.intermediate_size));
  auto out = container(*this, "output");
  output = out->register_module("dense", torch::nn::Linear(c.intermediate_size, h));
  output_norm = out->register_module("LayerNorm", layer_norm(h, c.layer_norm_eps));
}

torch::Tensor RobertaLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
  // The dense layers run on [B*L, H] rows (one GEMM each, bias fused); heads are made contiguous once
  // so the batched score and context products need no hidden copies.
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2);
  const auto x2 = x.reshape({B * L, H});
  auto heads = [&](const torch::Tensor& t) { return t.view({B, L, heads_, head_dim_}).transpose(1, 2).contiguous(); };
  auto q = heads(query->forward(x2));
  auto k = heads(key->forward(x2));
  auto v = heads(value->forward(x2));
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(head_dim_));
  if (additive_mask.defined()) scores = scores + additive_mask;
  auto probs = torch::softmax(scores, -1);
  probs = torch::dropout(probs, attn_dropout_, is_training());
  auto ctx = torch::matmul(probs, v).transpose(1, 2).reshape({B * L, heads_ * head_dim_});
  auto a = attn_norm->forward(torch::dropout(attn_out->forward(ctx), hidden_dropout_, is_training()) + x2);
  auto f = hf_activation(act_, intermediate->forward(a));
  auto o = output_norm->forward(torch::dropout(output->forward(f), hidden_dropout_, is_training()) + a);
  return o.view({B, L, H});
}

RobertaTextModel::RobertaTextModel(const TextConfig& c) : config_(c) {
  if (!c.is_roberta()) throw Error("RobertaTextModel: text_config.model_type is '" + c.model_type + "'");
  const int64_t h = c.hidden_size;
  auto emb = container(*this, "embeddings");
  word_embeddings = emb->register_module(
      "word_embeddings", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, h).padding_idx(c.pad_token_id)));
  position_embeddings = emb->register_module(
      "position_embeddings",
      torch::nn::Embedding(torch::nn::EmbeddingOptions(c.max_position_embeddings, h).padding_idx(c.pad_token_id)));
  token_type_embeddings =
      emb->register_module("token_type_embeddings", torch::nn::Embedding(c.type_vocab_size, h));
  embeddings_norm = emb->register_module("LayerNorm", layer_norm(h, c.layer_norm_eps));
  position_ids_buffer =
      emb->register_buffer("position_ids", torch::arange(c.max_position_embeddings, torch::kInt64).unsqueeze(0));
  token_type_ids_buffer =
      emb->register_buffer("token_type_ids", torch::zeros({1, c.max_position_embeddings}, torch::kInt64));

  auto encoder = container(*this, "encoder");
  layers = encoder->register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(RobertaLayer(c));
  auto pool = container(*this, "pooler");
  pooler = pool->register_module("dense", torch::nn::Linear(h, h));
}

torch::Tensor RobertaTextModel::embed(const torch::Tensor& input_ids) {
  const int64_t L = input_ids.size(1);
  if (L > config_.max_tokens())
    throw Error("text: " + std::to_string(L) + " tokens, the model takes at most " +
                std::to_string(config_.max_tokens()));
  auto pos = roberta_position_ids(input_ids, config_.pad_token_id);
  auto types = token_type_ids_buffer.index({torch::indexing::Slice(), torch::indexing::Slice(0, L)})
                   .expand({input_ids.size(0), L});
  auto e = word_embeddings->forward(input_ids) + token_type_embeddings->forward(types);
  e = e + position_embeddings->forward(pos);
  e = embeddings_norm->forward(e);
  return torch::dropout(e, config_.hidden_dropout_prob, is_training());
}

TextOutput RobertaTextModel::encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                    bool output_hidden_states) {
  if (input_ids.dim() != 2) throw Error("text: input_ids must be [batch, length]");
  TextOutput out;
  auto h = embed(input_ids);
  torch::Tensor mask;
  if (attention_mask.defined()) {
    if (attention_mask.sizes() != input_ids.sizes()) throw Error("text: attention_mask shape differs from input_ids");
    mask = additive_attention_mask(attention_mask, h.scalar_type());
  }
  if (output_hidden_states) out.hidden_states.push_back(h);
  for (const auto& m : *layers) {
    h = m->as<RobertaLayerImpl>()->forward(h, mask);
    if (output_hidden_states) out.hidden_states.push_back(h);
  }
  out.last_hidden_state = h;
  out.pooler_output = torch::tanh(pooler->forward(h.select(1, 0)));
  return out;
}

void RobertaTextModel::init_weights(uint64_t seed) {
  // HF BERT-style initialisation: normal(0, 0.02) for linear and embedding weights, zero biases,
  // LayerNorm 1/0; the padding rows of the embeddings stay zero.
  torch::NoGradGuard no_grad;
  auto gen = make_generator(seed);
  for (auto& p : named_parameters(true)) {
    const std::string& n = p.key();
    auto& t = p.value();
    if (n.find("LayerNorm") != std::string::npos) {
      if (n.size() >= 6 && n.compare(n.size() - 6, 6, "weight") == 0) t.fill_(1.0);
      else t.zero_();
    } else if (n.size() >= 4 && n.compare(n.size() - 4, 4, "bias") == 0) {
      t.zero_();
    } else {
      t.normal_(0.0, 0.02, gen);
    }
  }
  word_embeddings->weight[config_.pad_token_id].zero_();
  position_embeddings->weight[config_.pad_token_id].zero_();
}

}  // namespace synclap
