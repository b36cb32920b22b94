// synclap: safetensors files, read (memory-mapped, bounds-checked) and written (atomically).
// Plain C++: no LibTorch here; src/io/torch converts to and from torch::Tensor.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace synclap {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };
size_t dtype_size(DType d);
std::string dtype_name(DType d);        // "F32", ...
DType dtype_from_name(const std::string& s);  // throws Error for unknown names

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets in the data section
  int64_t numel() const;
};

// A safetensors file opened for reading. Every offset, size and shape is checked when opening:
// a malformed file raises FileError naming the file and the problem, never a crash.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path);
  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Tensor names in file (header) order.
  const std::vector<std::string>& names() const { return names_; }
  bool contains(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  // Raw little-endian bytes of a tensor (valid while the reader lives).
  const uint8_t* raw(const std::string& name) const;

  // Converted copies (any float/int dtype -> the requested type).
  std::vector<float> floats(const std::string& name) const;
  std::vector<double> doubles(const std::string& name) const;
  std::vector<int64_t> int64s(const std::string& name) const;

 private:
  std::string path_;
  const uint8_t* base_ = nullptr;  // mapped file
  size_t size_ = 0;
  size_t data_offset_ = 0;
  std::vector<std::string> names_;
  std::map<std::string, size_t> index_;
  std::vector<TensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
  std::vector<uint8_t> owned_;  // fallback when mmap is unavailable
  bool mapped_ = false;
};

// Collects tensors and writes one safetensors file (temporary file + rename).
class SafetensorsWriter {
 public:
  void add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data, size_t bytes);
  void add_f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v);
  void add_f64(const std::string& name, std::vector<int64_t> shape, const std::vector<double>& v);
  void add_i64(const std::string& name, std::vector<int64_t> shape, const std::vector<int64_t>& v);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  void write(const std::string& path) const;
  size_t size() const { return tensors_.size(); }

 private:
  struct Item {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Item> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace synclap
