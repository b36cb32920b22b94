// synclap: a small pre-LayerNorm transformer text tower for training from scratch on a CPU (stable
// without warm-up tricks): token + learned position embeddings, pre-LN blocks (fused qkv attention,
// GELU MLP), a final LayerNorm, and a masked mean (or first-token) pool. Configured by TextConfig with
// model_type "synclap_small_text" (vocab_size, hidden_size, num_hidden_layers, num_attention_heads,
// intermediate_size, max_position_embeddings, pad_token_id, pooling).
// Parameter names: embeddings.token.weight, embeddings.position.weight, layers.N.{norm1,attn.qkv,attn.proj,
// norm2,mlp.fc1,mlp.fc2}.*, final_norm.*
#pragma once
#include <torch/torch.h>

#include "model/clap_config.h"
#include "model/text_tower.h"

namespace synclap {

class SmallTextBlockImpl : public torch::nn::Module {
 public:
  explicit SmallTextBlockImpl(const TextConfig& c);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& additive_mask);

  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};

 private:
  int64_t heads_, head_dim_;
  std::string act_;
  double dropout_, attn_dropout_;
};
TORCH_MODULE(SmallTextBlock);

class SmallTextModel : public TextTower {
 public:
  explicit SmallTextModel(const TextConfig& c);

  TextOutput encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                    bool output_hidden_states = false) override;
  int64_t hidden_size() const override { return config_.hidden_size; }
  void init_weights(uint64_t seed) override;
  const TextConfig& config() const { return config_; }

  torch::nn::Embedding token{nullptr}, position{nullptr};
  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm final_norm{nullptr};

 private:
  TextConfig config_;
};

}  // namespace synclap
