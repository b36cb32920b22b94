// synclap classify --model CKPT --labels "rock,jazz" | --labels-file F [--template "...{label}..."]... [-k K]
//                  FILES/DIRS... [--out F.csv|F.json]: zero-shot classification.
// Each label becomes a prompt per template ("This is a sound of {label}." by default); with several templates
// the label's embedding is the mean of its prompts' embeddings, renormalised (a template ensemble). Each clip's
// logits are audio . label * exp(logit_scale_a) (the model's learned temperature); probabilities are their
// softmax over the labels. Prints the top-k labels per file; --json prints everything machine-readable.
// Files that cannot be decoded are reported on stderr and skipped (exit status 1).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>

#include "eval_support.h"
#include "synclap/error.h"
#include "synclap/util.h"

namespace synclap::cli {
namespace {

struct ClassifyArgs {
  std::string model, tokenizer, labels, labels_file, out;
  std::vector<std::string> templates, inputs;
  int top_k = 5, batch = 8;
  bool recursive = false;
};

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

int run_classify(ClassifyArgs a, const Context& ctx) {
  std::vector<std::string> labels;
  if (!a.labels.empty()) {
    std::stringstream ss(a.labels);
    for (std::string item; std::getline(ss, item, ',');)
      if (!trim(item).empty()) labels.push_back(trim(item));
  }
  if (!a.labels_file.empty()) {
    std::ifstream in(a.labels_file);
    if (!in) throw FileError(a.labels_file, "cannot open");
    for (std::string line; std::getline(in, line);)
      if (!trim(line).empty()) labels.push_back(trim(line));
  }
  if (labels.empty()) throw Error("no labels: give --labels \"a,b,c\" or --labels-file F (one per line)");
  {
    std::vector<std::string> seen;
    for (const auto& l : labels) {
      if (std::find(seen.begin(), seen.end(), l) != seen.end()) throw Error("label given twice: " + l);
      seen.push_back(l);
    }
  }
  if (a.templates.empty()) a.templates = {"This is a sound of {label}."};
  if (a.top_k < 1) throw Error("-k must be >= 1");
  if (a.batch < 1) throw Error("--batch must be >= 1");
  const size_t k_top = std::min(size_t(a.top_k), labels.size());
  const std::vector<std::string> files = expand_audio_args(a.inputs, a.recursive);

  ModelOptions mo;
  mo.audio_batch = a.batch;
  LoadedModel lm = load_model(a.model, a.tokenizer, ctx, mo);

  // Label embeddings: mean over templates, renormalised.
  std::vector<std::string> prompts;
  for (const auto& l : labels)
    for (const auto& t : a.templates) prompts.push_back(fill_template(t, l));
  const Embeddings pe = embed_texts(lm, prompts, ctx, "embedding prompts");
  Embeddings le;
  le.rows = int64_t(labels.size());
  le.dim = pe.dim;
  le.data.assign(size_t(le.rows * le.dim), 0.f);
  const size_t nt = a.templates.size();
  for (size_t i = 0; i < labels.size(); ++i) {
    float* dst = le.data.data() + i * size_t(le.dim);
    std::vector<double> acc(size_t(le.dim), 0.0);
    for (size_t t = 0; t < nt; ++t) {
      const float* src = pe.row(int64_t(i * nt + t));
      for (int64_t d = 0; d < le.dim; ++d) acc[size_t(d)] += src[d];
    }
    double norm = 0;
    for (double v : acc) norm += v * v;
    norm = std::sqrt(norm);
    if (!(norm > 0)) norm = 1;
    for (int64_t d = 0; d < le.dim; ++d) dst[d] = float(acc[size_t(d)] / norm);
  }

  std::vector<size_t> kept;
  const Embeddings audio = embed_audio_files(lm, files, ctx, &kept, "classifying");
  const std::vector<float> logits = lm.model.logits_per_audio(audio, le);
  const size_t nl = labels.size();

  nlohmann::json results = nlohmann::json::array();
  std::ostringstream csv, text;
  csv << "file,rank,label,probability,logit\n";
  for (size_t r = 0; r < kept.size(); ++r) {
    const float* lg = logits.data() + r * nl;
    const double mx = *std::max_element(lg, lg + nl);
    std::vector<double> p(nl);
    double sum = 0;
    for (size_t j = 0; j < nl; ++j) sum += (p[j] = std::exp(double(lg[j]) - mx));
    for (auto& v : p) v /= sum;
    std::vector<size_t> order(nl);
    std::iota(order.begin(), order.end(), size_t(0));
    // Ties in label order, so the ranking is reproducible.
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return lg[x] > lg[y]; });
    const std::string& file = files[kept[r]];
    nlohmann::json top = nlohmann::json::array();
    text << file << "\n";
    for (size_t q = 0; q < k_top; ++q) {
      const size_t j = order[q];
      top.push_back({{"label", labels[j]}, {"probability", p[j]}, {"logit", lg[j]}});
      csv << csv_quote(file) << ',' << (q + 1) << ',' << csv_quote(labels[j]) << ',' << fmt(p[j], 6) << ','
          << fmt(lg[j], 4) << '\n';
      text << "  " << (q + 1) << ". " << labels[j] << std::string(labels[j].size() < 30 ? 30 - labels[j].size() : 1, ' ')
           << fmt(p[j], 4) << '\n';
    }
    results.push_back({{"file", file}, {"top", top}});
  }

  nlohmann::json out;
  out["labels"] = labels;
  out["templates"] = a.templates;
  out["logit_scale"] = lm.model.info().logit_scale_audio;
  out["top_k"] = k_top;
  out["results"] = results;
  out["classified"] = kept.size();
  out["failed"] = files.size() - kept.size();
  out["provenance"] = nlohmann::json::parse(model_provenance(lm, "classify").to_json());
  const auto dump = [](const nlohmann::json& j) {
    return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  };
  if (!a.out.empty()) {
    if (lower(a.out).size() > 4 && lower(a.out).substr(a.out.size() - 4) == ".csv")
      write_file_atomic(a.out, csv.str());
    else
      write_file_atomic(a.out, dump(out));
  }
  if (ctx.json) {
    std::cout << dump(out) << std::flush;
  } else {
    std::cout << text.str();
    if (!a.out.empty()) std::cout << "wrote " << a.out << "\n";
  }
  return kept.size() == files.size() ? 0 : 1;
}

Command reg("classify", "Zero-shot classification: top-k labels with probabilities for many audio files",
            [](CLI::App& sub, Context& ctx) -> Runner {
              auto a = std::make_shared<ClassifyArgs>();
              sub.add_option("inputs", a->inputs, "Audio files or directories")->required();
              sub.add_option("--model", a->model, "Checkpoint: HF ClapModel dir, synclap dir or .safetensors")
                  ->required();
              sub.add_option("--labels", a->labels, "Comma-separated labels, e.g. \"rock,jazz,classical\"");
              sub.add_option("--labels-file", a->labels_file, "Labels, one per line");
              sub.add_option("--template", a->templates,
                             "Prompt template with {label} (repeatable: an ensemble, averaged in embedding space; "
                             "default \"This is a sound of {label}.\")");
              sub.add_option("-k,--top-k", a->top_k, "Labels shown per file")->capture_default_str();
              sub.add_option("--batch", a->batch, "Clips per forward pass")->capture_default_str();
              sub.add_option("--tokenizer", a->tokenizer, "Directory with vocab.json + merges.txt");
              sub.add_option("-o,--out", a->out, "Write the results: F.csv (file,rank,label,probability,logit) or F.json");
              sub.add_flag("-r,--recursive", a->recursive, "Look for audio files in subdirectories too");
              return [a, &ctx]() { return run_classify(*a, ctx); };
            });

}  // namespace
}  // namespace synclap::cli
