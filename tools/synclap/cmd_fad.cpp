// synclap fad (--model CKPT --ref DIR --gen DIR | --ref-npy A.npy --gen-npy B.npy): Fréchet Audio Distance
// between two sets of clips on synclap embeddings (or any embeddings given as .npy), with per-item
// contributions, FAD-infinity and spectrogram MSE between paired clips (same file name in both folders).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>

#include "eval_support.h"
#include "synclap/audio.h"
#include "synclap/error.h"
#include "synclap/npy.h"
#include "synclap/util.h"

namespace fs = std::filesystem;

namespace synclap::cli {
namespace {

struct FadArgs {
  std::string model, tokenizer, ref, gen, ref_npy, gen_npy, out;
  bool per_item = false, infinity = false, spec_mse = false;
  uint64_t seed = 0;
  int show = 10;
};

std::vector<float> npy_rows(const std::string& path, int64_t* n, int64_t* dim) {
  NpyArray a = read_npy(path);
  if (a.shape.size() != 2) throw FileError(path, "expected a 2-D array [items x dim]");
  *n = a.shape[0];
  *dim = a.shape[1];
  return std::move(a.data);
}

int run_fad(const FadArgs& a, const Context& ctx) {
  const bool use_npy = !a.ref_npy.empty() || !a.gen_npy.empty();
  if (use_npy && (a.ref_npy.empty() || a.gen_npy.empty())) throw Error("give both --ref-npy and --gen-npy");
  if (!use_npy && (a.model.empty() || a.ref.empty() || a.gen.empty()))
    throw Error("give --model CKPT --ref DIR --gen DIR, or --ref-npy A.npy --gen-npy B.npy");
  if (a.spec_mse && use_npy) throw Error("--spec-mse needs audio folders (--ref/--gen)");

  std::vector<float> ref, gen;
  int64_t n_ref = 0, n_gen = 0, dim = 0, dim2 = 0;
  std::vector<std::string> gen_names;
  Provenance prov;
  std::optional<LoadedModel> lm;
  std::vector<std::string> ref_files, gen_files;
  if (use_npy) {
    ref = npy_rows(a.ref_npy, &n_ref, &dim);
    gen = npy_rows(a.gen_npy, &n_gen, &dim2);
    if (dim != dim2) throw Error("embedding sizes differ: " + std::to_string(dim) + " vs " + std::to_string(dim2));
    for (int64_t i = 0; i < n_gen; ++i) gen_names.push_back("row " + std::to_string(i));
    prov.task = "fad";
    prov.dataset = "ref=" + a.ref_npy + " gen=" + a.gen_npy;
    prov.dataset_sha256 = sha256_hex(sha256_file(a.ref_npy) + sha256_file(a.gen_npy));
    prov.command_line = command_line();
  } else {
    lm.emplace(load_model(a.model, a.tokenizer, ctx));
    ref_files = list_audio_files(a.ref);
    gen_files = list_audio_files(a.gen);
    std::vector<size_t> kr, kg;
    const Embeddings er = embed_audio_files(*lm, ref_files, ctx, &kr, "reference");
    const Embeddings eg = embed_audio_files(*lm, gen_files, ctx, &kg, "generated");
    ref = er.data;
    gen = eg.data;
    n_ref = er.rows;
    n_gen = eg.rows;
    dim = er.dim;
    for (size_t i : kg) gen_names.push_back(fs::path(gen_files[i]).filename().string());
    prov = model_provenance(*lm, "fad");
    prov.dataset = "ref=" + a.ref + " gen=" + a.gen;
  }
  prov.seed = a.seed;

  FadOptions opt;
  opt.per_item = a.per_item;
  opt.infinity = a.infinity;
  opt.seed = a.seed;
  const FadResult r = fad(ref, n_ref, gen, n_gen, dim, opt);

  nlohmann::json out;
  out["fad"] = r.fad;
  out["mean_term"] = r.terms.mean_term;
  out["trace_term"] = r.terms.trace_term;
  out["clamped_eigenvalues"] = r.terms.clamped_eigenvalues;
  out["n_ref"] = r.n_ref;
  out["n_gen"] = r.n_gen;
  out["dim"] = r.dim;
  if (r.n_ref <= r.dim || r.n_gen <= r.dim)
    out["warning"] = "fewer items than embedding dimensions: the covariances are singular and FAD is biased";
  if (a.per_item) {
    nlohmann::json items = nlohmann::json::array();
    for (size_t i = 0; i < r.per_item.size(); ++i) items.push_back({{"item", gen_names[i]}, {"contribution", r.per_item[i]}});
    out["per_item"] = items;
    out["per_item_definition"] = "FAD(ref, gen) - FAD(ref, gen without this item); positive = the item worsens FAD";
  }
  if (a.infinity) {
    out["fad_infinity"] = r.fad_infinity;
    out["fad_infinity_slope"] = r.fad_infinity_slope;
    out["infinity_sizes"] = r.infinity_sizes;
    out["infinity_values"] = r.infinity_values;
  }
  if (a.spec_mse) {
    // Pair by file name; log-mel of the whole signals with the model's front end settings.
    const PreprocessContract& c = lm->model.contract();
    FeatureExtractor fe(c);
    DecodeOptions dopt;
    dopt.target_rate = c.sample_rate;
    std::map<std::string, std::string> refs;
    for (const auto& f : ref_files) refs[fs::path(f).filename().string()] = f;
    nlohmann::json pairs = nlohmann::json::array();
    double sum = 0;
    int64_t count = 0;
    for (const auto& g : gen_files) {
      const auto it = refs.find(fs::path(g).filename().string());
      if (it == refs.end()) continue;
      try {
        const Waveform wr = load_audio(it->second, dopt), wg = load_audio(g, dopt);
        const auto mr = fe.log_mel(wr.samples.data(), wr.samples.size(), ctx.threads ? ctx.threads : 1);
        const auto mg = fe.log_mel(wg.samples.data(), wg.samples.size(), ctx.threads ? ctx.threads : 1);
        const int64_t bins = c.n_mels;
        const double mse = spectrogram_mse(mr.data(), int64_t(mr.size()) / bins, mg.data(), int64_t(mg.size()) / bins, bins);
        pairs.push_back({{"file", it->first}, {"mse_db2", mse}});
        sum += mse;
        ++count;
      } catch (const std::exception& e) {
        std::cerr << "synclap: " << e.what() << " (pair skipped)" << std::endl;
      }
    }
    out["spectrogram_mse"] = {{"pairs", count}, {"mean_mse_db2", count ? sum / double(count) : 0.0}, {"items", pairs}};
  }
  out["provenance"] = nlohmann::json::parse(prov.to_json());
  if (!a.out.empty()) write_file_atomic(a.out, out.dump(2) + "\n");
  // Generated items from the one that worsens FAD most to the one that improves it most.
  std::vector<size_t> order(r.per_item.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return r.per_item[x] > r.per_item[y]; });
  if (!a.out.empty() && a.per_item && !r.per_item.empty()) {
    // F.svg beside F.json: the 20 worst (top) and 20 best (bottom) items.
    std::vector<size_t> shown = order;
    if (shown.size() > 40) shown.erase(shown.begin() + 20, shown.end() - 20);
    std::vector<std::string> names;
    std::vector<double> values;
    for (size_t i : shown) names.push_back(gen_names[i]), values.push_back(r.per_item[i]);
    write_file_atomic(picture_path(a.out),
                      bars_svg(names, values, "FAD " + fmt(r.fad, 4) + ": per-item contributions",
                               "FAD(all) - FAD(without the item)"));
  }

  if (ctx.json) {
    std::cout << out.dump(2) << std::endl;
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"metric", "value"},
                                                {"FAD", fmt(r.fad, 6)},
                                                {"  mean term", fmt(r.terms.mean_term, 6)},
                                                {"  trace term", fmt(r.terms.trace_term, 6)},
                                                {"reference items", std::to_string(r.n_ref)},
                                                {"generated items", std::to_string(r.n_gen)},
                                                {"dimensions", std::to_string(r.dim)}};
  if (a.infinity) rows.push_back({"FAD-infinity", fmt(r.fad_infinity, 6)});
  if (a.spec_mse) rows.push_back({"spectrogram MSE (dB^2)", fmt(out["spectrogram_mse"]["mean_mse_db2"].get<double>(), 3)});
  std::cout << format_table(rows);
  if (out.contains("warning")) std::cout << "warning: " << out["warning"].get<std::string>() << "\n";
  if (a.per_item && !r.per_item.empty()) {
    std::vector<std::vector<std::string>> t = {{"worst items", "contribution"}};
    for (size_t k = 0; k < order.size() && int(k) < a.show; ++k)
      t.push_back({gen_names[order[k]], fmt(r.per_item[order[k]], 6)});
    std::cout << "\n" << format_table(t);
  }
  if (!a.out.empty()) std::cout << "wrote " << a.out << "\n";
  return 0;
}

Command reg("fad", "Frechet Audio Distance between two sets of clips (synclap embeddings or .npy)",
            [](CLI::App& sub, Context& ctx) -> Runner {
              auto a = std::make_shared<FadArgs>();
              sub.add_option("--model", a->model, "Checkpoint (with --ref/--gen)");
              sub.add_option("--tokenizer", a->tokenizer, "Directory with vocab.json + merges.txt (unused by fad)");
              sub.add_option("--ref", a->ref, "Folder of reference audio");
              sub.add_option("--gen", a->gen, "Folder of generated audio");
              sub.add_option("--ref-npy", a->ref_npy, "Reference embeddings [N x D] .npy");
              sub.add_option("--gen-npy", a->gen_npy, "Generated embeddings [M x D] .npy");
              sub.add_flag("--per-item", a->per_item, "Leave-one-out contribution of each generated item");
              sub.add_flag("--infinity", a->infinity, "FAD-infinity: extrapolate FAD(N) = a + b/N to N -> infinity");
              sub.add_flag("--spec-mse", a->spec_mse, "Spectrogram MSE between clips with the same file name");
              sub.add_option("--seed", a->seed, "Seed for the FAD-infinity subsets");
              sub.add_option("--show", a->show, "Items to list with --per-item (default 10)");
              sub.add_option("-o,--out", a->out, "Write the result JSON here (with --per-item also F.svg: the largest contributions as bars)");
              return [a, &ctx]() { return run_fad(*a, ctx); };
            });

}  // namespace
}  // namespace synclap::cli
