// Log-mel throughput: 10 s clips at 48 kHz (already decoded) -> CLAP features, one batched call.
//   bench_frontend [--clips N] [--threads T] [--preset unfused|fused] [--files F...]
// Prints one JSON line per thread count: clips/s, seconds, peak RSS.
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "synclap/audio.h"
#include "synclap/frontend.h"
#include "synclap/util.h"

using namespace synclap;

static double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int main(int argc, char** argv) {
  ensure_blas_kernels(argc, argv);
  int clips = 64, reps = 3;
  std::vector<int> thread_counts{1, 2};
  std::string preset = "unfused";
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--clips" && i + 1 < argc) clips = std::atoi(argv[++i]);
    else if (a == "--reps" && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) thread_counts = {std::atoi(argv[++i])};
    else if (a == "--preset" && i + 1 < argc) preset = argv[++i];
    else if (a == "--files") { while (i + 1 < argc) files.push_back(argv[++i]); }
    else { std::fprintf(stderr, "usage: bench_frontend [--clips N] [--reps R] [--threads T] [--preset unfused|fused] [--files F...]\n"); return 2; }
  }
  PreprocessContract c = preset == "fused" ? PreprocessContract::clap_fused() : PreprocessContract::clap_unfused();
  FeatureExtractor fe(c);
  std::vector<std::vector<float>> data;
  if (files.empty()) {
    std::mt19937 rng(1);
    std::normal_distribution<float> nd(0.f, 0.1f);
    for (int k = 0; k < clips; ++k) {
      std::vector<float> x(size_t(c.max_samples));
      for (auto& v : x) v = nd(rng);
      data.push_back(std::move(x));
    }
  } else {
    for (const auto& f : files) data.push_back(load_audio(f).samples);
    clips = int(data.size());
  }
  std::vector<const std::vector<float>*> batch;
  for (const auto& d : data) batch.push_back(&d);
  fe.extract_batch({batch[0]}, nullptr, 1);  // warm-up
  for (int t : thread_counts) {
    double best = 1e30, best_cpu = 0;
    for (int r = 0; r < reps; ++r) {
      const double t0 = now_seconds(), c0 = cpu_seconds();
      const auto out = fe.extract_batch(batch, nullptr, t);
      const double dt = now_seconds() - t0;
      if (dt < best) {
        best = dt;
        best_cpu = cpu_seconds() - c0;
      }
      if (out.size() != size_t(clips)) return 1;
    }
    std::printf("{\"bench\": \"frontend\", \"preset\": \"%s\", \"clips\": %d, \"threads\": %d, \"seconds\": %.4f, "
                "\"clips_per_s\": %.1f, \"cpu_seconds\": %.4f, \"peak_rss_mb\": %.1f}\n",
                preset.c_str(), clips, t, best, clips / best, best_cpu, peak_rss_bytes() / 1048576.0);
  }
  return 0;
}
