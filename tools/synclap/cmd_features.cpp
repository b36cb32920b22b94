// synclap features FILE... [--out F.safetensors|F.npy]: the log-mel features a CLAP model sees,
// for inspection and parity checks.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "command.h"
#include "synclap/audio.h"
#include "synclap/error.h"
#include "synclap/frontend.h"
#include "synclap/npy.h"
#include "synclap/safetensors.h"
#include "synclap/util.h"

namespace synclap::cli {
namespace {

struct FeaturesArgs {
  std::vector<std::string> files;
  std::string out;
  std::string preset = "unfused";
  std::string contract_file;
  std::string truncation, padding;
  int64_t seed = -1;
};

PreprocessContract make_contract(const FeaturesArgs& a) {
  PreprocessContract c;
  if (!a.contract_file.empty()) {
    c = PreprocessContract::from_json(read_file(a.contract_file));
  } else if (a.preset == "unfused") {
    c = PreprocessContract::clap_unfused();
  } else if (a.preset == "fused") {
    c = PreprocessContract::clap_fused();
  } else if (a.preset == "reference-unfused") {
    c = PreprocessContract::reference(false);
  } else if (a.preset == "reference-fused") {
    c = PreprocessContract::reference(true);
  } else {
    throw Error("unknown --preset '" + a.preset + "' (unfused, fused, reference-unfused, reference-fused)");
  }
  if (!a.truncation.empty()) c.truncation = truncation_from_string(a.truncation);
  if (!a.padding.empty()) c.padding = padding_from_string(a.padding);
  if (a.seed >= 0) c.seed = uint32_t(a.seed);
  c.validate();
  return c;
}

int run_features(const FeaturesArgs& a, const Context& ctx) {
  const PreprocessContract contract = make_contract(a);
  FeatureExtractor fe(contract);
  DecodeOptions dopt;
  dopt.target_rate = contract.sample_rate;
  dopt.int16_roundtrip = contract.int16_roundtrip;

  // Decode (a bad file is reported and skipped), then extract all clips in one batched call.
  std::vector<std::string> ok_files;
  std::vector<std::vector<float>> waves;
  int failures = 0;
  Progress progress("decoding", int64_t(a.files.size()), !ctx.quiet && a.files.size() > 1);
  for (const auto& f : a.files) {
    try {
      Waveform w = load_audio(f, dopt);
      waves.push_back(std::move(w.samples));
      ok_files.push_back(f);
    } catch (const std::exception& e) {
      std::cerr << "synclap: " << e.what() << " (skipped)" << std::endl;
      ++failures;
    }
    progress.add();
  }
  progress.finish();
  if (ok_files.empty()) throw Error("no input file could be decoded");
  std::vector<const std::vector<float>*> batch;
  for (const auto& w : waves) batch.push_back(&w);
  NumpyRandom rng(contract.seed);
  const double t0 = now_seconds();
  const std::vector<LogMel> mels = fe.extract_batch(batch, &rng, ctx.threads);
  const double dt = now_seconds() - t0;

  if (!a.out.empty()) {
    const bool npy = a.out.size() > 4 && a.out.compare(a.out.size() - 4, 4, ".npy") == 0;
    if (npy) {
      for (const auto& m : mels)
        if (m.windows != mels[0].windows)
          throw Error("--out .npy needs the same number of windows for every file; use .safetensors");
      std::vector<float> all;
      for (const auto& m : mels) all.insert(all.end(), m.data.begin(), m.data.end());
      std::vector<int64_t> shape{int64_t(mels.size())};
      if (mels[0].windows > 1) shape.push_back(mels[0].windows);
      shape.insert(shape.end(), {mels[0].channels, mels[0].frames, mels[0].bins});
      write_npy(a.out, shape, all);
    } else {
      SafetensorsWriter w;
      nlohmann::json items = nlohmann::json::array();
      for (size_t i = 0; i < mels.size(); ++i) {
        const auto& m = mels[i];
        const std::string key = "features." + std::to_string(i);
        std::vector<int64_t> shape{m.windows, m.channels, m.frames, m.bins};
        w.add_f32(key, shape, m.data);
        w.add_i64("is_longer." + std::to_string(i), {1}, {m.is_longer ? 1 : 0});
        items.push_back(ok_files[i]);
      }
      w.set_metadata("files", items.dump());
      w.set_metadata("preprocess", contract.to_json());
      w.set_metadata("synclap_version", SYNCLAP_VERSION);
      w.write(a.out);
    }
  }

  if (ctx.json) {
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < mels.size(); ++i) {
      const auto& m = mels[i];
      double lo = 1e30, hi = -1e30, sum = 0;
      for (float v : m.data) {
        lo = std::min(lo, double(v));
        hi = std::max(hi, double(v));
        sum += v;
      }
      out.push_back({{"file", ok_files[i]},
                     {"shape", {m.windows, m.channels, m.frames, m.bins}},
                     {"is_longer", m.is_longer},
                     {"min_db", lo},
                     {"max_db", hi},
                     {"mean_db", sum / double(m.data.size())},
                     {"crop_start_sample", m.crop_start_sample}});
    }
    std::cout << nlohmann::json{{"items", out},
                                {"preprocess", nlohmann::json::parse(contract.to_json())},
                                {"out", a.out},
                                {"failed", failures},
                                {"seconds", dt}}
                     .dump(2)
              << std::endl;
  } else {
    for (size_t i = 0; i < mels.size(); ++i) {
      const auto& m = mels[i];
      double lo = 1e30, hi = -1e30, sum = 0;
      for (float v : m.data) {
        lo = std::min(lo, double(v));
        hi = std::max(hi, double(v));
        sum += v;
      }
      std::printf("%s  [%d x %d x %d x %d]  is_longer=%d  dB min %.1f max %.1f mean %.1f\n", ok_files[i].c_str(),
                  m.windows, m.channels, m.frames, m.bins, int(m.is_longer), lo, hi, sum / double(m.data.size()));
    }
    if (!a.out.empty()) std::printf("wrote %s (%zu clips, %s, %s truncation)\n", a.out.c_str(), mels.size(),
                                    contract.fusion ? "fused" : "unfused", to_string(contract.truncation).c_str());
  }
  return failures ? 1 : 0;
}

Command reg("features", "Compute CLAP log-mel features of audio files (for inspection and parity checks)",
            [](CLI::App& sub, Context& ctx) -> Runner {
              auto a = std::make_shared<FeaturesArgs>();
              sub.add_option("files", a->files, "Audio files")->required();
              sub.add_option("-o,--out", a->out, "Write features to F.safetensors (one tensor per file) or F.npy");
              sub.add_option("--preset", a->preset,
                             "unfused | fused | reference-unfused | reference-fused (default: unfused)");
              sub.add_option("--contract", a->contract_file, "Preprocessing contract JSON (overrides --preset)");
              sub.add_option("--truncation", a->truncation, "rand_trunc | fusion | first | middle | windows");
              sub.add_option("--padding", a->padding, "repeatpad | repeat | pad");
              sub.add_option("--seed", a->seed, "Seed for random truncation / fusion choices");
              return [a, &ctx]() { return run_features(*a, ctx); };
            });

}  // namespace
}  // namespace synclap::cli
