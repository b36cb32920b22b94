// Progress lines on stderr: items, rate and time left.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>

#include "synclap/util.h"

namespace synclap {

double now_seconds() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const long t = long(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

int64_t peak_rss_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

Progress::Progress(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), start_(now_seconds()), last_draw_(start_), enabled_(enabled),
      tty_(::isatty(2) != 0) {}

Progress::~Progress() {
  if (!finished_) finish();
}

void Progress::add(int64_t n) {
  done_ += n;
  const double t = now_seconds();
  // Redraw at most 10 times a second on a terminal, every 10 s otherwise (logs stay short).
  if (t - last_draw_ >= (tty_ ? 0.1 : 10.0)) {
    last_draw_ = t;
    draw(false);
  }
}

void Progress::set_note(const std::string& note) { note_ = note; }

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  if (!enabled_) return;
  const double el = now_seconds() - start_;
  const double rate = el > 0 ? done_ / el : 0.0;
  char buf[256];
  if (total_ > 0) {
    const double left = rate > 0 ? (total_ - done_) / rate : NAN;
    std::snprintf(buf, sizeof buf, "%s %lld/%lld (%3.0f%%) %.1f/s elapsed %s left %s", label_.c_str(),
                  (long long)done_, (long long)total_, 100.0 * done_ / total_, rate, format_duration(el).c_str(),
                  final ? "0:00" : format_duration(left).c_str());
  } else {
    std::snprintf(buf, sizeof buf, "%s %lld %.1f/s elapsed %s", label_.c_str(), (long long)done_, rate,
                  format_duration(el).c_str());
  }
  std::string line = buf;
  if (!note_.empty()) line += "  " + note_;
  if (tty_)
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final ? "\n" : "");
  else if (final || done_ > 0)
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace synclap
