#include "test_support.h"

#include <fnmatch.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

namespace fs = std::filesystem;

namespace synclap::test {

static std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return (v && *v) ? std::string(v) : fallback;
}

std::string golden_dir() { return env_or("SYNCLAP_GOLDEN_DIR", std::string(SYNCLAP_DEFAULT_SHARED_DIR) + "/golden"); }

std::string realaudio_dir() {
  return env_or("SYNCLAP_REALAUDIO_DIR", std::string(SYNCLAP_DEFAULT_SHARED_DIR) + "/realaudio");
}

std::string temp_dir(const std::string& name) {
  fs::path p = fs::path(SYNCLAP_TEST_BINARY_DIR) / "tmp" / name;
  std::error_code ec;
  fs::remove_all(p, ec);
  fs::create_directories(p);
  return p.string();
}

std::vector<std::string> glob_files(const std::string& dir, const std::string& pattern) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string name = e.path().filename().string();
    if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool file_exists(const std::string& path) { return fs::exists(path); }

}  // namespace synclap::test
