// synclap: safetensors <-> torch::Tensor. The file side is synclap/safetensors.h (no LibTorch);
// this converts, keeping each tensor's dtype.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "synclap/safetensors.h"

namespace synclap {

// The torch dtype for a safetensors dtype and back (throws Error for a torch dtype safetensors lacks).
torch::ScalarType to_torch_dtype(DType d);
DType from_torch_dtype(torch::ScalarType t);

// A CPU copy of one tensor, in the file's dtype and shape (scalars have shape []).
// Throws FileError naming the file if the tensor is absent.
torch::Tensor read_tensor(const SafetensorsReader& reader, const std::string& name);
// Every tensor of a file, by name.
std::map<std::string, torch::Tensor> read_tensors(const std::string& path);

// Adds a tensor (any device/layout; it is copied to contiguous CPU memory) in its own dtype.
void add_tensor(SafetensorsWriter& writer, const std::string& name, const torch::Tensor& t);
// Writes tensors (and string metadata) to one file, atomically.
void write_tensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata = {});

}  // namespace synclap
