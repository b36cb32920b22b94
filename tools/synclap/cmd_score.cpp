// synclap score --model CKPT --prompts CSV --audio DIR [--out F.csv|F.json]: CLAP score of generated audio,
// the cosine between each clip's and its prompt's embeddings, per item and mean.
// The CSV has a file column and a prompt column: a header naming them (file|audio|path, prompt|caption|text)
// or, without a header, file first and prompt second. Quoted fields ("a, b" and "" for a quote) are read.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "eval_support.h"
#include "synclap/error.h"
#include "synclap/util.h"

namespace fs = std::filesystem;

namespace synclap::cli {
namespace {

struct ScoreArgs {
  std::string model, tokenizer, prompts, audio, out;
};

// RFC 4180-style CSV: quoted fields may hold commas, quotes ("") and newlines.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(field);
        rows.push_back(row);
      }
      row.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (any || !field.empty()) {
    row.push_back(field);
    rows.push_back(row);
  }
  return rows;
}

int run_score(const ScoreArgs& a, const Context& ctx) {
  const auto rows = parse_csv(read_file(a.prompts));
  if (rows.empty()) throw FileError(a.prompts, "no rows");
  size_t fcol = 0, pcol = 1, first = 0;
  {
    int fi = -1, pi = -1;
    for (size_t i = 0; i < rows[0].size(); ++i) {
      const std::string h = lower(rows[0][i]);
      if (fi < 0 && (h == "file" || h == "audio" || h == "path" || h == "filename")) fi = int(i);
      if (pi < 0 && (h == "prompt" || h == "caption" || h == "text")) pi = int(i);
    }
    if (fi >= 0 && pi >= 0) {
      fcol = size_t(fi);
      pcol = size_t(pi);
      first = 1;
    }
  }
  std::vector<std::string> files, prompts, names;
  for (size_t r = first; r < rows.size(); ++r) {
    if (rows[r].size() <= std::max(fcol, pcol))
      throw FileError(a.prompts, "row " + std::to_string(r + 1) + ": needs a file and a prompt column");
    const std::string f = rows[r][fcol];
    names.push_back(f);
    files.push_back(fs::path(f).is_absolute() || a.audio.empty() ? f : (fs::path(a.audio) / f).string());
    prompts.push_back(rows[r][pcol]);
  }
  if (files.empty()) throw FileError(a.prompts, "no prompts");

  LoadedModel lm = load_model(a.model, a.tokenizer, ctx);
  std::vector<size_t> kept;
  const Embeddings audio = embed_audio_files(lm, files, ctx, &kept, "embedding clips");
  std::vector<std::string> kept_prompts;
  for (size_t i : kept) kept_prompts.push_back(prompts[i]);
  const Embeddings text = embed_texts(lm, kept_prompts, ctx);
  const std::vector<double> s = clap_scores(audio, text);
  double mean = 0;
  for (double v : s) mean += v;
  mean /= double(s.size());
  double var = 0;
  for (double v : s) var += (v - mean) * (v - mean);
  const double sd = s.size() > 1 ? std::sqrt(var / double(s.size() - 1)) : 0.0;

  Provenance prov = model_provenance(lm, "score");
  prov.dataset = "prompts=" + a.prompts + " audio=" + a.audio;
  prov.dataset_sha256 = sha256_file(a.prompts);
  nlohmann::json out;
  out["mean"] = mean;
  out["std"] = sd;
  out["items"] = nlohmann::json::array();
  for (size_t k = 0; k < kept.size(); ++k)
    out["items"].push_back({{"file", names[kept[k]]}, {"prompt", prompts[kept[k]]}, {"clap_score", s[k]}});
  out["scored"] = kept.size();
  out["failed"] = files.size() - kept.size();
  out["provenance"] = nlohmann::json::parse(prov.to_json());

  if (!a.out.empty()) {
    const bool csv = a.out.size() > 4 && lower(a.out.substr(a.out.size() - 4)) == ".csv";
    if (csv) {
      std::ostringstream o;
      o << "file,prompt,clap_score\n";
      for (size_t k = 0; k < kept.size(); ++k)
        o << csv_quote(names[kept[k]]) << ',' << csv_quote(prompts[kept[k]]) << ',' << fmt(s[k], 6) << '\n';
      write_file_atomic(a.out, o.str());
      write_file_atomic(a.out + ".provenance.json", out["provenance"].dump(2) + "\n");
    } else {
      write_file_atomic(a.out, out.dump(2) + "\n");
    }
    // The distribution as a picture beside the numbers: F.svg for F.csv / F.json.
    const std::string svg = picture_path(a.out);
    write_file_atomic(svg, histogram_svg(s, std::clamp(int(s.size()) / 4, 5, 30),
                                         "CLAP score of " + std::to_string(s.size()) + " clips vs their prompts",
                                         "cosine(audio, prompt)"));
  }
  if (ctx.json) {
    std::cout << out.dump(2) << std::endl;
  } else {
    std::vector<std::vector<std::string>> t = {{"file", "CLAP score", "prompt"}};
    for (size_t k = 0; k < kept.size(); ++k) {
      std::string p = prompts[kept[k]];
      if (p.size() > 60) p = p.substr(0, 57) + "...";
      t.push_back({names[kept[k]], fmt(s[k], 4), p});
    }
    std::cout << format_table(t) << "\nmean CLAP score " << fmt(mean, 4) << " (sd " << fmt(sd, 4) << ", " << kept.size()
              << " clips)\n";
    if (!a.out.empty())
      std::cout << "wrote " << a.out << " and " << picture_path(a.out) << "\n";
  }
  return kept.size() == files.size() ? 0 : 1;
}

Command reg("score", "CLAP score: cosine between each generated clip and its prompt (CSV in, CSV/JSON out)",
            [](CLI::App& sub, Context& ctx) -> Runner {
              auto a = std::make_shared<ScoreArgs>();
              sub.add_option("--model", a->model, "Checkpoint")->required();
              sub.add_option("--prompts", a->prompts, "CSV with file and prompt columns")->required();
              sub.add_option("--audio", a->audio, "Folder the CSV's file names are relative to");
              sub.add_option("--tokenizer", a->tokenizer, "Directory with vocab.json + merges.txt");
              sub.add_option("-o,--out", a->out, "Write per-item scores: F.csv or F.json (and F.svg: their histogram)");
              return [a, &ctx]() { return run_score(*a, ctx); };
            });

}  // namespace
}  // namespace synclap::cli
