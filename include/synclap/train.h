// synclap: contrastive training of CLAP models (from scratch or fine-tuning), in C++.
//
//   TrainConfig cfg = TrainConfig::from_file("configs/train/tiny-cpu.json");
//   TrainOptions opt; opt.data = "data/synth"; opt.out = "runs/a";
//   TrainSummary s = run_training(cfg, opt);
//
// What one step does: a batch of (clip, caption) pairs -> both towers -> L2-normalised embeddings ->
// symmetric cross-entropy over the batch's similarity matrix (audio->text with exp(logit_scale_a), text->audio
// with exp(logit_scale_t); the targets are the diagonal) -> backward -> (data parallel: gradients summed over
// processes) -> gradient-norm clipping -> AdamW with per-group learning rates (linear warm-up, cosine decay) ->
// logit scales clamped to [0, ln 100]. A step whose loss or gradient norm is not finite is skipped and counted.
//
// The run directory:
//   RUN/config.json          the resolved training config (everything needed to repeat the run)
//   RUN/model_config.json    the model's config
//   RUN/tokenizer/           vocab.json + merges.txt (given, from --init, or learnt from the training captions)
//   RUN/metrics.jsonl        one line per logged step ({"type":"train",...}) and per validation ({"type":"val",...})
//   RUN/report.html          loss, learning rate, temperature and validation recall curves (SVG), kept up to date
//   RUN/checkpoints/step-NNNNNNNN/   model.safetensors + model_config.json + preprocess.json + tokenizer files
//                            + trainer_state.json + optimizer.pt (+ lora.safetensors) (+ ema.safetensors, the
//                            weight average of "ema_decay"); written to a temporary
//                            directory, then renamed; RUN/checkpoints/latest.json names the newest
//   RUN/final/               the finished model (LoRA merged; the weight average with "ema_decay"), loadable by
//                            every synclap command
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace synclap {

// A stage of a staged schedule: its length, which parameter groups are frozen, a learning-rate factor, and
// optionally a subset of the training items.
struct TrainStage {
  std::string name;
  int64_t steps = 0;                  // length in steps (or epochs, if steps == 0)
  double epochs = 0;
  std::vector<std::string> freeze;    // of "audio", "text", "heads" (LoRA adapters follow their tower's group)
  double lr_scale = 1.0;
  // Subset: items whose labels[key] equals one of the values (all items when empty), and/or at most
  // max_items of them (0 = no limit).
  std::map<std::string, std::vector<std::string>> subset_labels;
  int64_t max_items = 0;
  // Captions from labels for this stage (a caption curriculum): templates such as "{genre} music with a {lead}
  // lead"; each item's captions are replaced by the templates whose labels it has (one is drawn per epoch, as
  // for its own captions); items that have none of them keep their own. Empty = the items' own captions.
  std::vector<std::string> label_captions;
  // With label_captions: add them to the item's own captions instead of replacing them, so each epoch draws
  // one caption from both (a mixed stage: canonical label words and the set's varied wording side by side).
  bool keep_own_captions = false;
};

// A label-prompt loss term: each training clip that has the label is also classified among prompts made from
// every value that label takes in the training set (template "a {} track" with label "genre": "a jazz track",
// "a rock track", ...): cross-entropy over exp(logit_scale_a) * cosine(audio, prompt), weighted. Both towers
// learn from it; it teaches the class words and the sounds that tell the classes apart, against every class at
// once rather than only the batch's other captions. No parameters are added.
struct LabelPrompt {
  std::string label;
  std::string text_template;  // contains "{}" once
  double weight = 1.0;
};

struct TrainConfig {
  // The model: a config file (configs/*.json), an inline ClapConfig JSON object (as text), or empty with `init`.
  std::string model;
  std::string model_json;             // inline config (JSON text), used when `model` is empty
  std::string init;                   // checkpoint to start from (HF ClapModel dir, synclap dir or .safetensors)
  std::string tokenizer;              // dir with vocab.json + merges.txt; "" = from init, else learnt from captions

  // Data
  std::string train_split = "train", val_split = "val";
  int batch_size = 32;                // global batch (split over processes)
  int workers = 2;
  // Caption batches are padded to their longest caption. With N > 1 the training step sorts a batch's captions
  // by length and runs the text tower on N groups, each padded to its own longest, then restores the order:
  // the same embeddings (up to rounding) for fewer padded tokens.
  int text_buckets = 1;
  std::string cache_dir = "auto";     // feature cache: "auto" = DATA/.synclap-cache (RUN/cache if DATA is read-only),
                                      // "none" = no disk cache, else a directory
  int64_t memory_cache_mb = 2048;
  std::string audio_augment;          // AugmentChain JSON ("" = none)
  double audio_augment_prob = 0.0;
  double caption_augment_prob = 0.0;
  bool random_caption = true;
  // Which pairs of a batch the contrastive loss counts as matches: "diagonal" (each clip with its own caption,
  // as CLIP) or "same_caption" (also every other pair whose captions are the same text, e.g. two "a fast techno
  // track" clips: the target row is spread evenly over them instead of pushing them apart).
  std::string positives = "diagonal";
  std::vector<LabelPrompt> label_prompts;  // extra loss terms (see LabelPrompt); empty = none
  int64_t max_val_items = 500;        // validation retrieval on at most this many clips (0 = no validation)
  std::string truncation = "rand_trunc";  // how long clips are cut for training: rand_trunc | middle | first

  // Optimisation
  int64_t epochs = 10;
  int64_t max_steps = 0;              // > 0: stop after this many steps (overrides epochs for the schedule)
  double lr = 1e-3;
  double lr_audio = -1, lr_text = -1, lr_heads = -1;  // < 0: use lr
  double weight_decay = 0.2;          // not applied to norms, biases, embeddings' 1-d params, logit scales
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-6;
  int64_t warmup_steps = 100;
  std::string schedule = "cosine";    // cosine | constant | linear
  double min_lr_ratio = 0.0;          // the decay ends at lr * min_lr_ratio
  double grad_clip = 1.0;             // max global gradient norm (0 = no clipping)
  // > 0: keep an exponential moving average of the weights (parameters and floating-point buffers such as
  // BatchNorm statistics), updated after every optimiser step with min(ema_decay, (1 + n) / (10 + n)) at the
  // n-th step. Validation and RUN/final then use the average; step checkpoints keep the raw weights and the
  // average (ema.safetensors), so --resume continues both exactly. 0 = off. Not with LoRA.
  double ema_decay = 0.0;
  bool freeze_batchnorm = false;      // BatchNorm layers use (and keep) their running statistics
  std::vector<std::string> freeze;    // groups frozen for the whole run (outside stages)
  std::vector<TrainStage> stages;     // empty = one stage over the whole run

  // LoRA (rank 0 = none): adapters on the matching linear layers; base weights of the adapted towers frozen.
  int64_t lora_rank = 0;
  double lora_alpha = 16;
  std::vector<std::string> lora_targets;

  uint64_t seed = 0;
  int64_t log_every = 10;             // steps between metrics lines
  int64_t checkpoint_every = 500;     // steps between checkpoints (0 = only at the end and on a stop)
  int64_t keep_checkpoints = 2;       // newest step checkpoints kept
  int threads = 0;                    // LibTorch intra-op threads (0 = all cores, minus the loader's)
  std::string device = "cpu";         // "cpu" or "cuda[:N]" in a CUDA build

  // Parses JSON (unknown keys are an error naming them). Throws Error/FileError.
  static TrainConfig from_json(const std::string& json_text, const std::string& origin = "<config>");
  static TrainConfig from_file(const std::string& path);
  std::string to_json() const;  // pretty, complete (every field)
};

struct TrainOptions {
  std::string data;                   // dataset directory (manifest.jsonl) or webdataset shards
  std::string out;                    // run directory
  bool resume = false;                // continue RUN from its latest checkpoint
  bool progress = true;
  // Data parallel (see docs/training.md): this process's rank, the number of processes, the rendezvous.
  int rank = 0, world_size = 1;
  std::string dist_init;              // "file://PATH" or "tcp://HOST:PORT"
  int64_t stop_after_steps = -1;      // tests: behave as if interrupted after this many steps of this run
};

struct TrainSummary {
  int64_t steps = 0, epochs_done = 0, skipped_steps = 0, samples = 0;
  double final_loss = 0, seconds = 0, samples_per_second = 0;
  bool interrupted = false;           // stopped by a signal (or stop_after_steps): a checkpoint was saved
  std::string final_checkpoint;       // RUN/final (or the last step checkpoint when interrupted)
  std::vector<std::string> bad_items;
  std::map<std::string, double> last_val;  // last validation metrics (t2a_r1, ..., a2t_map10)
};

// Runs (or resumes) training. Throws Error/FileError on bad configs, data or checkpoints.
TrainSummary run_training(const TrainConfig& config, const TrainOptions& options);

// Writes RUN/report.html from RUN/metrics.jsonl (also done by run_training as it goes).
void write_training_report(const std::string& run_dir);

}  // namespace synclap
