// External programs: shell-quoted command templates, a runner with a timeout that kills the whole
// process group, text-to-music generators with retries, and caption paraphrasers.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "synclap/error.h"
#include "synclap/synth.h"
#include "synclap/util.h"

namespace synclap {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string fill_command(const std::string& templ, const std::map<std::string, std::string>& values) {
  std::string out;
  for (size_t i = 0; i < templ.size();) {
    if (templ[i] == '{') {
      const size_t close = templ.find('}', i);
      if (close != std::string::npos) {
        auto it = values.find(templ.substr(i + 1, close - i - 1));
        if (it != values.end()) {
          out += shell_quote(it->second);
          i = close + 1;
          continue;
        }
      }
    }
    out += templ[i++];
  }
  return out;
}

CommandResult run_command(const std::string& command, double timeout_s) {
  CommandResult r;
  const double t0 = now_seconds();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw Error(std::string("cannot create a pipe: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error(std::string("cannot start a process: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  ::close(fds[1]);
  std::string out;
  bool killed = false;
  for (;;) {
    const double left = timeout_s - (now_seconds() - t0);
    if (left <= 0 && !killed) {
      ::kill(-pid, SIGKILL);
      killed = true;
      r.timed_out = true;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ms = killed ? 1000 : int(std::min(left, 0.5) * 1000) + 1;
    const int n = ::poll(&p, 1, ms);
    if (n > 0) {
      char buf[4096];
      const ssize_t got = ::read(fds[0], buf, sizeof buf);
      if (got <= 0) break;  // EOF: every writer closed
      out.append(buf, size_t(got));
      if (out.size() > (128u << 10)) out.erase(0, out.size() - (64u << 10));
    } else if (n < 0 && errno != EINTR) {
      break;
    } else if (killed && n == 0) {
      break;  // a stray child kept the pipe open after the kill
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!killed) ::kill(-pid, SIGKILL);  // background children of the command, if any
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (out.size() > (64u << 10)) out.erase(0, out.size() - (64u << 10));
  r.output = std::move(out);
  r.seconds = now_seconds() - t0;
  return r;
}

Waveform ExternalGenerator::generate(const std::string& caption, double seconds, uint64_t seed,
                                     const std::string& scratch_dir) const {
  namespace fs = std::filesystem;
  fs::create_directories(scratch_dir);
  const std::string wav = (fs::path(scratch_dir) / ("gen-" + std::to_string(seed) + ".wav")).string();
  char secs[32];
  std::snprintf(secs, sizeof secs, "%g", seconds);
  const std::string cmd = fill_command(command_template, {{"caption", caption},
                                                          {"prompt", caption},
                                                          {"seconds", secs},
                                                          {"wav", wav},
                                                          {"out", wav},
                                                          {"seed", std::to_string(seed & 0x7fffffff)}});
  std::string last;
  for (int attempt = 0; attempt <= std::max(0, retries); ++attempt) {
    std::error_code ec;
    fs::remove(wav, ec);
    const CommandResult r = run_command(cmd, timeout_s);
    if (r.timed_out) {
      last = "timed out after " + std::to_string(int(timeout_s)) + " s";
    } else if (r.exit_code != 0) {
      std::string tail = r.output.size() > 300 ? r.output.substr(r.output.size() - 300) : r.output;
      std::replace(tail.begin(), tail.end(), '\n', ' ');
      last = "exit code " + std::to_string(r.exit_code) + (tail.empty() ? "" : ": " + tail);
    } else if (!fs::exists(wav)) {
      last = "the command did not write " + wav;
    } else {
      try {
        Waveform w = load_audio(wav, {});
        fs::remove(wav, ec);
        w.samples.resize(size_t(std::llround(seconds * w.sample_rate)), 0.0f);
        return w;
      } catch (const Error& e) {
        last = e.what();
      }
    }
  }
  std::error_code ec;
  fs::remove(wav, ec);
  throw Error("generator failed after " + std::to_string(std::max(0, retries) + 1) + " attempt(s): " + last);
}

std::vector<std::vector<std::string>> paraphrase_captions(const std::vector<std::string>& captions,
                                                          const std::string& command_template, double timeout_s,
                                                          int threads) {
  std::vector<std::vector<std::string>> out(captions.size());
  parallel_for(int64_t(captions.size()), [&](int64_t i) {
    const CommandResult r = run_command(fill_command(command_template, {{"caption", captions[size_t(i)]}}), timeout_s);
    if (r.timed_out || r.exit_code != 0) return;
    std::istringstream in(r.output);
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) out[size_t(i)].push_back(debias_gendered(line));
    }
  }, threads);
  return out;
}

}  // namespace synclap
