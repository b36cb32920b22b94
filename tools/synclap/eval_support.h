// Shared by the evaluation commands (eval, score, fad): loading a model with its tokenizer, embedding
// audio files and texts, reading a dataset manifest, printing tables and writing results.
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "command.h"
#include "data/train_items.h"
#include "synclap/eval.h"
#include "synclap/model.h"

namespace synclap::cli {

struct LoadedModel {
  std::string path;
  Model model;
  std::string tokenizer_dir;  // vocab.json + merges.txt (loaded on first need)
};

// Loads CKPT. The tokenizer (vocab.json + merges.txt) is looked for in --tokenizer DIR, else in the
// checkpoint directory, else beside the checkpoint file. `options` gives batch sizes / device; its thread
// count is taken from ctx.threads (--threads).
LoadedModel load_model(const std::string& path, const std::string& tokenizer_dir, const Context& ctx,
                       ModelOptions options = {});

// The prompt templates `model` was trained to classify `label` with (its training config's label_prompts, which
// synclap train stores in the weights' metadata as synclap_label_prompts: ModelInfo::metadata); empty when it has
// none for that label. Malformed metadata is a FileError naming the checkpoint.
std::vector<std::string> trained_label_templates(const Model& model, const std::string& label);

// Decodes, prepares (the model's contract, or `contract` when given: e.g. the model's with
// Truncation::Windows) and embeds audio files. Files that fail are reported on stderr and left out; `kept`
// receives the indices (into files) of the embedded ones, `windows` (if given) the number of model windows
// averaged for each of them, `durations` (if given) their decoded length in seconds.
Embeddings embed_audio_files(const LoadedModel& m, const std::vector<std::string>& files, const Context& ctx,
                             std::vector<size_t>* kept, const std::string& label = "embedding audio",
                             const PreprocessContract* contract = nullptr, std::vector<int>* windows = nullptr,
                             std::vector<double>* durations = nullptr);
// Tokenizes (the model's max length) and embeds texts, in chunks with a progress line.
Embeddings embed_texts(LoadedModel& m, const std::vector<std::string>& texts, const Context& ctx,
                       const std::string& label = "embedding texts");

// Audio files named on the command line: files as given, directories expanded (audio files directly inside,
// sorted; recursively when `recursive`). A directory without audio files is an error.
std::vector<std::string> expand_audio_args(const std::vector<std::string>& args, bool recursive = false);

// Audio files directly inside `dir` (by extension), sorted.
std::vector<std::string> list_audio_files(const std::string& dir);

// One record of DIR/manifest.jsonl (data/train_items.h: audio resolved against DIR, captions, labels, split).
using ManifestItem = TrainItem;
// Every record (also those without captions); FileError when there is none.
std::vector<ManifestItem> read_manifest(const std::string& dir);

// Provenance with checkpoint hash, contract and long-audio policy of a loaded model.
Provenance model_provenance(const LoadedModel& m, const std::string& task);

// A plain text table: first row is the header.
std::string format_table(const std::vector<std::vector<std::string>>& rows);
std::string fmt(double v, int digits = 4);

// <s> ... </s> token ids of each text (truncated to max_length), with the tokenizer in `dir` (cached).
std::vector<std::vector<int64_t>> tokenize_texts(const std::string& dir, const std::vector<std::string>& texts,
                                                 int max_length);

// Lower-case ASCII copy; a CSV field quoted when it holds a comma, quote or line break.
std::string lower(std::string s);
std::string csv_quote(const std::string& s);
// The picture written beside a result file F.json / F.csv: F.svg (F.svg.svg if F is itself .svg).
std::string picture_path(const std::string& out);

// The whole command line, for provenance.
std::string& command_line();

}  // namespace synclap::cli
