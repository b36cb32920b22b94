// Synthetic data speed: clips rendered per second per core by the built-in composer + FluidSynth
// (compose, render at 48 kHz, effects, FLAC encode), on one thread and on all threads.
//   bench_synth [clips=16] [seconds=10] [threads=0 (all)]
// Prints one JSON object per configuration. The target is >= 30x real time per core.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "synclap/audio.h"
#include "synclap/synth.h"
#include "synclap/util.h"

using namespace synclap;

namespace {
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
}  // namespace

int main(int argc, char** argv) {
  const int clips = argc > 1 ? std::atoi(argv[1]) : 16;
  const double seconds = argc > 2 ? std::atof(argv[2]) : 10.0;
  const int all = argc > 3 && std::atoi(argv[3]) > 0 ? std::atoi(argv[3]) : default_threads();
  const Vocabulary vocab = Vocabulary::builtin();
  SamplerOptions so;
  so.seed = 1;
  so.seconds = seconds;
  const auto specs = Sampler(vocab, so).take(clips);
  const std::string dir = (std::filesystem::temp_directory_path() / "synclap_bench_synth").string();
  std::filesystem::create_directories(dir);
  // Warm up: load the soundfont on every thread once (a real run pays this once per thread).
  parallel_for(all, [&](int64_t i) { render_clip(specs[size_t(i) % specs.size()], vocab); }, all);
  for (int threads : {1, all}) {
    const double w0 = now_seconds(), c0 = cpu_seconds();
    parallel_for(clips, [&](int64_t i) {
      const Waveform w = render_clip(specs[size_t(i)], vocab);
      write_audio(dir + "/" + std::to_string(i) + ".flac", w);
    }, threads);
    const double wall = now_seconds() - w0, cpu = cpu_seconds() - c0;
    const double audio = clips * seconds;
    std::printf("{\"bench\": \"synth\", \"threads\": %d, \"clips\": %d, \"clip_seconds\": %.1f, \"wall_s\": %.2f, "
                "\"cpu_s\": %.2f, \"clips_per_s\": %.2f, \"clips_per_cpu_s\": %.2f, \"realtime_per_core\": %.1f, "
                "\"realtime_wall\": %.1f}\n",
                threads, clips, seconds, wall, cpu, clips / wall, clips / cpu, audio / cpu, audio / wall);
    if (all == 1) break;
  }
  std::filesystem::remove_all(dir);
  return 0;
}
