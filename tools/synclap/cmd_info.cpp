// synclap info FILE... [--check]: format, encoding, sample rate, channels, length and duration of audio
// files, read from their headers (--check also decodes every sample, which finds truncated or corrupt
// audio that a header alone does not show). A table on the terminal, a JSON array with --json. A file
// that cannot be read is reported on stderr, named; the others are still listed; the exit code is 1 if
// any file failed.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "synclap/audio.h"
#include "synclap/error.h"

namespace synclap::cli {
namespace {

struct InfoArgs {
  std::vector<std::string> files;
  bool check = false;
};

struct Row {
  AudioInfo info;
  double peak = -1;  // with --check: largest |sample| after down-mixing
};

std::string duration_text(double s) {
  if (s < 0) return "?";
  char buf[64];
  const long long whole = (long long)std::floor(s);
  if (s >= 60)
    std::snprintf(buf, sizeof buf, "%.3f s (%lld:%02lld)", s, whole / 60, whole % 60);
  else
    std::snprintf(buf, sizeof buf, "%.3f s", s);
  return buf;
}

void print_table(const std::vector<Row>& rows, bool check) {
  std::vector<std::string> head = {"file", "format", "subtype", "rate", "ch", "frames", "duration"};
  if (check) head.push_back("peak");
  std::vector<std::vector<std::string>> cells;
  for (const Row& r : rows) {
    const AudioInfo& a = r.info;
    std::vector<std::string> c = {a.path,
                                  a.format,
                                  a.subtype,
                                  std::to_string(a.sample_rate),
                                  std::to_string(a.channels),
                                  a.frames < 0 ? "?" : std::to_string(a.frames),
                                  duration_text(a.duration_s)};
    if (check) {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.4f", r.peak);
      c.push_back(buf);
    }
    cells.push_back(std::move(c));
  }
  std::vector<size_t> width(head.size());
  for (size_t j = 0; j < head.size(); ++j) {
    width[j] = head[j].size();
    for (const auto& c : cells) width[j] = std::max(width[j], c[j].size());
  }
  auto print_row = [&](const std::vector<std::string>& c) {
    std::string line;
    for (size_t j = 0; j < c.size(); ++j) {
      const bool right = j >= 3;  // numbers right-aligned
      const std::string pad(width[j] - c[j].size(), ' ');
      line += right ? pad + c[j] : c[j] + (j + 1 < c.size() ? pad : "");
      if (j + 1 < c.size()) line += "  ";
    }
    std::printf("%s\n", line.c_str());
  };
  print_row(head);
  for (const auto& c : cells) print_row(c);
}

int run_info(const InfoArgs& a, const Context& ctx) {
  std::vector<Row> rows;
  int failures = 0;
  for (const auto& f : a.files) {
    try {
      Row r;
      r.info = probe_audio(f);
      if (a.check) {
        DecodeOptions native;
        native.target_rate = 0;  // decode every sample as it is, no resampling
        const Waveform w = load_audio(f, native);
        float peak = 0;
        for (float x : w.samples) peak = std::max(peak, std::fabs(x));
        r.peak = peak;
        r.info.frames = int64_t(w.samples.size());  // what really decoded (the header may not know)
        r.info.duration_s = w.duration_s();
      }
      rows.push_back(std::move(r));
    } catch (const std::exception& e) {
      std::fflush(stdout);
      std::cerr << "synclap: " << e.what() << std::endl;
      ++failures;
    }
  }
  if (ctx.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const Row& r : rows) {
      const AudioInfo& i = r.info;
      nlohmann::json j = {{"file", i.path},
                          {"format", i.format},
                          {"subtype", i.subtype},
                          {"sample_rate", i.sample_rate},
                          {"channels", i.channels},
                          {"frames", i.frames < 0 ? nlohmann::json(nullptr) : nlohmann::json(i.frames)},
                          {"duration_s", i.duration_s < 0 ? nlohmann::json(nullptr) : nlohmann::json(i.duration_s)}};
      if (a.check) j["peak"] = r.peak;
      out.push_back(std::move(j));
    }
    std::cout << out.dump(2) << std::endl;
  } else if (!rows.empty()) {
    print_table(rows, a.check);
  }
  return failures ? 1 : 0;
}

Command reg("info", "Show format, rate, channels and duration of audio files",
            [](CLI::App& sub, Context& ctx) -> Runner {
              auto a = std::make_shared<InfoArgs>();
              sub.add_option("files", a->files, "Audio files (WAV, FLAC, Ogg Vorbis/Opus, MP3, AIFF, ...)")->required();
              sub.add_flag("--check", a->check, "Also decode every sample (finds truncated or corrupt audio)");
              return [a, &ctx]() { return run_info(*a, ctx); };
            });

}  // namespace
}  // namespace synclap::cli
