#include "io/torch/tensor_io.h"

#include <cstring>

#include "synclap/error.h"

namespace synclap {

torch::ScalarType to_torch_dtype(DType d) {
  switch (d) {
    case DType::F64: return torch::kFloat64;
    case DType::F32: return torch::kFloat32;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::I64: return torch::kInt64;
    case DType::I32: return torch::kInt32;
    case DType::I16: return torch::kInt16;
    case DType::I8: return torch::kInt8;
    case DType::U8: return torch::kUInt8;
    case DType::BOOL: return torch::kBool;
  }
  throw Error("unknown safetensors dtype");
}

DType from_torch_dtype(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat64: return DType::F64;
    case torch::kFloat32: return DType::F32;
    case torch::kFloat16: return DType::F16;
    case torch::kBFloat16: return DType::BF16;
    case torch::kInt64: return DType::I64;
    case torch::kInt32: return DType::I32;
    case torch::kInt16: return DType::I16;
    case torch::kInt8: return DType::I8;
    case torch::kUInt8: return DType::U8;
    case torch::kBool: return DType::BOOL;
    default: break;
  }
  throw Error(std::string("torch dtype ") + c10::toString(t) + " cannot be stored in safetensors");
}

torch::Tensor read_tensor(const SafetensorsReader& reader, const std::string& name) {
  if (!reader.contains(name)) throw FileError(reader.path(), "no tensor named '" + name + "'");
  const TensorInfo& info = reader.info(name);
  torch::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(to_torch_dtype(info.dtype)));
  const size_t bytes = size_t(info.end - info.begin);
  if (bytes != size_t(t.numel()) * t.element_size())
    throw FileError(reader.path(), "tensor '" + name + "' has " + std::to_string(bytes) + " bytes for its shape");
  if (bytes) std::memcpy(t.data_ptr(), reader.raw(name), bytes);  // memcpy: the mapped data may be unaligned
  return t;
}

std::map<std::string, torch::Tensor> read_tensors(const std::string& path) {
  SafetensorsReader reader(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& name : reader.names()) out.emplace(name, read_tensor(reader, name));
  return out;
}

void add_tensor(SafetensorsWriter& writer, const std::string& name, const torch::Tensor& t) {
  const DType d = from_torch_dtype(t.scalar_type());
  torch::Tensor c = t.detach().to(torch::kCPU).contiguous();
  std::vector<int64_t> shape(c.sizes().begin(), c.sizes().end());
  writer.add(name, d, std::move(shape), c.data_ptr(), size_t(c.numel()) * c.element_size());
}

void write_tensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   const std::map<std::string, std::string>& metadata) {
  SafetensorsWriter writer;
  for (const auto& [k, v] : metadata) writer.set_metadata(k, v);
  for (const auto& [name, t] : tensors) add_tensor(writer, name, t);
  writer.write(path);
}

}  // namespace synclap
