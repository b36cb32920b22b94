// safetensors: 8-byte little-endian header length N, N bytes of JSON
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data.
// Every number in the header is checked against the file before anything is read.
#include "synclap/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "synclap/error.h"
#include "synclap/util.h"

namespace synclap {

using ojson = nlohmann::ordered_json;

size_t dtype_size(DType d) {
  switch (d) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: case DType::I16: return 2;
    case DType::I8: case DType::U8: case DType::BOOL: return 1;
  }
  return 0;
}

std::string dtype_name(DType d) {
  switch (d) {
    case DType::F64: return "F64";
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I16: return "I16";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

DType dtype_from_name(const std::string& s) {
  static const std::pair<const char*, DType> table[] = {
      {"F64", DType::F64}, {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"I64", DType::I64},
      {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8},   {"U8", DType::U8},     {"BOOL", DType::BOOL}};
  for (const auto& [name, d] : table)
    if (s == name) return d;
  throw Error("unsupported safetensors dtype '" + s + "'");
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {
constexpr uint64_t kMaxHeader = uint64_t(100) << 20;  // the official library's limit

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal
      exp = 127 - 15 + 1;
      while (!(man & 0x400)) { man <<= 1; --exp; }
      man &= 0x3ff;
      bits = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp - 15 + 127) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <typename Out>
std::vector<Out> convert(const uint8_t* p, DType dt, int64_t n) {
  std::vector<Out> out(static_cast<size_t>(n));
  auto load = [&](auto tag, int64_t i) {
    using T = decltype(tag);
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    return v;
  };
  for (int64_t i = 0; i < n; ++i) {
    switch (dt) {
      case DType::F64: out[i] = Out(load(double{}, i)); break;
      case DType::F32: out[i] = Out(load(float{}, i)); break;
      case DType::F16: out[i] = Out(half_to_float(load(uint16_t{}, i))); break;
      case DType::BF16: {
        const uint32_t bits = uint32_t(load(uint16_t{}, i)) << 16;
        float f;
        std::memcpy(&f, &bits, 4);
        out[i] = Out(f);
        break;
      }
      case DType::I64: out[i] = Out(load(int64_t{}, i)); break;
      case DType::I32: out[i] = Out(load(int32_t{}, i)); break;
      case DType::I16: out[i] = Out(load(int16_t{}, i)); break;
      case DType::I8: out[i] = Out(load(int8_t{}, i)); break;
      case DType::U8: case DType::BOOL: out[i] = Out(load(uint8_t{}, i)); break;
    }
  }
  return out;
}
}  // namespace

SafetensorsReader::SafetensorsReader(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw FileError(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw FileError(path, "not a regular file");
  }
  size_ = size_t(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    throw FileError(path, "not a safetensors file (only " + std::to_string(size_) + " bytes)");
  }
  void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (m != MAP_FAILED) {
    base_ = static_cast<const uint8_t*>(m);
    mapped_ = true;
  } else {
    owned_.resize(size_);
    size_t got = 0;
    while (got < size_) {
      const ssize_t r = ::pread(fd, owned_.data() + got, size_ - got, off_t(got));
      if (r <= 0) break;
      got += size_t(r);
    }
    if (got != size_) {
      ::close(fd);
      throw FileError(path, "read failed");
    }
    base_ = owned_.data();
  }
  ::close(fd);

  try {
    uint64_t n = 0;
    for (int i = 0; i < 8; ++i) n |= uint64_t(base_[i]) << (8 * i);
    if (n > kMaxHeader) throw FileError(path, "safetensors header length " + std::to_string(n) + " is absurd");
    if (n > size_ - 8)
      throw FileError(path, "truncated: header of " + std::to_string(n) + " bytes but file has " +
                                std::to_string(size_) + " bytes");
    data_offset_ = 8 + size_t(n);
    const uint64_t data_size = size_ - data_offset_;
    ojson header;
    try {
      header = ojson::parse(reinterpret_cast<const char*>(base_ + 8), reinterpret_cast<const char*>(base_ + 8 + n));
    } catch (const std::exception& e) {
      throw FileError(path, std::string("malformed safetensors header JSON: ") + e.what());
    }
    if (!header.is_object()) throw FileError(path, "safetensors header is not a JSON object");
    std::vector<std::pair<uint64_t, uint64_t>> ranges;
    for (auto it = header.begin(); it != header.end(); ++it) {
      const std::string& name = it.key();
      const ojson& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) throw FileError(path, "__metadata__ is not an object");
        for (auto m2 = v.begin(); m2 != v.end(); ++m2) {
          if (!m2.value().is_string()) throw FileError(path, "__metadata__ value for '" + m2.key() + "' is not a string");
          metadata_[m2.key()] = m2.value().get<std::string>();
        }
        continue;
      }
      auto bad = [&](const std::string& what) { return FileError(path, "tensor '" + name + "': " + what); };
      if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
        throw bad("needs dtype, shape and data_offsets");
      if (!v["dtype"].is_string()) throw bad("dtype is not a string");
      TensorInfo info;
      info.name = name;
      try {
        info.dtype = dtype_from_name(v["dtype"].get<std::string>());
      } catch (const Error& e) {
        throw bad(e.what());
      }
      if (!v["shape"].is_array()) throw bad("shape is not an array");
      uint64_t numel = 1;
      for (const auto& d : v["shape"]) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0) throw bad("shape has a negative or non-integer entry");
        const uint64_t dim = d.get<uint64_t>();
        if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim) throw bad("shape overflows");
        numel *= dim;
        info.shape.push_back(int64_t(dim));
      }
      const auto& off = v["data_offsets"];
      if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
        throw bad("data_offsets must be two non-negative integers");
      info.begin = off[0].get<uint64_t>();
      info.end = off[1].get<uint64_t>();
      if (info.begin > info.end || info.end > data_size)
        throw bad("data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                  "] outside the data section of " + std::to_string(data_size) + " bytes (truncated file?)");
      const uint64_t es = dtype_size(info.dtype);
      if (numel > std::numeric_limits<uint64_t>::max() / es || numel * es != info.end - info.begin)
        throw bad("shape and dtype need " + std::to_string(numel * es) + " bytes but data_offsets give " +
                  std::to_string(info.end - info.begin));
      if (index_.count(name)) throw bad("appears twice");
      index_[name] = infos_.size();
      names_.push_back(name);
      infos_.push_back(std::move(info));
      if (infos_.back().end > infos_.back().begin) ranges.emplace_back(infos_.back().begin, infos_.back().end);
    }
    std::sort(ranges.begin(), ranges.end());
    for (size_t i = 1; i < ranges.size(); ++i)
      if (ranges[i].first < ranges[i - 1].second) throw FileError(path, "tensors overlap in the data section");
  } catch (...) {
    if (mapped_) ::munmap(const_cast<uint8_t*>(base_), size_);
    mapped_ = false;
    throw;
  }
}

SafetensorsReader::~SafetensorsReader() {
  if (mapped_) ::munmap(const_cast<uint8_t*>(base_), size_);
}

const TensorInfo& SafetensorsReader::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) throw FileError(path_, "no tensor named '" + name + "'");
  return infos_[it->second];
}

const uint8_t* SafetensorsReader::raw(const std::string& name) const {
  return base_ + data_offset_ + info(name).begin;
}

std::vector<float> SafetensorsReader::floats(const std::string& name) const {
  const TensorInfo& i = info(name);
  return convert<float>(raw(name), i.dtype, i.numel());
}

std::vector<double> SafetensorsReader::doubles(const std::string& name) const {
  const TensorInfo& i = info(name);
  return convert<double>(raw(name), i.dtype, i.numel());
}

std::vector<int64_t> SafetensorsReader::int64s(const std::string& name) const {
  const TensorInfo& i = info(name);
  return convert<int64_t>(raw(name), i.dtype, i.numel());
}

void SafetensorsWriter::add(const std::string& name, DType dtype, std::vector<int64_t> shape, const void* data,
                            size_t bytes) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Error("safetensors: negative dimension for '" + name + "'");
    n *= d;
  }
  if (size_t(n) * dtype_size(dtype) != bytes)
    throw Error("safetensors: '" + name + "' has " + std::to_string(bytes) + " bytes, shape needs " +
                std::to_string(size_t(n) * dtype_size(dtype)));
  if (name == "__metadata__" || name.empty()) throw Error("safetensors: invalid tensor name '" + name + "'");
  for (const auto& t : tensors_)
    if (t.name == name) throw Error("safetensors: tensor '" + name + "' added twice");
  Item it{name, dtype, std::move(shape), {}};
  it.bytes.assign(static_cast<const uint8_t*>(data), static_cast<const uint8_t*>(data) + bytes);
  tensors_.push_back(std::move(it));
}

void SafetensorsWriter::add_f32(const std::string& name, std::vector<int64_t> shape, const std::vector<float>& v) {
  add(name, DType::F32, std::move(shape), v.data(), v.size() * 4);
}
void SafetensorsWriter::add_f64(const std::string& name, std::vector<int64_t> shape, const std::vector<double>& v) {
  add(name, DType::F64, std::move(shape), v.data(), v.size() * 8);
}
void SafetensorsWriter::add_i64(const std::string& name, std::vector<int64_t> shape, const std::vector<int64_t>& v) {
  add(name, DType::I64, std::move(shape), v.data(), v.size() * 8);
}

void SafetensorsWriter::write(const std::string& path) const {
  // Larger elements first so every tensor stays naturally aligned.
  std::vector<const Item*> order;
  for (const auto& t : tensors_) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(),
                   [](const Item* a, const Item* b) { return dtype_size(a->dtype) > dtype_size(b->dtype); });
  ojson header = ojson::object();
  if (!metadata_.empty()) {
    ojson m = ojson::object();
    for (const auto& [k, v] : metadata_) m[k] = v;
    header["__metadata__"] = m;
  }
  uint64_t offset = 0;
  for (const Item* t : order) {
    header[t->name] = {{"dtype", dtype_name(t->dtype)},
                       {"shape", t->shape},
                       {"data_offsets", {offset, offset + t->bytes.size()}}};
    offset += t->bytes.size();
  }
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');
  std::string out;
  out.reserve(8 + h.size() + offset);
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(char((n >> (8 * i)) & 0xff));
  out += h;
  for (const Item* t : order) out.append(reinterpret_cast<const char*>(t->bytes.data()), t->bytes.size());
  write_file_atomic(path, out);
}

}  // namespace synclap
