#include "test_support.h"

#include <fnmatch.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

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

// CTest runs every test in its own process, several at once; tests of one suite share a suite-level
// set-up that calls temp_dir with one name. So the directory carries the process id, and directories
// of the same name left by processes that have ended are removed (the latest run's stay for a look).
std::string temp_dir(const std::string& name) {
  const fs::path root = fs::path(SYNCLAP_TEST_BINARY_DIR) / "tmp";
  std::error_code ec;
  fs::create_directories(root, ec);
  const std::string prefix = name + ".";
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string base = e.path().filename().string();
    if (base.size() <= prefix.size() || base.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = base.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const pid_t pid = pid_t(std::stol(digits));
    if (pid == getpid() || (kill(pid, 0) != 0 && errno == ESRCH)) {
      std::error_code ec2;
      fs::remove_all(e.path(), ec2);
    }
  }
  fs::path p = root / (prefix + std::to_string(getpid()));
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

std::vector<std::map<std::string, std::string>> read_csv(const std::string& path) {
  auto fields = [](const std::string& line) {
    std::vector<std::string> out(1);
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (c == '\r') continue;
      if (c == '"' && quoted && i + 1 < line.size() && line[i + 1] == '"') {
        out.back().push_back('"');
        ++i;
      } else if (c == '"') {
        quoted = !quoted;
      } else if (c == ',' && !quoted) {
        out.emplace_back();
      } else {
        out.back().push_back(c);
      }
    }
    return out;
  };
  std::vector<std::map<std::string, std::string>> rows;
  std::ifstream in(path);
  std::vector<std::string> header;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line == "\r") continue;
    const auto f = fields(line);
    if (header.empty()) {
      header = f;
      continue;
    }
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < f.size(); ++i) row[header[i]] = f[i];
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace synclap::test
