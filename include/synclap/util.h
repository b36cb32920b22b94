// synclap: small utilities shared by the library and the tools.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace synclap {

// 64-bit FNV-1a of bytes: a fast, stable, non-cryptographic hash (cache checksums, shard numbers, caption keys,
// seed labels). The same input gives the same value on every machine and in every version.
inline uint64_t fnv1a64(const void* data, size_t n) {
  const auto* b = static_cast<const unsigned char*>(data);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ULL;
  return h;
}
inline uint64_t fnv1a64(const std::string& s) { return fnv1a64(s.data(), s.size()); }

// Writes a file atomically: the content goes to "PATH.tmp.<pid>" and is renamed over PATH,
// so a reader never sees half a file and an interrupted write loses nothing already there.
void write_file_atomic(const std::string& path, const std::string& bytes);
void write_file_atomic(const std::string& path, const std::function<void(const std::string& tmp_path)>& writer);
std::string read_file(const std::string& path, size_t max_bytes = size_t(1) << 32);

// Number of hardware threads to use (SYNCLAP_THREADS overrides; at least 1).
int default_threads();
// Runs fn(i) for i in [0, n) on up to `threads` threads (0 = default_threads()).
// The first exception thrown by fn is rethrown after all threads stop.
void parallel_for(int64_t n, const std::function<void(int64_t)>& fn, int threads = 0);

// Chooses OpenBLAS's kernels for this CPU. Debian's OpenBLAS reads OPENBLAS_CORETYPE only when it is
// loaded, and on some CPUs falls back to slow generic kernels; so, when the variable is not set,
// this detects the CPU family (cpuid), sets it, and re-executes the program once. Call first in main().
// SYNCLAP_NO_REEXEC=1 disables it. Returns the core type in force (or "" if left to OpenBLAS).
std::string ensure_blas_kernels(int argc, char** argv);
// The OpenBLAS core type synclap would choose for this CPU ("SkylakeX", "Haswell", "Zen", or "").
std::string detect_blas_coretype();

// A progress line on stderr: "label  123/456  27.1 items/s  ETA 0:12". Quiet when not a terminal
// unless forced; always prints a final line.
class Progress {
 public:
  Progress(std::string label, int64_t total, bool enabled = true);
  ~Progress();
  void add(int64_t n = 1);
  void set_note(const std::string& note);
  void finish();

 private:
  void draw(bool final);
  std::string label_, note_;
  int64_t total_, done_ = 0;
  double start_, last_draw_ = 0;
  bool enabled_, tty_, finished_ = false;
};

double now_seconds();
std::string format_duration(double seconds);
// Peak resident memory of this process in bytes (VmHWM).
int64_t peak_rss_bytes();
// Hex SHA-256 of a file's bytes (for provenance).
std::string sha256_file(const std::string& path);
std::string sha256_hex(const std::string& bytes);

}  // namespace synclap
