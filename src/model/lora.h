// synclap: LoRA adapters for the linear layers of a CLAP model.
//
// A target linear layer y = x W^T + b becomes y = x (W + s B A)^T + b with s = alpha / rank, A [rank, in]
// (random, seeded), B [out, rank] (zeros, so training starts from the base model). The base weights stay
// untouched in the module's parameter dictionary; apply() points each target Linear's `weight` member at
// the differentiable tensor W.detach() + s B A (every forward in synclap reads `lin->weight`), restore()
// points it back at the parameter, merge() folds s B A into W for good.
// Adapters are saved on their own (safetensors: "<module name>.lora_A" / ".lora_B", metadata with rank,
// alpha and targets) and can be loaded onto a freshly loaded base model.
// Internal header (LibTorch types).
#pragma once
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/clap_model.h"

namespace synclap {

struct LoraSpec {
  int64_t rank = 8;
  double alpha = 16.0;
  // Which Linear modules get adapters: each pattern is matched against the module's full name in the
  // model (e.g. "text_model.encoder.layer.0.attention.self.query"); '*' matches any run of characters,
  // a pattern without '*' matches when it is a substring. Empty = no adapters.
  // Shortcuts: "audio" / "text" = every attention projection of that tower.
  std::vector<std::string> targets;

  nlohmann::json to_json() const;
  static LoraSpec from_json(const nlohmann::json& j);  // throws Error on bad values
};

class LoraAdapters {
 public:
  LoraAdapters() = default;
  // Creates adapters for every matching Linear. Throws Error if no module matches a pattern.
  LoraAdapters(ClapModelImpl& model, const LoraSpec& spec, uint64_t seed);

  const LoraSpec& spec() const { return spec_; }
  std::vector<std::string> target_names() const;
  // A and B of every adapter (the trainable parameters), in a stable order.
  std::vector<torch::Tensor> parameters() const;
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const;  // "<module>.lora_A" ...
  int64_t num_parameters() const;
  double scale() const;  // alpha / rank
  // Moves A and B to `device` in place (same tensor objects, so an optimizer built on parameters() stays
  // valid). The model itself must be moved by its owner; apply() checks that both sides agree.
  void to(const torch::Device& device);

  void apply();    // before a forward pass (training or inference with un-merged adapters)
  void restore();  // the plain base weights again
  void merge();    // W += s B A (no grad), then restore(); the adapters are zeroed afterwards (B = 0)

  void save(const std::string& path, const std::map<std::string, std::string>& metadata = {}) const;  // atomic
  // The file's metadata "synclap_lora" holds {"rank","alpha","targets","modules"} as JSON; `metadata` adds
  // more string entries. Loads adapters saved by save() onto `model`: the targets are resolved again and
  // must give exactly the saved tensors (names and shapes); otherwise FileError naming the file.
  static LoraAdapters load(ClapModelImpl& model, const std::string& path);

 private:
  struct Adapter {
    std::string name;
    torch::nn::Linear linear{nullptr};
    torch::Tensor base;  // the registered parameter
    torch::Tensor A, B;
  };
  LoraSpec spec_;
  std::vector<Adapter> adapters_;
};

}  // namespace synclap
