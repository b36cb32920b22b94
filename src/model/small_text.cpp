#include "model/small_text.h"

#include <cmath>

#include "model/projection.h"
#include "model/roberta.h"
#include "synclap/error.h"

namespace synclap {

namespace {
torch::nn::LayerNorm layer_norm(int64_t n, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({n}).eps(eps));
}
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

SmallTextBlockImpl::SmallTextBlockImpl(const TextConfig& c)
    : heads_(c.num_attention_heads),
      head_dim_(c.hidden_size / c.num_attention_heads),
      act_(c.hidden_act),
      dropout_(c.hidden_dropout_prob),
      attn_dropout_(c.attention_probs_dropout_prob) {
  const int64_t h = c.hidden_size;
  norm1 = register_module("norm1", layer_norm(h, c.layer_norm_eps));
  auto attn = register_module("attn", std::make_shared<torch::nn::Module>());
  qkv = attn->register_module("qkv", torch::nn::Linear(h, 3 * h));
  proj = attn->register_module("proj", torch::nn::Linear(h, h));
  norm2 = register_module("norm2", layer_norm(h, c.layer_norm_eps));
  auto mlp = register_module("mlp", std::make_shared<torch::nn::Module>());
  fc1 = mlp->register_module("fc1", torch::nn::Linear(h, c.intermediate_size));
  fc2 = mlp->register_module("fc2", torch::nn::Linear(c.intermediate_size, h));
}

torch::Tensor SmallTextBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& additive_mask) {
  const int64_t B = x.size(0), L = x.size(1), H = x.size(2);
  const auto x2 = x.reshape({B * L, H});
  auto parts =
      qkv->forward(norm1->forward(x2)).view({B, L, 3, heads_, head_dim_}).permute({2, 0, 3, 1, 4}).contiguous();
  auto q = parts[0], k = parts[1], v = parts[2];
  auto scores = torch::matmul(q, k.transpose(-1, -2)) / std::sqrt(double(head_dim_));
  if (additive_mask.defined()) scores = scores + additive_mask;
  auto probs = torch::dropout(torch::softmax(scores, -1), attn_dropout_, is_training());
  auto ctx = torch::matmul(probs, v).transpose(1, 2).reshape({B * L, heads_ * head_dim_});
  auto h = x2 + torch::dropout(proj->forward(ctx), dropout_, is_training());
  auto f = fc2->forward(hf_activation(act_, fc1->forward(norm2->forward(h))));
  return (h + torch::dropout(f, dropout_, is_training())).view({B, L, H});
}

SmallTextModel::SmallTextModel(const TextConfig& c) : config_(c) {
  if (!c.is_small()) throw Error("SmallTextModel: text_config.model_type is '" + c.model_type + "'");
  const int64_t h = c.hidden_size;
  auto emb = register_module("embeddings", std::make_shared<torch::nn::Module>());
  token = emb->register_module(
      "token", torch::nn::Embedding(torch::nn::EmbeddingOptions(c.vocab_size, h).padding_idx(c.pad_token_id)));
  position = emb->register_module("position", torch::nn::Embedding(c.max_position_embeddings, h));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers->push_back(SmallTextBlock(c));
  final_norm = register_module("final_norm", layer_norm(h, c.layer_norm_eps));
  init_weights(0);
}

TextOutput SmallTextModel::encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                  bool output_hidden_states) {
  if (input_ids.dim() != 2) throw Error("text: input_ids must be [batch, length]");
  const int64_t B = input_ids.size(0), L = input_ids.size(1);
  if (L > config_.max_position_embeddings)
    throw Error("text: " + std::to_string(L) + " tokens, the model takes at most " +
                std::to_string(config_.max_position_embeddings));
  torch::Tensor mask = attention_mask.defined() ? attention_mask : input_ids.ne(config_.pad_token_id);
  if (mask.sizes() != input_ids.sizes()) throw Error("text: attention_mask shape differs from input_ids");
  auto pos = torch::arange(L, input_ids.options().dtype(torch::kInt64)).unsqueeze(0).expand({B, L});
  auto h = token->forward(input_ids) + position->forward(pos);
  h = torch::dropout(h, config_.hidden_dropout_prob, is_training());
  auto additive = additive_attention_mask(mask, h.scalar_type());
  TextOutput out;
  if (output_hidden_states) out.hidden_states.push_back(h);
  for (const auto& m : *layers) {
    h = m->as<SmallTextBlockImpl>()->forward(h, additive);
    if (output_hidden_states) out.hidden_states.push_back(h);
  }
  h = final_norm->forward(h);
  out.last_hidden_state = h;
  if (config_.pooling == "first") {
    out.pooler_output = h.select(1, 0);
  } else {
    auto w = mask.to(h.scalar_type()).unsqueeze(-1);  // [B, L, 1]
    out.pooler_output = (h * w).sum(1) / w.sum(1).clamp_min(1.0);
  }
  return out;
}

void SmallTextModel::init_weights(uint64_t seed) {
  // normal(0, 0.02); residual output projections scaled by 1/sqrt(2 * layers) (GPT-2), zero biases,
  // LayerNorm 1/0, padding row zero.
  torch::NoGradGuard no_grad;
  auto gen = make_generator(seed);
  const double resid_std = 0.02 / std::sqrt(2.0 * std::max<int64_t>(1, config_.num_hidden_layers));
  for (auto& p : named_parameters(true)) {
    const std::string& n = p.key();
    auto& t = p.value();
    if (n.find("norm") != std::string::npos) {
      if (ends_with(n, "weight")) t.fill_(1.0);
      else t.zero_();
    } else if (ends_with(n, "bias")) {
      t.zero_();
    } else if (ends_with(n, "attn.proj.weight") || ends_with(n, "mlp.fc2.weight")) {
      t.normal_(0.0, resid_std, gen);
    } else {
      t.normal_(0.0, 0.02, gen);
    }
  }
  token->weight[config_.pad_token_id].zero_();
}

}  // namespace synclap
