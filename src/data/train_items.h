// synclap: the items of a dataset — a directory with manifest.jsonl, or webdataset tar shards — as plain
// records (no LibTorch), shared by the training loader and the evaluation commands.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace synclap {

struct TrainItem {
  std::string id;                     // manifest "id" (or the tar member's key)
  std::string audio;                  // resolved path of the audio file (or "TAR::member" for shards)
  // Webdataset members: where the member's bytes lie in the (uncompressed) tar; -1 for plain files.
  int64_t tar_offset = -1, tar_size = -1;
  std::vector<std::string> captions;  // at least one
  nlohmann::json labels = nlohmann::json::object();
  std::string split;                  // train | val | test | heldout | "" (unknown)
  double duration = 0;                // seconds (0 = unknown)
};

// `source`: a dataset directory (DIR/manifest.jsonl; fields as synclap's synth/import write them, also
// audio|path|file, caption|text) or a directory of / path to webdataset .tar shards (NNNNNN.<audio ext> +
// NNNNNN.json with "text" (string or list), optional "labels", "split"). `split`: keep only items of that
// split ("" = all). Items without a caption are skipped with a warning. Throws FileError naming the file
// for an unreadable or malformed source.
std::vector<TrainItem> read_train_items(const std::string& source, const std::string& split = "");

// Every record of DIR/manifest.jsonl, in file order, including records without a caption (captions empty):
// audio|path|file|audio_path (resolved against DIR), captions (list) or caption|text, labels, split, id,
// duration. Throws FileError naming the file and line for a missing file, bad JSON or no audio path.
std::vector<TrainItem> read_manifest_records(const std::string& dir);

// Captions made from an item's labels, for a training stage's "label_captions": each "{name}" in `tmpl` is
// replaced by labels[name] (a string as is; a number as written in JSON; a list joined as "a, b and c"; "{{" and
// "}}" are literal braces). Returns false (and leaves `out` alone) when a named label is missing, null or empty,
// so a template applies only to the items that have all its labels. Throws Error for a malformed template
// (an unclosed "{", an empty name, a stray "}").
bool fill_label_caption(const std::string& tmpl, const nlohmann::json& labels, std::string& out);
// Checks a template's syntax (as above); throws Error naming `where`.
void check_label_caption_template(const std::string& tmpl, const std::string& where);
// Replaces each item's captions by the templates that apply to it (in template order), or with `keep_own` puts
// them before its own captions; an item to which none applies keeps its own captions. Returns how many items
// had no template that applies.
size_t apply_label_captions(std::vector<TrainItem>& items, const std::vector<std::string>& templates,
                            bool keep_own = false);

}  // namespace synclap
