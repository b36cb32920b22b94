// bench_train: training speed (samples/s) and peak memory of synclap's training step, the same step as
// `synclap train` (both towers -> contrastive_loss -> backward -> AdamW with per-group options), on random
// features of 10 s clips and synthetic captions of 10..25 tokens (texts padded only to their batch's longest,
// as the trainer does; the reference pads to 77 as LAION-CLAP does).
//
//   bench_train [--quick] [--threads T] [--cases train_htsat_tiny_b8,train_cnn_cpu_b64,train_tiny_cpu_b32]
//
// train_htsat_tiny_b8: HTS-AT tiny + RoBERTa-base (golden/full_unfused_config.json), batch 8, AdamW lr 1e-4:
//   the reference's setup (bench/reference/train_reference.py). train_cnn_cpu_b64 / train_tiny_cpu_b32: the
//   CPU configs trained from scratch (configs/cnn-cpu.json, configs/tiny-cpu.json). Each case runs in its own
//   child process so that peak_rss_mb is per case. One JSON line per case.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "model/clap_model.h"
#include "synclap/process_setup.h"
#include "synclap/util.h"
#include "train/train_internal.h"

using namespace synclap;

namespace {

struct Case {
  std::string name, config;
  int batch;
  double lr;
};

std::string golden_config() {
  const char* g = std::getenv("SYNCLAP_GOLDEN_DIR");
  return (g ? std::string(g) : std::string(SYNCLAP_SOURCE_DIR) + "/../shared/golden") + "/full_unfused_config.json";
}

double cpu_seconds() { return double(std::clock()) / CLOCKS_PER_SEC; }

int run_case(const Case& c, int threads, bool quick) {
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  ClapConfig cfg = ClapConfig::from_file(c.config);
  ClapModel model(cfg);
  model->init_weights(0);
  model->train();
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& kv : model->named_parameters(true))
    (param_no_decay(kv.key(), kv.value()) ? no_decay : decay).push_back(kv.value());
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto o1 = std::make_unique<torch::optim::AdamWOptions>(c.lr);
  o1->weight_decay(0.2);
  auto o2 = std::make_unique<torch::optim::AdamWOptions>(c.lr);
  o2->weight_decay(0.0);
  groups.emplace_back(decay, std::move(o1));
  groups.emplace_back(no_decay, std::move(o2));
  torch::optim::AdamW opt(groups, torch::optim::AdamWOptions(c.lr));
  const int b = c.batch;
  auto feats = torch::randn({b, 1, 1001, cfg.audio_json.value("num_mel_bins", 64)}) * 20 - 40;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> len(10, 25);
  std::uniform_int_distribution<int64_t> tok(3, cfg.text.vocab_size - 1);
  std::vector<int> lens(static_cast<size_t>(b));
  int longest = 0;
  for (auto& l : lens) longest = std::max(longest, l = len(rng));
  auto ids = torch::ones({b, longest}, torch::kLong), mask = torch::zeros({b, longest}, torch::kLong);
  for (int i = 0; i < b; ++i) {
    ids[i][0] = 0;
    for (int k = 1; k < lens[size_t(i)] - 1; ++k) ids[i][k] = tok(rng);
    ids[i][lens[size_t(i)] - 1] = 2;
    mask[i].narrow(0, 0, lens[size_t(i)]).fill_(1);
  }
  auto step = [&]() {
    for (auto& g : opt.param_groups())
      for (auto& p : g.params()) p.mutable_grad() = torch::Tensor();
    auto a = model->audio_embeddings(feats, torch::Tensor());
    auto t = model->text_embeddings(ids, mask);
    auto loss = contrastive_loss(a, t, model->logit_scale_a, model->logit_scale_t);
    loss.loss.backward();
    opt.step();
    return loss.loss.item<double>();
  };
  step();  // warm-up
  const int steps = quick ? 2 : 5;
  const double t0 = now_seconds(), c0 = cpu_seconds();
  double loss = 0;
  for (int s = 0; s < steps; ++s) loss = step();
  const double wall = now_seconds() - t0, cpu = cpu_seconds() - c0;
  const char* omp = std::getenv("OMP_WAIT_POLICY");
  const char* core = std::getenv("OPENBLAS_CORETYPE");
  std::printf(
      "{\"side\": \"synclap\", \"bench\": \"train\", \"case\": \"%s\", \"threads\": %d, \"batch\": %d, \"steps\": %d, "
      "\"samples_per_s\": %.4f, \"cpu_seconds_per_sample\": %.4f, \"last_loss\": %.4f, \"parameters\": %lld, "
      "\"omp_wait_policy\": \"%s\", \"openblas_coretype\": \"%s\", \"peak_rss_mb\": %.1f}\n",
      c.name.c_str(), threads, b, steps, b * steps / wall, cpu / (b * steps), loss,
      static_cast<long long>(model->num_parameters()), omp ? omp : "", core ? core : "", peak_rss_bytes() / 1048576.0);
  std::fflush(stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ensure_blas_kernels(argc, argv);
  tune_memory_allocator();
  bool quick = false;
  int threads = 2;
  std::string cases = "train_htsat_tiny_b8,train_cnn_cpu_b64,train_tiny_cpu_b32", one;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    if (s == "--quick") quick = true;
    else if (s == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (s == "--cases" && i + 1 < argc) cases = argv[++i];
    else if (s == "--case" && i + 1 < argc) one = argv[++i];
    else {
      std::fprintf(stderr, "usage: bench_train [--quick] [--threads T] [--cases a,b,...]\n");
      return 2;
    }
  }
  const std::vector<Case> all = {
      {"train_htsat_tiny_b8", golden_config(), 8, 1e-4},
      {"train_cnn_cpu_b64", std::string(SYNCLAP_SOURCE_DIR) + "/configs/cnn-cpu.json", 64, 1e-3},
      {"train_tiny_cpu_b32", std::string(SYNCLAP_SOURCE_DIR) + "/configs/tiny-cpu.json", 32, 5e-4}};
  try {
    if (!one.empty()) {
      for (const auto& c : all)
        if (c.name == one) return run_case(c, threads, quick);
      std::fprintf(stderr, "unknown case %s\n", one.c_str());
      return 2;
    }
    std::stringstream ss(cases);
    std::string name;
    int rc = 0;
    while (std::getline(ss, name, ',')) {
      const pid_t pid = fork();
      if (pid == 0) {
        std::vector<std::string> args{"/proc/self/exe", "--case", name, "--threads", std::to_string(threads)};
        if (quick) args.push_back("--quick");
        std::vector<char*> cargv;
        for (auto& x : args) cargv.push_back(x.data());
        cargv.push_back(nullptr);
        execv(cargv[0], cargv.data());
        _exit(127);
      }
      int status = 0;
      waitpid(pid, &status, 0);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
    }
    return rc;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
}
