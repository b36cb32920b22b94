// synclap: what every text tower (RoBERTa, the small transformer) gives the CLAP model.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace synclap {

struct TextOutput {
  torch::Tensor last_hidden_state;           // [B, L, hidden]
  torch::Tensor pooler_output;               // [B, hidden]: the projection head's input
  std::vector<torch::Tensor> hidden_states;  // [0] = embeddings output, [i] = output of layer i (when asked)
};

// A text encoder registered in ClapModel under the name "text_model".
class TextTower : public torch::nn::Module {
 public:
  // input_ids, attention_mask: [B, L] integer (mask 1 = token, 0 = padding).
  virtual TextOutput encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                            bool output_hidden_states = false) = 0;
  virtual int64_t hidden_size() const = 0;
  // Re-initialises every weight from `seed` (for training from scratch).
  virtual void init_weights(uint64_t seed) = 0;
};

}  // namespace synclap
