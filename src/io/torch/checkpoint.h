// synclap: model checkpoints.
//  * HuggingFace ClapModel directories (config.json + model.safetensors, or a sharded
//    model.safetensors.index.json; preprocessor_config.json when present), loaded by HF's own key names.
//  * synclap's own directories: model.safetensors + model_config.json (ClapConfig, HF-shaped) +
//    preprocess.json (PreprocessContract), written atomically file by file.
//  * A single .safetensors file whose __metadata__ holds "config" (a ClapConfig JSON).
// Loading is strict: every parameter and buffer of the model must come from the file with its exact shape,
// except the buffers a model recomputes itself (text position_ids / token_type_ids, Swin
// relative_position_index, BatchNorm num_batches_tracked); anything missing, unexpected or mis-shaped is
// refused with a FileError that names the file and lists the offending tensors.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/clap_model.h"
#include "synclap/frontend.h"

namespace synclap {

// True for the buffers a checkpoint may omit.
bool is_recomputable_buffer(const std::string& name);

struct StateLoadReport {
  std::vector<std::string> loaded;             // names copied from the file(s)
  std::vector<std::string> missing_tolerated;  // recomputable buffers the file(s) did not have
  std::map<std::string, std::string> metadata;  // the first file's safetensors header metadata
};

// Copies tensors into `targets` (name -> model tensor) from the safetensors file(s), converting dtypes
// (e.g. F16/F64 -> the model's F32). `files`: every shard of one checkpoint. Throws FileError naming the
// (first) file with the lists of missing, unexpected and mis-shaped tensors.
StateLoadReport load_state(const std::vector<std::pair<std::string, torch::Tensor>>& targets,
                           const std::vector<std::string>& files);

enum class CheckpointFormat { HuggingFace, Synclap, SingleFile };
std::string to_string(CheckpointFormat f);

struct LoadedModel {
  ClapModel model{nullptr};
  ClapConfig config;
  PreprocessContract contract;
  CheckpointFormat format = CheckpointFormat::Synclap;
  std::string path;
  StateLoadReport report;
};

// The format at `path` (a directory or a .safetensors file); throws FileError if it is neither.
CheckpointFormat detect_checkpoint_format(const std::string& path);

// Builds the model its config describes and loads the weights (eval mode, CPU).
LoadedModel load_checkpoint(const std::string& path);

// The preprocessing contract for an HF model: synclap's deterministic inference policy for the model's
// fusion setting (PreprocessContract::clap_fused / clap_unfused), with the mel settings of
// preprocessor_config.json (if given: its JSON text).
PreprocessContract hf_inference_contract(const ClapConfig& config, const std::string& preprocessor_json = "");

// Writes a synclap checkpoint directory (created if needed). `metadata` is stored in the safetensors header.
void save_checkpoint(const ClapModelImpl& model, const PreprocessContract& contract, const std::string& dir,
                     const std::map<std::string, std::string>& metadata = {});

}  // namespace synclap
