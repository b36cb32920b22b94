// synclap demo: the main job on its built-in defaults.
//
// The full main job (synthesise a data set, train a CPU model, evaluate it, index and search) arrives
// with the synthetic-data, training, evaluation and search issues. Until then the demo runs the best
// part that exists end to end: every bundled real recording is decoded, resampled to 48 kHz and turned
// into the exact log-mel features a CLAP model expects, in one batched call; it prints a table and
// writes the features (safetensors, with the preprocessing contract in the metadata).
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "command.h"
#include "synclap/audio.h"
#include "synclap/error.h"
#include "synclap/frontend.h"
#include "synclap/safetensors.h"
#include "synclap/util.h"

namespace fs = std::filesystem;

namespace synclap::cli {
namespace {

struct DemoArgs {
  std::string data;
  std::string out = "out/demo";
};

std::string find_default_data() {
  if (const char* env = std::getenv("SYNCLAP_REALAUDIO_DIR")) return env;
  for (const std::string& c : {std::string("../shared/realaudio"), std::string(SYNCLAP_SOURCE_DIR) + "/../shared/realaudio"})
    if (fs::is_directory(c)) return c;
  throw Error("no audio folder found: pass --data DIR (the bundled recordings live in ../shared/realaudio)");
}

bool is_audio_name(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return e == ".wav" || e == ".flac" || e == ".ogg" || e == ".mp3" || e == ".oga" || e == ".aiff" || e == ".aif";
}

int run_demo(const DemoArgs& a, const Context& ctx) {
  const std::string data = a.data.empty() ? find_default_data() : a.data;
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(data))
    if (e.is_regular_file() && is_audio_name(e.path())) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  if (files.empty()) throw Error(data + ": no audio files found");
  if (!ctx.quiet && !ctx.json) {
    std::cerr << "synclap demo: the full main job (synthesise, train, evaluate, search) is not built yet;\n"
                 "running what exists: decode + resample + CLAP log-mel features of "
              << files.size() << " recordings in " << data << "\n";
  }
  fs::create_directories(a.out);
  const PreprocessContract contract = PreprocessContract::clap_unfused();
  FeatureExtractor fe(contract);

  std::vector<AudioInfo> infos;
  std::vector<std::vector<float>> waves;
  std::vector<std::string> ok;
  int failed = 0;
  const double t0 = now_seconds();
  {
    Progress p("decode", int64_t(files.size()), !ctx.quiet);
    for (const auto& f : files) {
      try {
        AudioInfo info = probe_audio(f);
        Waveform w = load_audio(f);
        infos.push_back(info);
        waves.push_back(std::move(w.samples));
        ok.push_back(f);
      } catch (const std::exception& e) {
        std::cerr << "synclap: " << e.what() << " (skipped)\n";
        ++failed;
      }
      p.add();
    }
  }
  const double t_decode = now_seconds() - t0;
  std::vector<const std::vector<float>*> batch;
  for (const auto& w : waves) batch.push_back(&w);
  const double t1 = now_seconds();
  const auto mels = fe.extract_batch(batch, nullptr, ctx.threads);
  const double t_feat = now_seconds() - t1;

  SafetensorsWriter w;
  nlohmann::json items = nlohmann::json::array();
  for (size_t i = 0; i < mels.size(); ++i) {
    w.add_f32("features." + std::to_string(i), {mels[i].windows, mels[i].channels, mels[i].frames, mels[i].bins},
              mels[i].data);
    items.push_back(fs::relative(ok[i], data).string());
  }
  w.set_metadata("files", items.dump());
  w.set_metadata("preprocess", contract.to_json());
  const std::string out_file = a.out + "/features.safetensors";
  w.write(out_file);

  if (ctx.json) {
    nlohmann::json rows = nlohmann::json::array();
    for (size_t i = 0; i < mels.size(); ++i)
      rows.push_back({{"file", items[i]}, {"format", infos[i].format}, {"sample_rate", infos[i].sample_rate},
                      {"channels", infos[i].channels}, {"duration_s", infos[i].duration_s},
                      {"is_longer", mels[i].is_longer}});
    std::cout << nlohmann::json{{"items", rows}, {"failed", failed}, {"features", out_file},
                                {"decode_seconds", t_decode}, {"feature_seconds", t_feat}}.dump(2)
              << std::endl;
    return failed ? 1 : 0;
  }
  std::printf("\n%-70s %6s %6s %3s %8s %9s\n", "recording", "format", "rate", "ch", "seconds", "mean dB");
  for (size_t i = 0; i < mels.size(); ++i) {
    double sum = 0;
    for (float v : mels[i].data) sum += v;
    std::string name = items[i].get<std::string>();
    if (name.size() > 70) name = name.substr(0, 67) + "...";
    std::printf("%-70s %6s %6d %3d %8.2f %9.1f\n", name.c_str(), infos[i].format.c_str(), infos[i].sample_rate,
                infos[i].channels, infos[i].duration_s, sum / double(mels[i].data.size()));
  }
  std::printf("\n%zu recordings decoded and resampled to 48 kHz in %.2f s; features (%d x %d, %s mel, %s) for all "
              "of them in one call: %.3f s (%.0f clips/s)\nwrote %s\n",
              mels.size(), t_decode, contract.frames(), contract.n_mels, to_string(contract.mel_scale).c_str(),
              to_string(contract.truncation).c_str(), t_feat, mels.size() / std::max(t_feat, 1e-9), out_file.c_str());
  return failed ? 1 : 0;
}

Command reg("demo", "The main job on built-in defaults (for now: decode + CLAP features of the bundled recordings)",
            [](CLI::App& sub, Context& ctx) -> Runner {
              auto a = std::make_shared<DemoArgs>();
              sub.add_option("--data", a->data, "Folder of audio files (default: the bundled real recordings)");
              sub.add_option("--out", a->out, "Output folder (default: out/demo)");
              return [a, &ctx]() { return run_demo(*a, ctx); };
            });

}  // namespace
}  // namespace synclap::cli
