// synclap: the training loop (see synclap/train.h for what a step does and what the run directory holds).
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "data/train_data.h"
#include "io/torch/checkpoint.h"
#include "model/lora.h"
#include "synclap/bpe_trainer.h"
#include "synclap/error.h"
#include "synclap/eval.h"
#include "synclap/tokenizer.h"
#include "synclap/train.h"
#include "synclap/util.h"
#include "train/distributed.h"
#include "train/train_internal.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace synclap {
namespace {

// ---------------------------------------------------------------------------------------------
// Signals: the first SIGINT/SIGTERM asks for a clean stop (checkpoint, then exit); a second one kills.
// ---------------------------------------------------------------------------------------------
std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int sig) {
  g_stop_signal.store(sig);
  std::signal(sig, SIG_DFL);
}

struct SignalScope {
  void (*old_int)(int), (*old_term)(int);
  SignalScope() {
    g_stop_signal.store(0);
    old_int = std::signal(SIGINT, on_stop_signal);
    old_term = std::signal(SIGTERM, on_stop_signal);
  }
  ~SignalScope() {
    std::signal(SIGINT, old_int);
    std::signal(SIGTERM, old_term);
  }
};

std::string step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(step));
  return buf;
}

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

bool has_tokenizer_files(const std::string& dir) {
  return !dir.empty() && fs::is_regular_file(fs::path(dir) / "vocab.json") && fs::is_regular_file(fs::path(dir) / "merges.txt");
}

void copy_tokenizer(const std::string& from, const std::string& to) {
  for (const char* f : {"vocab.json", "merges.txt"})
    write_file_atomic((fs::path(to) / f).string(), read_file((fs::path(from) / f).string()));
}

// Keeps items whose labels match the stage's subset; then at most max_items of them (in dataset order).
std::vector<TrainItem> stage_items(const std::vector<TrainItem>& all, const TrainStage& st) {
  std::vector<TrainItem> out;
  for (const auto& it : all) {
    bool ok = true;
    for (const auto& [key, values] : st.subset_labels) {
      if (!it.labels.contains(key)) {
        ok = false;
        break;
      }
      const auto& v = it.labels[key];
      std::vector<std::string> have;
      if (v.is_array())
        for (const auto& e : v) have.push_back(e.is_string() ? e.get<std::string>() : e.dump());
      else
        have.push_back(v.is_string() ? v.get<std::string>() : v.dump());
      bool any = false;
      for (const auto& h : have)
        if (std::find(values.begin(), values.end(), h) != values.end()) any = true;
      if (!any) {
        ok = false;
        break;
      }
    }
    if (ok) out.push_back(it);
    if (st.max_items > 0 && int64_t(out.size()) >= st.max_items) break;
  }
  const size_t kept = apply_label_captions(out, st.label_captions, st.keep_own_captions);
  if (kept > 0)
    std::fprintf(stderr,
                 "synclap train: stage \"%s\": %zu of %zu items lack the labels of every label_captions template and "
                 "keep their own captions\n",
                 st.name.c_str(), kept, out.size());
  return out;
}

struct GroupSlot {
  std::string group;  // audio | text | heads
  bool decay = true;
  double base_lr = 0, weight_decay = 0;
  std::vector<torch::Tensor> params;
};

struct TrainerState {
  int64_t step = 0;            // optimiser steps taken (incl. skipped ones)
  int64_t stage = 0;           // current stage
  int64_t stage_step = 0;      // steps done in the current stage
  int64_t epoch = 0;           // loader epoch within the stage
  int64_t batch_in_epoch = 0;  // next batch of that epoch
  int64_t epochs_done = 0;     // completed loader epochs over the run
  int64_t skipped = 0, samples = 0;
  json to_json() const {
    return {{"step", step},       {"stage", stage},     {"stage_step", stage_step}, {"epoch", epoch},
            {"batch_in_epoch", batch_in_epoch}, {"epochs_done", epochs_done}, {"skipped_steps", skipped},
            {"samples", samples}};
  }
  static TrainerState from_json(const json& j) {
    TrainerState s;
    s.step = j.at("step");
    s.stage = j.at("stage");
    s.stage_step = j.at("stage_step");
    s.epoch = j.at("epoch");
    s.batch_in_epoch = j.at("batch_in_epoch");
    s.epochs_done = j.value("epochs_done", int64_t(0));
    s.skipped = j.value("skipped_steps", int64_t(0));
    s.samples = j.value("samples", int64_t(0));
    return s;
  }
};

class Trainer {
 public:
  Trainer(const TrainConfig& cfg, const TrainOptions& opt) : cfg_(cfg), opt_(opt) {}
  TrainSummary run();

 private:
  void setup_dist();
  void setup_run_dir();
  void setup_model();
  void setup_tokenizer(const std::vector<TrainItem>& train_items);
  void setup_groups();
  void plan_stages(const std::vector<TrainItem>& train_items);
  void setup_label_prompts();
  // Token ids and attention masks [N, L] (padded to the longest), on the training device.
  std::pair<torch::Tensor, torch::Tensor> encode_texts(const std::vector<std::string>& texts) const;
  // The text tower's embeddings of a batch's captions, in `text_buckets` length-sorted groups (see TrainConfig).
  torch::Tensor embed_captions(const std::vector<std::string>& texts);
  std::unique_ptr<Loader> make_loader(const std::vector<TrainItem>& items, bool training) const;
  void apply_freeze(const TrainStage& st);
  void set_train_modes();
  void set_learning_rates(double factor);
  std::map<std::string, double> validate();
  void save_checkpoint_dir(bool final_model);
  void load_resume();
  void log_json(const json& j);
  torch::Tensor to_device(const torch::Tensor& t) const { return t.to(device_); }

  TrainConfig cfg_;
  TrainOptions opt_;
  std::unique_ptr<Distributed> dist_;
  bool main_rank_ = true;
  torch::Device device_{torch::kCPU};
  std::string run_dir_, data_;

  ClapModel model_{nullptr};
  ClapConfig model_config_;
  PreprocessContract contract_;        // inference contract stored with checkpoints
  PreprocessContract train_contract_;  // how training clips are cut
  std::unique_ptr<Tokenizer> tokenizer_;
  std::string tokenizer_dir_;
  int max_tokens_ = 77;
  std::unique_ptr<LoraAdapters> lora_;
  std::unique_ptr<WeightAverage> ema_;  // "ema_decay" > 0

  std::vector<GroupSlot> slots_;
  std::vector<torch::Tensor> all_params_;  // every parameter the optimiser holds
  std::unique_ptr<torch::optim::AdamW> optim_;
  std::set<std::string> frozen_;  // groups frozen now

  std::vector<TrainItem> train_items_, val_items_;
  std::vector<TrainStage> stages_;
  std::vector<std::vector<TrainItem>> stage_items_;  // each stage's training items (its subset)
  std::vector<int64_t> stage_steps_;
  // A label-prompt loss term (cfg_.label_prompts): its classes and prompts, the prompts' tokens (on the device),
  // and each stage item's class index (-100, which the loss ignores, for an item without the label).
  struct PromptTerm {
    LabelPromptSet set;
    torch::Tensor ids, mask;
    std::vector<torch::Tensor> stage_targets;  // per stage: [items] long
  };
  std::vector<PromptTerm> prompt_terms_;
  std::string label_prompts_meta_;  // JSON label -> templates, stored in each checkpoint's metadata; "" = none
  std::unique_ptr<Loader> val_loader_;               // made at the first validation, reused
  int64_t total_steps_ = 0;
  TrainerState state_;
  std::string resume_dir_;
  std::vector<std::string> bad_items_;
};

void Trainer::setup_dist() {
  if (opt_.world_size > 1) {
    DistOptions d;
    d.rank = opt_.rank;
    d.world_size = opt_.world_size;
    d.init = opt_.dist_init;
    dist_ = std::make_unique<Distributed>(d);
  }
  main_rank_ = opt_.rank == 0;
  if (cfg_.batch_size % opt_.world_size != 0)
    throw Error("batch_size " + std::to_string(cfg_.batch_size) + " is not divisible by the " +
                std::to_string(opt_.world_size) + " processes");
}

void Trainer::setup_run_dir() {
  if (opt_.out.empty()) throw Error("train: give the run directory (--out)");
  if (opt_.data.empty()) throw Error("train: give the training data (--data)");
  run_dir_ = opt_.out;
  data_ = opt_.data;
  const fs::path latest = fs::path(run_dir_) / "checkpoints" / "latest.json";
  if (opt_.resume) {
    if (!fs::exists(latest)) throw FileError(run_dir_, "has no checkpoint to resume from (checkpoints/latest.json)");
    const json j = json::parse(read_file(latest.string()));
    resume_dir_ = (fs::path(run_dir_) / "checkpoints" / j.at("checkpoint").get<std::string>()).string();
    if (!fs::is_directory(resume_dir_)) throw FileError(resume_dir_, "named by checkpoints/latest.json but missing");
  } else if (fs::exists(latest)) {
    throw FileError(run_dir_, "already holds a training run; use --resume to continue it, or another --out");
  }
  if (main_rank_) {
    fs::create_directories(fs::path(run_dir_) / "checkpoints");
    write_file_atomic((fs::path(run_dir_) / "config.json").string(), cfg_.to_json() + "\n");
    if (!opt_.resume) write_file_atomic((fs::path(run_dir_) / "metrics.jsonl").string(), "");
  }
}

void Trainer::setup_model() {
  if (!cfg_.device.empty() && cfg_.device != "cpu") device_ = torch::Device(cfg_.device);
  if (!cfg_.init.empty()) {
    LoadedModel lm = load_checkpoint(cfg_.init);
    model_ = lm.model;
    model_config_ = lm.config;
    contract_ = lm.contract;
  } else {
    if (!cfg_.model.empty()) model_config_ = ClapConfig::from_file(cfg_.model);
    else if (!cfg_.model_json.empty()) model_config_ = ClapConfig::from_json_string(cfg_.model_json);
    else throw Error("train: the config names no model (\"model\") and no checkpoint (\"init\")");
    model_ = ClapModel(model_config_);
    model_->init_weights(cfg_.seed);
    contract_ = hf_inference_contract(model_config_);
  }
  model_->to(device_);
  train_contract_ = contract_;
  if (!train_contract_.fusion) {
    train_contract_.truncation = cfg_.truncation == "first"    ? Truncation::First
                                 : cfg_.truncation == "middle" ? Truncation::Middle
                                                               : Truncation::RandTrunc;
  } else {
    train_contract_.truncation = Truncation::Fusion;
    train_contract_.chunk_choice = ChunkChoice::Random;
  }
  train_contract_.seed = uint32_t(cfg_.seed);
  max_tokens_ = int(std::min<int64_t>(77, model_config_.text.max_tokens()));
  if (main_rank_) write_file_atomic((fs::path(run_dir_) / "model_config.json").string(), model_config_.to_json().dump(2) + "\n");
}

void Trainer::setup_tokenizer(const std::vector<TrainItem>& train_items) {
  const std::string run_tok = (fs::path(run_dir_) / "tokenizer").string();
  std::string src;
  if (!cfg_.tokenizer.empty()) {
    if (!has_tokenizer_files(cfg_.tokenizer)) throw FileError(cfg_.tokenizer, "has no vocab.json + merges.txt");
    src = cfg_.tokenizer;
  } else if (opt_.resume && has_tokenizer_files(run_tok)) {
    src = run_tok;
  } else if (!cfg_.init.empty()) {
    fs::path p(cfg_.init);
    if (has_tokenizer_files(p.string())) src = p.string();
    else if (has_tokenizer_files(p.parent_path().string())) src = p.parent_path().string();
    else throw FileError(cfg_.init, "has no tokenizer (vocab.json + merges.txt); give one with \"tokenizer\"");
  }
  if (src.empty()) {
    // Learn a byte-level BPE vocabulary from the training captions (deterministic, so every rank agrees).
    BpeTrainerOptions bo;
    bo.vocab_size = int(model_config_.text.vocab_size);
    BpeTrainer trainer(bo);
    for (const auto& it : train_items) trainer.add_texts(it.captions);
    BpeVocabulary v = trainer.train();
    if (main_rank_) v.save(run_tok);
    tokenizer_ = std::make_unique<Tokenizer>(v.tokenizer());
  } else {
    tokenizer_ = std::make_unique<Tokenizer>(Tokenizer::from_dir(src));
    if (main_rank_ && fs::weakly_canonical(src) != fs::weakly_canonical(run_tok)) {
      fs::create_directories(run_tok);
      copy_tokenizer(src, run_tok);
    }
  }
  tokenizer_dir_ = run_tok;
  if (tokenizer_->vocab_size() > model_config_.text.vocab_size)
    throw Error("tokenizer has " + std::to_string(tokenizer_->vocab_size()) + " ids but the text tower only " +
                std::to_string(model_config_.text.vocab_size));
}

void Trainer::setup_groups() {
  std::set<std::string> lora_groups;
  if (cfg_.lora_rank > 0) {
    LoraSpec spec;
    spec.rank = cfg_.lora_rank;
    spec.alpha = cfg_.lora_alpha;
    spec.targets = cfg_.lora_targets;
    lora_ = std::make_unique<LoraAdapters>(*model_, spec, cfg_.seed ^ 0x10a4ULL);
    lora_->to(device_);
    for (const auto& n : lora_->target_names()) lora_groups.insert(param_group_of(n));
  }
  auto lr_of = [&](const std::string& g) {
    const double v = g == "audio" ? cfg_.lr_audio : g == "text" ? cfg_.lr_text : cfg_.lr_heads;
    return v >= 0 ? v : cfg_.lr;
  };
  std::map<std::pair<std::string, bool>, size_t> index;
  auto slot = [&](const std::string& g, bool decay) -> GroupSlot& {
    auto key = std::make_pair(g, decay);
    auto it = index.find(key);
    if (it == index.end()) {
      GroupSlot s;
      s.group = g;
      s.decay = decay;
      s.base_lr = lr_of(g);
      s.weight_decay = decay ? cfg_.weight_decay : 0.0;
      slots_.push_back(s);
      it = index.emplace(key, slots_.size() - 1).first;
    }
    return slots_[it->second];
  };
  for (const auto& kv : model_->named_parameters(true)) {
    const std::string g = param_group_of(kv.key());
    if (lora_groups.count(g)) {  // LoRA: the adapted tower's base weights stay as they are
      kv.value().set_requires_grad(false);
      continue;
    }
    slot(g, !param_no_decay(kv.key(), kv.value())).params.push_back(kv.value());
  }
  if (lora_)
    for (const auto& [name, p] : lora_->named_parameters()) slot(param_group_of(name), false).params.push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  for (const auto& s : slots_) {
    all_params_.insert(all_params_.end(), s.params.begin(), s.params.end());
    auto o = std::make_unique<torch::optim::AdamWOptions>(s.base_lr);
    o->betas(std::make_tuple(cfg_.beta1, cfg_.beta2)).eps(cfg_.eps).weight_decay(s.weight_decay);
    groups.emplace_back(s.params, std::move(o));
  }
  optim_ = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(cfg_.lr));
}

void Trainer::set_learning_rates(double factor) {
  auto& pg = optim_->param_groups();
  for (size_t i = 0; i < slots_.size(); ++i)
    static_cast<torch::optim::AdamWOptions&>(pg[i].options()).lr(slots_[i].base_lr * factor);
}

std::unique_ptr<Loader> Trainer::make_loader(const std::vector<TrainItem>& items, bool training) const {
  LoaderOptions lo;
  lo.contract = training ? train_contract_ : contract_;
  lo.batch_size = training ? cfg_.batch_size / opt_.world_size : 32;
  lo.rank = training ? opt_.rank : 0;
  lo.world_size = training ? opt_.world_size : 1;
  lo.seed = cfg_.seed;
  lo.shuffle = training;
  lo.drop_last = training;
  lo.workers = std::max(1, cfg_.workers);
  std::string cache = cfg_.cache_dir;
  if (cache == "auto") {
    fs::path d = fs::is_directory(data_) ? fs::path(data_) : fs::path(data_).parent_path();
    cache = (d / ".synclap-cache").string();
    std::error_code ec;
    fs::create_directories(cache, ec);
    if (ec || access(cache.c_str(), W_OK) != 0) cache = (fs::path(run_dir_) / "cache").string();
  } else if (cache == "none") {
    cache.clear();
  }
  lo.cache_dir = cache;
  lo.memory_cache_mb = cfg_.memory_cache_mb;
  if (training) {
    lo.audio_augment = cfg_.audio_augment;
    lo.audio_augment_prob = cfg_.audio_augment_prob;
    lo.caption_augment.prob = cfg_.caption_augment_prob;
    lo.random_caption = cfg_.random_caption;
  } else {
    lo.random_caption = false;
  }
  lo.progress = false;
  return std::make_unique<Loader>(items, lo);
}

std::pair<torch::Tensor, torch::Tensor> Trainer::encode_texts(const std::vector<std::string>& texts) const {
  auto enc = tokenizer_->encode_batch(texts, max_tokens_, TokenPadding::kLongest);
  auto ids = torch::from_blob(enc.input_ids.data(), {enc.batch, enc.length}, torch::kLong).clone();
  auto mask = torch::from_blob(enc.attention_mask.data(), {enc.batch, enc.length}, torch::kLong).clone();
  return {to_device(ids), to_device(mask)};
}

torch::Tensor Trainer::embed_captions(const std::vector<std::string>& texts) {
  auto [ids, mask] = encode_texts(texts);
  const int64_t n = ids.size(0), groups = std::min<int64_t>(cfg_.text_buckets, n);
  if (groups <= 1) return model_->text_embeddings(ids, mask);
  // Shortest first (ties in batch order), cut into groups of nearly equal size, each cut to its longest caption.
  const auto [sorted_len, order] = mask.sum(1).to(torch::kCPU).sort(c10::optional<bool>(true), 0, false);
  std::vector<torch::Tensor> parts;
  for (int64_t g = 0; g < groups; ++g) {  // groups <= n, so no group is empty
    const int64_t a = n * g / groups, b = n * (g + 1) / groups;
    const int64_t len = std::max<int64_t>(1, sorted_len[b - 1].item<int64_t>());
    const auto rows = to_device(order.slice(0, a, b));
    parts.push_back(model_->text_embeddings(ids.index_select(0, rows).slice(1, 0, len).contiguous(),
                                            mask.index_select(0, rows).slice(1, 0, len).contiguous()));
  }
  // Back to the batch's order: row order[i] of the batch is row i of the concatenation.
  return torch::cat(parts, 0).index_select(0, to_device(torch::argsort(order)));
}

// The label-prompt terms: classes from the training items, prompts tokenised once, and every stage item's class
// looked up once, so that a step only gathers its batch's rows.
void Trainer::setup_label_prompts() {
  if (cfg_.label_prompts.empty()) return;
  {  // what the model learns to classify with, for the checkpoints' metadata (synclap eval's default templates)
    json prompts = json::object();
    for (const auto& lp : cfg_.label_prompts) {
      json& list = prompts[lp.label];
      if (std::find(list.begin(), list.end(), lp.text_template) == list.end()) list.push_back(lp.text_template);
    }
    label_prompts_meta_ = prompts.dump();
  }
  std::vector<json> labels;
  for (const auto& it : train_items_) labels.push_back(it.labels);
  for (const auto& lp : cfg_.label_prompts) {
    PromptTerm term;
    term.set = make_label_prompt_set(lp.label, lp.text_template, lp.weight, labels);
    std::tie(term.ids, term.mask) = encode_texts(term.set.prompts);
    for (const auto& items : stage_items_) {
      std::vector<int64_t> y;
      for (const auto& it : items) {
        const int64_t c = term.set.class_of(it.labels);
        y.push_back(c >= 0 ? c : -100);
      }
      term.stage_targets.push_back(torch::tensor(y, torch::kLong));
    }
    if (main_rank_ && opt_.progress)
      std::fprintf(stderr, "synclap train: label prompts for \"%s\": %zu classes (\"%s\", ...), weight %g\n",
                   lp.label.c_str(), term.set.classes.size(), term.set.prompts[0].c_str(), lp.weight);
    prompt_terms_.push_back(std::move(term));
  }
}

void Trainer::plan_stages(const std::vector<TrainItem>& train_items) {
  stages_ = cfg_.stages;
  if (stages_.empty()) {
    TrainStage s;
    s.name = "main";
    s.freeze = cfg_.freeze;
    if (cfg_.max_steps > 0) s.steps = cfg_.max_steps;
    else s.epochs = double(cfg_.epochs);
    stages_.push_back(s);
  }
  total_steps_ = 0;
  for (auto& st : stages_) {
    for (const auto& g : cfg_.freeze)
      if (std::find(st.freeze.begin(), st.freeze.end(), g) == st.freeze.end()) st.freeze.push_back(g);
    stage_items_.push_back(stage_items(train_items, st));
    const auto& items = stage_items_.back();
    if (items.size() < size_t(cfg_.batch_size))
      throw Error("stage \"" + st.name + "\": " + std::to_string(items.size()) + " training items, fewer than one batch of " +
                  std::to_string(cfg_.batch_size));
    int64_t n = st.steps;
    if (n == 0) {
      const int64_t per_epoch = int64_t(items.size()) / cfg_.batch_size;
      n = std::max<int64_t>(1, int64_t(std::llround(st.epochs * double(per_epoch))));
    }
    stage_steps_.push_back(n);
    total_steps_ += n;
  }
  if (cfg_.max_steps > 0 && !cfg_.stages.empty()) total_steps_ = std::min(total_steps_, cfg_.max_steps);
}

void Trainer::apply_freeze(const TrainStage& st) {
  frozen_ = std::set<std::string>(st.freeze.begin(), st.freeze.end());
  for (const auto& s : slots_)
    for (const auto& p : s.params) {
      const bool frozen = frozen_.count(s.group) > 0;
      const_cast<torch::Tensor&>(p).set_requires_grad(!frozen);
      if (frozen) const_cast<torch::Tensor&>(p).mutable_grad() = torch::Tensor();
    }
  set_train_modes();
}

void Trainer::set_train_modes() {
  model_->train();
  // A frozen tower runs as in inference (no dropout, BatchNorm statistics kept).
  if (frozen_.count("audio")) model_->audio_model->eval();
  if (frozen_.count("text")) model_->text_model->eval();
  if (cfg_.freeze_batchnorm)
    for (const auto& m : model_->modules(false)) {
      if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m)) bn->eval();
      if (auto bn = std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(m)) bn->eval();
    }
}

std::map<std::string, double> Trainer::validate() {
  std::map<std::string, double> out;
  if (val_items_.empty()) return out;
  // With a weight average, validation measures the average (the model RUN/final will hold).
  WeightAverage::Applied average(ema_.get());
  model_->eval();
  torch::NoGradGuard ng;
  if (!val_loader_) val_loader_ = make_loader(val_items_, false);  // keeps its feature cache between epochs
  Loader* loader = val_loader_.get();
  loader->start_epoch(0, 0);
  std::vector<torch::Tensor> audio;
  std::vector<int64_t> clip_of_item(val_items_.size(), -1);
  int64_t clips = 0;
  Batch b;
  while (loader->next(b)) {
    audio.push_back(model_->audio_embeddings(to_device(b.features), to_device(b.is_longer)).to(torch::kCPU));
    for (auto i : b.items) clip_of_item[size_t(i)] = clips++;
  }
  std::vector<std::string> texts;
  std::vector<int64_t> text_clip;
  for (size_t i = 0; i < val_items_.size(); ++i) {
    if (clip_of_item[i] < 0) continue;
    for (const auto& c : val_items_[i].captions) {
      texts.push_back(c);
      text_clip.push_back(clip_of_item[i]);
    }
  }
  std::vector<torch::Tensor> text;
  for (size_t s = 0; s < texts.size(); s += 64) {
    std::vector<std::string> chunk(texts.begin() + s, texts.begin() + std::min(texts.size(), s + 64));
    auto [ids, mask] = encode_texts(chunk);
    text.push_back(model_->text_embeddings(ids, mask).to(torch::kCPU));
  }
  set_train_modes();
  if (audio.empty() || text.empty()) return out;
  auto a = torch::cat(audio).contiguous(), t = torch::cat(text).contiguous();
  auto sim = torch::matmul(t, a.t()).contiguous();
  auto r = retrieval_metrics(sim.data_ptr<float>(), sim.size(0), sim.size(1), text_clip);
  out["clips"] = double(clips);
  out["t2a_r1"] = r.text_to_audio.r1;
  out["t2a_r5"] = r.text_to_audio.r5;
  out["t2a_r10"] = r.text_to_audio.r10;
  out["t2a_map10"] = r.text_to_audio.map10;
  out["a2t_r1"] = r.audio_to_text.r1;
  out["a2t_r5"] = r.audio_to_text.r5;
  out["a2t_r10"] = r.audio_to_text.r10;
  out["a2t_map10"] = r.audio_to_text.map10;
  return out;
}

void Trainer::log_json(const json& j) {
  if (!main_rank_) return;
  const std::string path = (fs::path(run_dir_) / "metrics.jsonl").string();
  std::ofstream o(path, std::ios::app);
  o << j.dump() << "\n";
  o.flush();
  if (!o) throw FileError(path, "cannot append training metrics");
}

void Trainer::save_checkpoint_dir(bool final_model) {
  if (dist_) dist_->barrier();
  if (main_rank_) {
    const fs::path ckdir = fs::path(run_dir_) / "checkpoints";
    const std::string name = step_name(state_.step);
    const fs::path tmp = ckdir / ("." + name + ".tmp");
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    std::map<std::string, std::string> meta{{"synclap_step", std::to_string(state_.step)},
                                            {"synclap_run", run_dir_}};
    if (!label_prompts_meta_.empty()) meta["synclap_label_prompts"] = label_prompts_meta_;
    if (lora_) lora_->restore();
    save_checkpoint(*model_, contract_, tmp.string(), meta);
    copy_tokenizer(tokenizer_dir_, tmp.string());
    if (lora_) lora_->save((tmp / "lora.safetensors").string(), meta);
    if (ema_) ema_->save((tmp / "ema.safetensors").string());
    {
      torch::serialize::OutputArchive ar;
      optim_->save(ar);
      const std::string p = (tmp / "optimizer.pt").string();
      write_file_atomic(p, [&](const std::string& t) { ar.save_to(t); });
    }
    write_file_atomic((tmp / "trainer_state.json").string(), state_.to_json().dump(2) + "\n");
    const fs::path dst = ckdir / name;
    fs::remove_all(dst);
    fs::rename(tmp, dst);
    write_file_atomic((ckdir / "latest.json").string(), json{{"checkpoint", name}, {"step", state_.step}}.dump() + "\n");
    // Keep the newest keep_checkpoints step directories.
    std::vector<std::string> steps;
    for (const auto& e : fs::directory_iterator(ckdir))
      if (e.is_directory() && e.path().filename().string().rfind("step-", 0) == 0) steps.push_back(e.path().filename().string());
    std::sort(steps.begin(), steps.end());
    const int64_t keep = std::max<int64_t>(1, cfg_.keep_checkpoints);
    for (int64_t i = 0; i + keep < int64_t(steps.size()); ++i)
      if (steps[size_t(i)] != name) fs::remove_all(ckdir / steps[size_t(i)]);
    if (final_model) {
      // RUN/final: the finished model with LoRA merged, loadable by every command.
      const fs::path ftmp = fs::path(run_dir_) / ".final.tmp";
      fs::remove_all(ftmp);
      fs::create_directories(ftmp);
      if (lora_) lora_->merge();
      {
        WeightAverage::Applied average(ema_.get());  // the final model is the average; the step checkpoint: raw
        save_checkpoint(*model_, contract_, ftmp.string(), meta);
      }
      copy_tokenizer(tokenizer_dir_, ftmp.string());
      const fs::path fdst = fs::path(run_dir_) / "final";
      fs::remove_all(fdst);
      fs::rename(ftmp, fdst);
    }
    if (lora_ && !final_model) lora_->apply();
  }
  if (dist_) dist_->barrier();
}

void Trainer::load_resume() {
  const std::string weights = (fs::path(resume_dir_) / "model.safetensors").string();
  {
    torch::NoGradGuard ng;
    load_state(model_->state_tensors(), {weights});
  }
  if (lora_) {
    auto loaded = LoraAdapters::load(*model_, (fs::path(resume_dir_) / "lora.safetensors").string());
    auto dst = lora_->parameters();
    auto src = loaded.parameters();
    if (dst.size() != src.size()) throw FileError(resume_dir_, "LoRA adapters do not match the config");
    torch::NoGradGuard ng;
    for (size_t i = 0; i < dst.size(); ++i) dst[i].copy_(src[i]);
  }
  if (ema_) {
    const std::string ep = (fs::path(resume_dir_) / "ema.safetensors").string();
    if (!fs::exists(ep))
      throw FileError(resume_dir_, "has no ema.safetensors: the run was started without \"ema_decay\", so it cannot be "
                                   "resumed with it");
    ema_->load(ep);
  }
  const std::string op = (fs::path(resume_dir_) / "optimizer.pt").string();
  try {
    torch::serialize::InputArchive ar;
    ar.load_from(op);
    optim_->load(ar);
  } catch (const std::exception& e) {
    throw FileError(op, std::string("cannot restore the optimiser state: ") + e.what());
  }
  const std::string sp = (fs::path(resume_dir_) / "trainer_state.json").string();
  try {
    state_ = TrainerState::from_json(json::parse(read_file(sp)));
  } catch (const std::exception& e) {
    throw FileError(sp, std::string("bad trainer state: ") + e.what());
  }
  // Drop metric lines written after the checkpoint (they will be written again).
  if (main_rank_) {
    const std::string mp = (fs::path(run_dir_) / "metrics.jsonl").string();
    std::ifstream in(mp);
    std::string line, kept;
    while (std::getline(in, line)) {
      try {
        const json j = json::parse(line);
        if (j.value("step", int64_t(0)) <= state_.step) kept += line + "\n";
      } catch (...) {
      }
    }
    write_file_atomic(mp, kept);
  }
}

TrainSummary Trainer::run() {
  SignalScope signals;
  const double t0 = now_seconds();
  setup_dist();
  setup_run_dir();
  const int threads = cfg_.threads > 0 ? cfg_.threads : default_threads();
  torch::set_num_threads(threads);

  train_items_ = read_train_items(opt_.data, cfg_.train_split);
  if (train_items_.empty()) throw FileError(opt_.data, "has no training items (split \"" + cfg_.train_split + "\")");
  if (cfg_.max_val_items > 0 && !cfg_.val_split.empty()) {
    try {
      val_items_ = read_train_items(opt_.data, cfg_.val_split);
    } catch (const std::exception&) {
      val_items_.clear();
    }
    if (int64_t(val_items_.size()) > cfg_.max_val_items) val_items_.resize(size_t(cfg_.max_val_items));
  }
  setup_model();
  setup_tokenizer(train_items_);
  setup_groups();
  plan_stages(train_items_);
  setup_label_prompts();
  if (dist_) {
    torch::NoGradGuard ng;
    std::vector<torch::Tensor> all;
    for (auto& kv : model_->state_tensors()) all.push_back(kv.second);
    if (lora_)
      for (auto& p : lora_->parameters()) all.push_back(p);
    dist_->broadcast(all, 0);
  }
  if (cfg_.ema_decay > 0) ema_ = std::make_unique<WeightAverage>(model_->state_tensors(), cfg_.ema_decay);
  if (opt_.resume) load_resume();

  TrainSummary sum;
  std::map<std::string, double> last_val;
  const bool tty = isatty(2);
  double window_t0 = now_seconds();
  int64_t window_samples = 0, steps_this_run = 0;
  double loss_ema = std::nan(""), last_loss = std::nan("");
  bool interrupted = false;
  const double ln100 = std::log(100.0);

  // Validation after a finished epoch (main rank), logged and drawn; the other ranks wait for it.
  auto epoch_validation = [&]() {
    if (main_rank_) {
      if (lora_) lora_->apply();
      last_val = validate();
      if (!last_val.empty()) {
        json j{{"type", "val"}, {"step", state_.step}, {"epoch", state_.epochs_done}};
        for (const auto& [k, v] : last_val) j[k] = v;
        log_json(j);
        if (opt_.progress)
          std::fprintf(stderr, "%svalidation after epoch %lld: text->audio R@1 %.3f R@10 %.3f, audio->text R@1 %.3f R@10 %.3f\n",
                       tty ? "\n" : "", static_cast<long long>(state_.epochs_done), last_val["t2a_r1"],
                       last_val["t2a_r10"], last_val["a2t_r1"], last_val["a2t_r10"]);
      }
      write_training_report(run_dir_);
    }
    if (dist_) dist_->barrier();
  };

  while (state_.stage < int64_t(stages_.size()) && state_.step < total_steps_ && !interrupted) {
    const TrainStage& st = stages_[size_t(state_.stage)];
    apply_freeze(st);
    auto loader = make_loader(stage_items_[size_t(state_.stage)], true);
    loader->start_epoch(state_.epoch, state_.batch_in_epoch);
    const int64_t stage_len = stage_steps_[size_t(state_.stage)];
    Batch batch;
    while (state_.stage_step < stage_len && state_.step < total_steps_) {
      if (!loader->next(batch)) {
        // End of an epoch: validate, then start the next one.
        ++state_.epochs_done;
        ++state_.epoch;
        state_.batch_in_epoch = 0;
        epoch_validation();
        loader->start_epoch(state_.epoch, 0);
        continue;
      }
      // --- one step ---
      torch::manual_seed(mix64(cfg_.seed * 0x100000001b3ULL + uint64_t(state_.step)));
      set_learning_rates(lr_factor(state_.step, total_steps_, cfg_.warmup_steps, cfg_.schedule, cfg_.min_lr_ratio) *
                         st.lr_scale);
      if (lora_) lora_->apply();
      for (auto& p : all_params_) p.mutable_grad() = torch::Tensor();
      auto a = model_->audio_embeddings(to_device(batch.features), to_device(batch.is_longer));
      auto t = embed_captions(batch.captions);
      torch::Tensor keys;
      if (cfg_.positives == "same_caption") keys = to_device(caption_match_keys(batch.captions));
      auto loss = contrastive_loss(a, t, model_->logit_scale_a, model_->logit_scale_t, dist_.get(), keys);
      // Label prompts: each clip classified among its label's class prompts; this process's share of the mean
      // over the global batch (sum over local items / (world * local batch)).
      torch::Tensor label_loss = torch::zeros({}, a.options());
      if (!prompt_terms_.empty()) {
        const auto rows = torch::tensor(batch.items, torch::kLong);
        for (const auto& term : prompt_terms_) {
          const auto y = term.stage_targets[size_t(state_.stage)].index_select(0, rows);
          if (!(y >= 0).any().item<bool>()) continue;  // no clip of the batch has the label
          auto p = model_->text_embeddings(term.ids, term.mask);  // [C, D]
          auto logits = model_->logit_scale_a.exp() * torch::matmul(a, p.t());
          namespace F = torch::nn::functional;
          auto ce = F::cross_entropy(logits, to_device(y),
                                     F::CrossEntropyFuncOptions().reduction(torch::kSum).ignore_index(-100));
          label_loss = label_loss + term.set.weight * ce / double(opt_.world_size * a.size(0));
        }
      }
      (loss.loss + label_loss).backward();
      // [loss share, accuracy share, stop request, label-loss share] summed over processes.
      const bool stop_here = g_stop_signal.load() != 0 ||
                             (opt_.stop_after_steps >= 0 && steps_this_run + 1 >= opt_.stop_after_steps);
      auto stats = torch::tensor({loss.loss.item<double>(), loss.accuracy.item<double>(), stop_here ? 1.0 : 0.0,
                                  label_loss.item<double>()},
                                 torch::kDouble);
      if (dist_) {
        dist_->all_reduce_gradients(all_params_);
        std::vector<torch::Tensor> st_vec{stats};
        dist_->all_reduce_sum(st_vec);
      }
      const double global_loss = stats[0].item<double>();
      const double global_label_loss = stats[3].item<double>();
      const double accuracy = stats[1].item<double>() / double(opt_.world_size);
      double grad_norm = 0;
      {
        std::vector<torch::Tensor> with_grad;
        for (auto& p : all_params_)
          if (p.grad().defined()) with_grad.push_back(p);
        if (!with_grad.empty())
          grad_norm = torch::nn::utils::clip_grad_norm_(with_grad, cfg_.grad_clip > 0 ? cfg_.grad_clip : 1e30);
      }
      const bool finite = std::isfinite(global_loss) && std::isfinite(global_label_loss) && std::isfinite(grad_norm);
      if (finite) {
        optim_->step();
        torch::NoGradGuard ng;
        model_->logit_scale_a.clamp_(0.0, ln100);
        model_->logit_scale_t.clamp_(0.0, ln100);
        if (ema_) ema_->update(state_.step);
        last_loss = global_loss;
        loss_ema = std::isnan(loss_ema) ? global_loss : 0.9 * loss_ema + 0.1 * global_loss;
      } else {
        ++state_.skipped;
        if (opt_.progress && main_rank_)
          std::fprintf(stderr, "%sstep %lld: non-finite %s, step skipped (%lld so far)\n", tty ? "\n" : "",
                       static_cast<long long>(state_.step), std::isfinite(global_loss) ? "gradient" : "loss",
                       static_cast<long long>(state_.skipped));
      }
      ++state_.step;
      ++state_.stage_step;
      ++steps_this_run;
      state_.batch_in_epoch = batch.index + 1;
      state_.samples += cfg_.batch_size;
      window_samples += cfg_.batch_size;
      if (state_.step % cfg_.log_every == 0 || state_.step == total_steps_) {
        const double now = now_seconds();
        const double sps = window_samples / std::max(1e-9, now - window_t0);
        window_t0 = now;
        window_samples = 0;
        json lr = json::object();
        auto& pg = optim_->param_groups();
        for (size_t i = 0; i < slots_.size(); ++i)
          if (slots_[i].decay || !lr.contains(slots_[i].group))
            lr[slots_[i].group] = frozen_.count(slots_[i].group)
                                      ? 0.0
                                      : static_cast<torch::optim::AdamWOptions&>(pg[i].options()).lr();
        const double temp_a = std::exp(-model_->logit_scale_a.item<double>());
        const double temp_t = std::exp(-model_->logit_scale_t.item<double>());
        log_json({{"type", "train"}, {"step", state_.step}, {"epoch", state_.epochs_done}, {"stage", st.name},
                  {"loss", finite ? json(global_loss) : json(nullptr)}, {"loss_ema", loss_ema}, {"batch_accuracy", accuracy},
                  {"label_loss", prompt_terms_.empty() ? json(nullptr) : json(global_label_loss)},
                  {"grad_norm", std::isfinite(grad_norm) ? json(grad_norm) : json(nullptr)}, {"lr", lr},
                  {"temperature_a", temp_a}, {"temperature_t", temp_t}, {"samples_per_s", sps},
                  {"skipped_steps", state_.skipped}, {"elapsed_s", now - t0}});
        if (opt_.progress && main_rank_) {
          double lr_show = 0;
          for (auto it = lr.begin(); it != lr.end(); ++it) lr_show = std::max(lr_show, it->get<double>());
          const double per_step = (now - t0) / double(std::max<int64_t>(1, steps_this_run));
          const double eta = per_step * double(total_steps_ - state_.step);
          std::fprintf(stderr, "%sstep %lld/%lld  epoch %lld  loss %.4f  lr %.2e  temp %.4f  %.1f samples/s  ETA %s%s",
                       tty ? "\r" : "", static_cast<long long>(state_.step), static_cast<long long>(total_steps_),
                       static_cast<long long>(state_.epochs_done), loss_ema, lr_show, temp_a, sps,
                       format_duration(eta).c_str(), tty ? "   " : "\n");
          std::fflush(stderr);
        }
      }
      if (stats[2].item<double>() > 0) {
        interrupted = true;
        break;
      }
      if (cfg_.checkpoint_every > 0 && state_.step % cfg_.checkpoint_every == 0 && state_.step < total_steps_)
        save_checkpoint_dir(false);
    }
    if (interrupted) break;
    if (state_.stage_step >= stage_len) {
      // A stage that ends on its epoch's last batch has completed that epoch (the loader only reports the
      // end of an epoch on the next call, which a finished stage never makes).
      if (state_.batch_in_epoch > 0 && state_.batch_in_epoch >= loader->batches_per_epoch()) {
        ++state_.epochs_done;
        // Validated here unless the run ends now (the final validation follows).
        if (state_.stage + 1 < int64_t(stages_.size()) && state_.step < total_steps_) epoch_validation();
      }
      ++state_.stage;
      state_.stage_step = 0;
      state_.epoch = 0;
      state_.batch_in_epoch = 0;
    }
    if (state_.step >= total_steps_) break;
    for (const auto& b : loader->stats().bad_items)
      if (std::find(bad_items_.begin(), bad_items_.end(), b) == bad_items_.end()) bad_items_.push_back(b);
  }
  if (opt_.progress && main_rank_ && tty) std::fprintf(stderr, "\n");
  if (!interrupted && main_rank_) {
    if (lora_) lora_->apply();
    auto v = validate();
    if (!v.empty()) {
      last_val = v;
      json j{{"type", "val"}, {"step", state_.step}, {"epoch", state_.epochs_done}, {"final", true}};
      for (const auto& [k, x] : v) j[k] = x;
      log_json(j);
    }
  }
  save_checkpoint_dir(!interrupted);
  if (main_rank_) write_training_report(run_dir_);
  sum.steps = state_.step;
  sum.epochs_done = state_.epochs_done;
  sum.skipped_steps = state_.skipped;
  sum.samples = state_.samples;
  sum.final_loss = last_loss;
  sum.seconds = now_seconds() - t0;
  sum.samples_per_second = double(steps_this_run * cfg_.batch_size) / std::max(1e-9, sum.seconds);
  sum.interrupted = interrupted;
  sum.final_checkpoint = interrupted ? (fs::path(run_dir_) / "checkpoints" / step_name(state_.step)).string()
                                     : (fs::path(run_dir_) / "final").string();
  sum.bad_items = bad_items_;
  sum.last_val = last_val;
  if (main_rank_) {
    json j{{"steps", sum.steps},     {"epochs", sum.epochs_done}, {"skipped_steps", sum.skipped_steps},
           {"samples", sum.samples}, {"final_loss", std::isfinite(last_loss) ? json(last_loss) : json(nullptr)},
           {"seconds", sum.seconds}, {"samples_per_second", sum.samples_per_second},
           {"interrupted", interrupted}, {"checkpoint", sum.final_checkpoint}, {"bad_items", bad_items_},
           {"validation", last_val}};
    write_file_atomic((fs::path(run_dir_) / "summary.json").string(), j.dump(2) + "\n");
  }
  return sum;
}

}  // namespace

TrainSummary run_training(const TrainConfig& config, const TrainOptions& options) {
  Trainer t(config, options);
  return t.run();
}

}  // namespace synclap
