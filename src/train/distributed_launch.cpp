// launch_local_workers: N local copies of a command line, one per rank (declared in train/distributed.h).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "synclap/error.h"
#include "train/distributed.h"

namespace synclap {

namespace {

constexpr int kMaxWorkers = 1024;
volatile sig_atomic_t g_nworkers = 0;
pid_t g_workers[kMaxWorkers];

void forward_signal(int sig) {
  for (int i = 0; i < g_nworkers; ++i)
    if (g_workers[i] > 0) kill(g_workers[i], sig);
}

void write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return;
    }
    p += w;
    n -= size_t(w);
  }
}

// Copies lines from each pipe to its destination fd, each prefixed "[rank I] ", until every pipe closes.
struct Pump {
  struct Src {
    int fd;
    int dest;
    std::string prefix;
    std::string pending;
  };
  std::vector<Src> srcs;

  void run() {
    std::vector<pollfd> fds;
    for (auto& s : srcs) fds.push_back({s.fd, POLLIN, 0});
    size_t open = srcs.size();
    char buf[65536];
    while (open > 0) {
      const int r = ::poll(fds.data(), fds.size(), -1);
      if (r < 0) {
        if (errno == EINTR) continue;
        break;
      }
      for (size_t i = 0; i < fds.size(); ++i) {
        if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        auto& s = srcs[i];
        if (n <= 0) {
          if (!s.pending.empty()) emit(s, s.pending + "\n");
          s.pending.clear();
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open;
          continue;
        }
        s.pending.append(buf, size_t(n));
        size_t start = 0, nl;
        while ((nl = s.pending.find('\n', start)) != std::string::npos) {
          emit(s, s.pending.substr(start, nl + 1 - start));
          start = nl + 1;
        }
        s.pending.erase(0, start);
      }
    }
  }

  static void emit(const Src& s, const std::string& line) {
    const std::string out = s.prefix + line;  // one write per line, so lines of different ranks do not mix
    write_all(s.dest, out.data(), out.size());
  }
};

}  // namespace

int launch_local_workers(const std::vector<std::string>& argv, int nproc, const std::string& store_path) {
  if (argv.empty()) throw Error("launch: empty command line");
  if (nproc < 1 || nproc > kMaxWorkers) throw Error("launch: bad number of processes " + std::to_string(nproc));
  if (store_path.empty()) throw Error("launch: empty rendezvous file path");
  // A store file left by an earlier run would confuse the rendezvous.
  std::error_code ec;
  std::filesystem::remove(store_path, ec);

  Pump pump;
  std::vector<pid_t> pids;
  struct sigaction sa {}, old_int{}, old_term{};
  sa.sa_handler = forward_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  g_nworkers = 0;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  std::fflush(stdout);
  std::fflush(stderr);

  std::string spawn_error;
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<std::string> args = argv;
    for (const char* a : {"--rank", "", "--world-size", "", "--dist-init", ""}) args.emplace_back(a);
    args[args.size() - 5] = std::to_string(rank);
    args[args.size() - 3] = std::to_string(nproc);
    args[args.size() - 1] = "file://" + store_path;
    std::vector<char*> cargs;
    for (auto& a : args) cargs.push_back(a.data());
    cargs.push_back(nullptr);

    int out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
    if (rank > 0 && (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)) {
      spawn_error = std::string("pipe: ") + std::strerror(errno);
      break;
    }
    const pid_t pid = ::fork();
    if (pid < 0) {
      spawn_error = std::string("fork: ") + std::strerror(errno);
      break;
    }
    if (pid == 0) {
      // Child: its own process group (a terminal's Ctrl-C reaches the launcher, which forwards it once),
      // terminated if the launcher dies, default signal handling, rank > 0 writing into the pipes.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      if (rank > 0) {
        ::dup2(out_pipe[1], STDOUT_FILENO);
        ::dup2(err_pipe[1], STDERR_FILENO);
      }
      if (argv[0].find('/') != std::string::npos)
        ::execv(cargs[0], cargs.data());
      else
        ::execvp(cargs[0], cargs.data());
      const std::string msg = "launch: cannot run " + argv[0] + ": " + std::strerror(errno) + "\n";
      write_all(STDERR_FILENO, msg.data(), msg.size());
      ::_exit(127);
    }
    pids.push_back(pid);
    g_workers[g_nworkers] = pid;
    g_nworkers = g_nworkers + 1;
    if (rank > 0) {
      ::close(out_pipe[1]);
      ::close(err_pipe[1]);
      const std::string prefix = "[rank " + std::to_string(rank) + "] ";
      pump.srcs.push_back({out_pipe[0], STDOUT_FILENO, prefix, {}});
      pump.srcs.push_back({err_pipe[0], STDERR_FILENO, prefix, {}});
    }
  }

  std::thread reader([&pump] { pump.run(); });

  // Wait for every worker; the first failure terminates the others (they would block in collectives).
  int first_failure = 0;
  if (!spawn_error.empty()) {
    first_failure = 1;
    forward_signal(SIGTERM);
  }
  // Polls our own children only (waitpid(-1) could reap someone else's in a multi-purpose process).
  std::vector<bool> done(pids.size(), false);
  size_t remaining = pids.size();
  while (remaining > 0) {
    bool progressed = false;
    for (size_t i = 0; i < pids.size(); ++i) {
      if (done[i]) continue;
      int status = 0;
      const pid_t r = ::waitpid(pids[i], &status, WNOHANG);
      if (r == 0 || (r < 0 && errno == EINTR)) continue;
      done[i] = true;
      g_workers[i] = -1;  // never signal a reaped (possibly reused) pid
      --remaining;
      progressed = true;
      int code = 1;
      if (r > 0 && WIFEXITED(status))
        code = WEXITSTATUS(status);
      else if (r > 0 && WIFSIGNALED(status))
        code = 128 + WTERMSIG(status);
      if (code != 0 && first_failure == 0) {
        first_failure = code;
        forward_signal(SIGTERM);
      }
    }
    if (!progressed && remaining > 0) ::usleep(20000);
  }
  reader.join();
  g_nworkers = 0;
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  std::filesystem::remove(store_path, ec);
  if (!spawn_error.empty()) throw Error("launch: cannot start the workers: " + spawn_error);
  return first_failure;
}

}  // namespace synclap
