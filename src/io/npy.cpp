// NumPy .npy files: a magic string, a version, a Python-dict header, then raw C-order data.
#include "synclap/npy.h"

#include <cstring>
#include <regex>
#include <sstream>

#include "synclap/error.h"
#include "synclap/util.h"

namespace synclap {

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* data) {
  std::ostringstream dict;
  dict << "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dict << shape[i] << (shape.size() == 1 ? "," : (i + 1 < shape.size() ? ", " : ""));
    n *= shape[i];
  }
  dict << "), }";
  std::string h = dict.str();
  // magic(6) + version(2) + len(2) + header, padded with spaces and ending in \n to a multiple of 64
  size_t total = 10 + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(char(h.size() & 0xff));
  out.push_back(char((h.size() >> 8) & 0xff));
  out += h;
  out.append(reinterpret_cast<const char*>(data), size_t(n) * 4);
  write_file_atomic(path, out);
}

NpyArray read_npy(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw FileError(path, "not a .npy file");
  const int major = uint8_t(bytes[6]);
  size_t hlen, hoff;
  if (major == 1) {
    hlen = uint8_t(bytes[8]) | (size_t(uint8_t(bytes[9])) << 8);
    hoff = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw FileError(path, "truncated .npy header");
    hlen = 0;
    for (int i = 0; i < 4; ++i) hlen |= size_t(uint8_t(bytes[8 + i])) << (8 * i);
    hoff = 12;
  } else {
    throw FileError(path, "unsupported .npy version " + std::to_string(major));
  }
  if (hoff + hlen > bytes.size()) throw FileError(path, "truncated .npy header");
  const std::string h = bytes.substr(hoff, hlen);
  std::smatch m;
  if (!std::regex_search(h, m, std::regex("'descr'\\s*:\\s*'([<>|=]?)([a-z])(\\d+)'")))
    throw FileError(path, ".npy header has no descr");
  const std::string endian = m[1], kind = m[2];
  const int size = std::stoi(m[3]);
  if (endian == ">") throw FileError(path, "big-endian .npy is not supported");
  if (std::regex_search(h, std::regex("'fortran_order'\\s*:\\s*True")))
    throw FileError(path, "Fortran-order .npy is not supported");
  if (!std::regex_search(h, m, std::regex("'shape'\\s*:\\s*\\(([^)]*)\\)"))) throw FileError(path, ".npy header has no shape");
  NpyArray a;
  std::string dims = m[1];
  std::regex num("\\d+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator(); ++it)
    a.shape.push_back(std::stoll(it->str()));
  const int64_t n = a.numel();
  const size_t off = hoff + hlen;
  if (n < 0 || bytes.size() - off < size_t(n) * size_t(size))
    throw FileError(path, "truncated .npy data (" + std::to_string(bytes.size() - off) + " bytes for " +
                              std::to_string(n) + " elements)");
  a.data.resize(size_t(n));
  const char* p = bytes.data() + off;
  for (int64_t i = 0; i < n; ++i) {
    if (kind == "f" && size == 4) { float v; std::memcpy(&v, p + 4 * i, 4); a.data[i] = v; }
    else if (kind == "f" && size == 8) { double v; std::memcpy(&v, p + 8 * i, 8); a.data[i] = float(v); }
    else if (kind == "i" && size == 8) { int64_t v; std::memcpy(&v, p + 8 * i, 8); a.data[i] = float(v); }
    else if (kind == "i" && size == 4) { int32_t v; std::memcpy(&v, p + 4 * i, 4); a.data[i] = float(v); }
    else if (kind == "i" && size == 2) { int16_t v; std::memcpy(&v, p + 2 * i, 2); a.data[i] = float(v); }
    else throw FileError(path, "unsupported .npy dtype " + kind + std::to_string(size));
  }
  return a;
}

}  // namespace synclap
