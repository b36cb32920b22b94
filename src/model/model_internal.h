// synclap: torch-level access to a synclap::Model (internal: LibTorch types).
#pragma once
#include <torch/torch.h>

#include "io/torch/checkpoint.h"
#include "model/clap_model.h"
#include "synclap/model.h"

namespace synclap {

struct Model::Impl {
  LoadedModel loaded;
  ModelInfo info;
  ModelOptions options;
  torch::Device device{torch::kCPU};
};

inline ClapModel& torch_model(const Model& m) { return m.impl().loaded.model; }
inline torch::Device model_device(const Model& m) { return m.impl().device; }

// Embeddings <-> [rows, dim] float tensors (CPU).
torch::Tensor to_tensor(const Embeddings& e);
Embeddings to_embeddings(const torch::Tensor& t);

}  // namespace synclap
