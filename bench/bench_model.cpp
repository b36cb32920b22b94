// CLAP model throughput, the counterpart of bench/reference/model_reference.py (same cases, same geometry).
//
//   bench_model --wav-dir DIR [--quick] [--threads T] [--cases a,b,...] [--text-batch 16] [--config JSON]
//               [--checkpoint DIR]
//
// Geometry: golden/full_unfused_config.json (= ClapConfig() defaults = laion/clap-htsat-unfused): HTS-AT tiny
// + RoBERTa-base, projection 512, float32, random weights (seeded). The random model is written once as a
// synclap checkpoint (a temporary folder, or --checkpoint DIR which is reused if it exists) and every case runs
// in a fresh child process that loads it with Model::load, as a user would: "peak_rss_mb" is per case.
// Cases:
//   audio_files_b1, audio_files_b8  10 s clips from the WAV files in DIR, end to end as `synclap embed` does
//       them: decode (files in parallel), log-mel features (the model's contract), Model::embed_audio at batch
//       1 / 8. decode_s / features_s / model_s split the time.
//   text_77     Model::embed_text on captions of 77 tokens (the reference pads 10-25-token captions to 77;
//       synclap never computes on padding, so the equivalent work is 77 real tokens).
//   text_real   the same synthetic captions at their real lengths (10-25 tokens incl. <s> and </s>).
//   sgemm       the machine's float32 matrix-multiply rate through LibTorch (the kernels synclap runs on;
//       OpenBLAS's thread count is OPENBLAS_NUM_THREADS, not --threads): square 2048 and the RoBERTa feed-forward shape (16 x 77 tokens by 768 -> 3072), GFLOP/s.
//       Divides the model rates into a fraction of the machine's peak, which compares across machines.
// Timing as the reference: one warm-up batch, then timed batches (--quick: one); wall clock and process CPU
// time. One JSON line per case on stdout.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "io/torch/checkpoint.h"
#include "model/clap_model.h"
#include "synclap/audio.h"
#include "synclap/frontend.h"
#include "synclap/model.h"
#include "synclap/process_setup.h"
#include "synclap/util.h"

using namespace synclap;
namespace fs = std::filesystem;

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

struct Args {
  std::string wav_dir, cases = "sgemm,audio_files_b1,audio_files_b8,text_77,text_real", config, checkpoint, one_case;
  bool quick = false;
  int threads = 2, text_batch = 16;
};

std::string default_config() {
  const char* g = std::getenv("SYNCLAP_GOLDEN_DIR");
  const std::string dir = g ? g : std::string(SYNCLAP_SOURCE_DIR) + "/../shared/golden";
  return dir + "/full_unfused_config.json";
}

// <s> + random ids in [3, vocab) + </s>, total length uniform in [10, 25] (or exactly `fixed`), seeded.
std::vector<std::vector<int64_t>> captions(size_t n, int64_t vocab, int fixed, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> len(10, 25);
  std::uniform_int_distribution<int64_t> tok(3, vocab - 1);
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < n; ++i) {
    const int l = fixed > 0 ? fixed : len(rng);
    std::vector<int64_t> c{0};
    for (int k = 0; k < l - 2; ++k) c.push_back(tok(rng));
    c.push_back(2);
    out.push_back(std::move(c));
  }
  return out;
}

// GFLOP/s of C[m,n] = A[m,k] B[k,n] (2mnk flops per product), best of 3 timed runs of `reps` products.
double sgemm_gflops(int64_t m, int64_t k, int64_t n, int reps) {
  torch::NoGradGuard ng;
  const torch::Tensor x = torch::randn({m, k}), w = torch::randn({k, n});
  torch::Tensor y = torch::mm(x, w);  // warm-up
  double best = 0;
  for (int r = 0; r < 3; ++r) {
    const double t0 = now_seconds();
    for (int i = 0; i < reps; ++i) y = torch::mm(x, w);
    const double dt = now_seconds() - t0;
    best = std::max(best, 2.0 * double(m) * double(n) * double(k) * reps / dt / 1e9);
  }
  return best;
}

int run_sgemm(const Args& a) {
  at::set_num_threads(a.threads);
  const int reps = a.quick ? 4 : 10;
  const double square = sgemm_gflops(2048, 2048, 2048, reps);
  const double ffn = sgemm_gflops(16 * 77, 768, 3072, reps * 4);
  // --threads sizes LibTorch's pool; OpenBLAS's own pool follows OPENBLAS_NUM_THREADS (default: all cores),
  // so a one-thread peak needs OPENBLAS_NUM_THREADS=1. Both are recorded.
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  const char* blas_threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf("{\"bench\": \"model\", \"case\": \"sgemm\", \"threads\": %d, \"openblas_num_threads\": \"%s\", "
              "\"gflops_2048\": %.1f, \"gflops_ffn_1232x768x3072\": %.1f, \"openblas_coretype\": \"%s\"}\n",
              a.threads, blas_threads ? blas_threads : "default (all cores)", square, ffn, core ? core : "");
  std::fflush(stdout);
  return 0;
}

int run_case(const Args& a) {
  if (a.one_case == "sgemm") return run_sgemm(a);
  ModelOptions mo;
  mo.threads = a.threads;
  int batch = a.text_batch;
  if (a.one_case.rfind("audio_files_b", 0) == 0) batch = std::atoi(a.one_case.c_str() + 13);
  if (batch < 1) throw std::runtime_error("bad case " + a.one_case);
  mo.audio_batch = batch;
  mo.text_batch = batch;
  const Model model = Model::load(a.checkpoint, mo);
  std::ostringstream rec;
  rec << "{\"bench\": \"model\", \"case\": \"" << a.one_case << "\", \"threads\": " << a.threads
      << ", \"model\": \"HTS-AT tiny + RoBERTa-base (full_unfused_config.json), random weights, float32\"";
  char buf[512];
  if (a.one_case.rfind("audio_files_b", 0) == 0) {
    const int timed = a.quick ? 1 : (batch == 1 ? 4 : 2);
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(a.wav_dir))
      if (e.path().extension() == ".wav") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    if (files.empty()) throw std::runtime_error("no .wav files in " + a.wav_dir);
    const PreprocessContract& c = model.contract();
    FeatureExtractor fe(c);
    DecodeOptions d;
    d.target_rate = c.sample_rate;
    d.int16_roundtrip = c.int16_roundtrip;
    double t_dec = 0, t_fe = 0, t_model = 0;
    size_t cursor = 0;
    auto one_batch = [&](bool account) {
      std::vector<std::string> paths;
      for (int k = 0; k < batch; ++k) paths.push_back(files[(cursor++) % files.size()]);
      const double t0 = now_seconds();
      std::vector<std::vector<float>> waves(paths.size());
      parallel_for(int64_t(paths.size()), [&](int64_t i) { waves[size_t(i)] = load_audio(paths[size_t(i)], d).samples; },
                   a.threads);
      const double t1 = now_seconds();
      std::vector<const std::vector<float>*> ptrs;
      for (const auto& w : waves) ptrs.push_back(&w);
      const auto mels = fe.extract_batch(ptrs, nullptr, a.threads);
      const double t2 = now_seconds();
      const Embeddings e = model.embed_audio(mels);
      const double t3 = now_seconds();
      if (e.rows != batch) throw std::runtime_error("wrong number of embeddings");
      if (account) {
        t_dec += t1 - t0;
        t_fe += t2 - t1;
        t_model += t3 - t2;
      }
    };
    one_batch(false);  // warm-up
    const double c0 = cpu_seconds(), w0 = now_seconds();
    for (int i = 0; i < timed; ++i) one_batch(true);
    const double wall = now_seconds() - w0, cpu = cpu_seconds() - c0;
    const int n = batch * timed;
    std::snprintf(buf, sizeof buf,
                  ", \"batch\": %d, \"clips\": %d, \"seconds\": %.3f, \"clips_per_s\": %.3f, \"cpu_seconds\": %.3f, "
                  "\"decode_s\": %.3f, \"features_s\": %.3f, \"model_s\": %.3f, \"model_clips_per_s\": %.3f, "
                  "\"clip_seconds\": 10, \"source\": \"16-bit PCM WAV files, 48 kHz mono\"",
                  batch, n, wall, n / wall, cpu, t_dec, t_fe, t_model, n / t_model);
  } else {
    const int timed = a.quick ? 1 : 2;
    const int fixed = a.one_case == "text_77" ? 77 : 0;
    if (!fixed && a.one_case != "text_real") throw std::runtime_error("unknown case " + a.one_case);
    const auto caps = captions(size_t(batch) * size_t(timed + 1), model.info().vocab_size, fixed, 7);
    std::vector<std::vector<std::vector<int64_t>>> batches;
    for (int b = 0; b <= timed; ++b)
      batches.emplace_back(caps.begin() + b * batch, caps.begin() + (b + 1) * batch);
    model.embed_text(batches[0]);  // warm-up
    int64_t tokens = 0;
    const double c0 = cpu_seconds(), w0 = now_seconds();
    for (int b = 1; b <= timed; ++b) {
      const Embeddings e = model.embed_text(batches[size_t(b)]);
      if (e.rows != batch) throw std::runtime_error("wrong number of embeddings");
      for (const auto& c : batches[size_t(b)]) tokens += int64_t(c.size());
    }
    const double wall = now_seconds() - w0, cpu = cpu_seconds() - c0;
    const int n = batch * timed;
    std::snprintf(buf, sizeof buf,
                  ", \"batch\": %d, \"texts\": %d, \"seconds\": %.3f, \"texts_per_s\": %.3f, \"cpu_seconds\": %.3f, "
                  "\"mean_tokens\": %.2f, \"padding\": \"none (each batch sorted by length, padded to its longest)\"",
                  batch, n, wall, n / wall, cpu, double(tokens) / n);
  }
  rec << buf;
  const char* omp = std::getenv("OMP_WAIT_POLICY");
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  std::snprintf(buf, sizeof buf, ", \"omp_wait_policy\": \"%s\", \"openblas_coretype\": \"%s\", \"peak_rss_mb\": %.1f}",
                omp ? omp : "", core ? core : "", peak_rss_bytes() / 1048576.0);
  rec << buf;
  std::printf("%s\n", rec.str().c_str());
  std::fflush(stdout);
  return 0;
}

void make_checkpoint(const std::string& config_path, const std::string& dir) {
  const ClapConfig cfg = ClapConfig::from_file(config_path);
  ClapModel m(cfg);
  m->init_weights(0);
  m->eval();
  save_checkpoint(*m, hf_inference_contract(cfg), dir);
}

}  // namespace

int main(int argc, char** argv) {
  ensure_blas_kernels(argc, argv);
  tune_memory_allocator();
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(s + " needs a value");
      return argv[++i];
    };
    if (s == "--wav-dir") a.wav_dir = next();
    else if (s == "--quick") a.quick = true;
    else if (s == "--threads") a.threads = std::atoi(next().c_str());
    else if (s == "--cases") a.cases = next();
    else if (s == "--text-batch") a.text_batch = std::atoi(next().c_str());
    else if (s == "--config") a.config = next();
    else if (s == "--checkpoint") a.checkpoint = next();
    else if (s == "--case") a.one_case = next();
    else {
      std::fprintf(stderr,
                   "usage: bench_model --wav-dir DIR [--quick] [--threads T] [--cases a,b] [--text-batch N] "
                   "[--config JSON] [--checkpoint DIR]\n");
      return 2;
    }
  }
  try {
    if (!a.one_case.empty()) return run_case(a);
    if (a.config.empty()) a.config = default_config();
    bool temporary = false;
    if (a.checkpoint.empty()) {
      a.checkpoint = (fs::temp_directory_path() / ("synclap_bench_model." + std::to_string(getpid()))).string();
      temporary = true;
    }
    if (!fs::exists(fs::path(a.checkpoint) / "model.safetensors") &&
        !fs::exists(fs::path(a.checkpoint) / "model_config.json")) {
      // In a child, so that building the random model does not count in anyone's peak memory.
      const pid_t pid = fork();
      if (pid == 0) {
        try {
          make_checkpoint(a.config, a.checkpoint);
          _exit(0);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "bench_model: %s\n", e.what());
          _exit(1);
        }
      }
      int st = 0;
      waitpid(pid, &st, 0);
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) return 1;
    }
    char self[PATH_MAX + 1] = {0};
    const ssize_t len = readlink("/proc/self/exe", self, PATH_MAX);
    if (len <= 0) throw std::runtime_error("cannot find this program's path");
    self[len] = 0;
    int status = 0;
    std::stringstream ss(a.cases);
    for (std::string c; std::getline(ss, c, ',');) {
      if (c.empty()) continue;
      if (c.rfind("audio", 0) == 0 && a.wav_dir.empty()) {
        std::fprintf(stderr, "bench_model: %s needs --wav-dir DIR\n", c.c_str());
        status = 1;
        continue;
      }
      std::string cmd = "'" + std::string(self) + "' --case '" + c + "' --checkpoint '" + a.checkpoint + "' --threads " +
                        std::to_string(a.threads) + " --text-batch " + std::to_string(a.text_batch);
      if (!a.wav_dir.empty()) cmd += " --wav-dir '" + a.wav_dir + "'";
      if (a.quick) cmd += " --quick";
      std::fflush(stdout);
      const int rc = std::system(cmd.c_str());
      if (rc != 0) {
        std::fprintf(stderr, "bench_model: case %s failed (status %d)\n", c.c_str(), rc);
        status = 1;
      }
    }
    if (temporary) fs::remove_all(a.checkpoint);
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_model: %s\n", e.what());
    return 1;
  }
}
