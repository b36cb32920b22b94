// synclap: the training config as JSON (flat keys; "stages" and "lora" are objects).
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "data/train_items.h"
#include "synclap/error.h"
#include "synclap/train.h"

namespace synclap {
namespace {

using nlohmann::json;

template <typename T>
void take(const json& j, const char* key, T& out, const std::string& origin) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return;
  try {
    out = it->get<T>();
  } catch (const std::exception& e) {
    throw Error(origin + ": \"" + key + "\" has the wrong type (" + e.what() + ")");
  }
}

void check_keys(const json& j, const std::set<std::string>& known, const std::string& where) {
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key())) throw Error(where + ": unknown key \"" + it.key() + "\"");
}

// j[key], when present, must be an array of objects with only `known` keys; calls fn(object, "ORIGIN: key[i]").
void for_each_object(const json& j, const char* key, const std::string& origin, const std::set<std::string>& known,
                     const std::function<void(const json&, const std::string&)>& fn) {
  if (!j.contains(key)) return;
  if (!j[key].is_array()) throw Error(origin + ": \"" + key + "\" must be an array");
  int k = 0;
  for (const auto& e : j[key]) {
    const std::string where = origin + ": " + key + "[" + std::to_string(k++) + "]";
    if (!e.is_object()) throw Error(where + " must be an object");
    check_keys(e, known, where);
    fn(e, where);
  }
}

const std::set<std::string> kGroups = {"audio", "text", "heads"};

void check_groups(const std::vector<std::string>& groups, const std::string& where) {
  for (const auto& g : groups)
    if (!kGroups.count(g)) throw Error(where + ": unknown parameter group \"" + g + "\" (audio, text or heads)");
}

}  // namespace

TrainConfig TrainConfig::from_json(const std::string& json_text, const std::string& origin) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const std::exception& e) {
    throw Error(origin + ": not valid JSON (" + e.what() + ")");
  }
  if (!j.is_object()) throw Error(origin + ": a training config must be a JSON object");
  check_keys(j,
             {"model", "init", "tokenizer", "train_split", "val_split", "batch_size", "workers", "text_buckets", "cache_dir",
              "memory_cache_mb", "audio_augment", "audio_augment_prob", "caption_augment_prob", "random_caption",
              "positives", "label_prompts",
              "max_val_items", "truncation", "epochs", "max_steps", "lr", "lr_audio", "lr_text", "lr_heads",
              "weight_decay", "betas", "eps", "warmup_steps", "schedule", "min_lr_ratio", "grad_clip",
              "freeze_batchnorm", "freeze", "stages", "lora", "ema_decay", "seed", "log_every", "checkpoint_every",
              "keep_checkpoints", "threads", "device", "comment"},
             origin);
  TrainConfig c;
  if (j.contains("model")) {
    if (j["model"].is_string()) c.model = j["model"].get<std::string>();
    else if (j["model"].is_object()) c.model_json = j["model"].dump();
    else throw Error(origin + ": \"model\" must be a config path or a model config object");
  }
  take(j, "init", c.init, origin);
  take(j, "tokenizer", c.tokenizer, origin);
  take(j, "train_split", c.train_split, origin);
  take(j, "val_split", c.val_split, origin);
  take(j, "batch_size", c.batch_size, origin);
  take(j, "workers", c.workers, origin);
  take(j, "text_buckets", c.text_buckets, origin);
  take(j, "cache_dir", c.cache_dir, origin);
  take(j, "memory_cache_mb", c.memory_cache_mb, origin);
  if (j.contains("audio_augment") && !j["audio_augment"].is_null())
    c.audio_augment = j["audio_augment"].is_string() ? j["audio_augment"].get<std::string>() : j["audio_augment"].dump();
  take(j, "audio_augment_prob", c.audio_augment_prob, origin);
  take(j, "caption_augment_prob", c.caption_augment_prob, origin);
  take(j, "random_caption", c.random_caption, origin);
  take(j, "positives", c.positives, origin);
  if (c.positives != "diagonal" && c.positives != "same_caption")
    throw Error(origin + ": \"positives\" must be \"diagonal\" or \"same_caption\", not \"" + c.positives + "\"");
  for_each_object(j, "label_prompts", origin, {"label", "template", "weight"}, [&](const json& e, const std::string& where) {
    LabelPrompt lp;
    take(e, "label", lp.label, where);
    take(e, "template", lp.text_template, where);
    take(e, "weight", lp.weight, where);
    const size_t at = lp.text_template.find("{}");
    if (lp.label.empty()) throw Error(where + ": \"label\" is missing");
    if (at == std::string::npos || lp.text_template.find("{}", at + 2) != std::string::npos)
      throw Error(where + ": \"template\" must contain \"{}\" exactly once");
    if (!(lp.weight > 0) || !std::isfinite(lp.weight)) throw Error(where + ": \"weight\" must be > 0");
    c.label_prompts.push_back(lp);
  });
  take(j, "max_val_items", c.max_val_items, origin);
  take(j, "truncation", c.truncation, origin);
  take(j, "epochs", c.epochs, origin);
  take(j, "max_steps", c.max_steps, origin);
  take(j, "lr", c.lr, origin);
  take(j, "lr_audio", c.lr_audio, origin);
  take(j, "lr_text", c.lr_text, origin);
  take(j, "lr_heads", c.lr_heads, origin);
  take(j, "weight_decay", c.weight_decay, origin);
  if (j.contains("betas")) {
    std::vector<double> b;
    take(j, "betas", b, origin);
    if (b.size() != 2) throw Error(origin + ": \"betas\" must be [beta1, beta2]");
    c.beta1 = b[0];
    c.beta2 = b[1];
  }
  take(j, "eps", c.eps, origin);
  take(j, "warmup_steps", c.warmup_steps, origin);
  take(j, "schedule", c.schedule, origin);
  take(j, "min_lr_ratio", c.min_lr_ratio, origin);
  take(j, "grad_clip", c.grad_clip, origin);
  take(j, "ema_decay", c.ema_decay, origin);
  take(j, "freeze_batchnorm", c.freeze_batchnorm, origin);
  take(j, "freeze", c.freeze, origin);
  take(j, "seed", c.seed, origin);
  take(j, "log_every", c.log_every, origin);
  take(j, "checkpoint_every", c.checkpoint_every, origin);
  take(j, "keep_checkpoints", c.keep_checkpoints, origin);
  take(j, "threads", c.threads, origin);
  take(j, "device", c.device, origin);
  const std::set<std::string> stage_keys = {"name",     "steps",     "epochs",         "freeze",           "lr_scale",
                                            "subset",   "max_items", "label_captions", "keep_own_captions"};
  for_each_object(j, "stages", origin, stage_keys, [&](const json& s, const std::string& where) {
    TrainStage st;
    take(s, "name", st.name, where);
    take(s, "steps", st.steps, where);
    take(s, "epochs", st.epochs, where);
    take(s, "freeze", st.freeze, where);
    take(s, "lr_scale", st.lr_scale, where);
    take(s, "max_items", st.max_items, where);
    take(s, "label_captions", st.label_captions, where);
    take(s, "keep_own_captions", st.keep_own_captions, where);
    if (st.keep_own_captions && st.label_captions.empty())
      throw Error(where + ": \"keep_own_captions\" needs \"label_captions\"");
    for (const auto& t : st.label_captions) check_label_caption_template(t, where);
    if (s.contains("subset")) {
      if (!s["subset"].is_object()) throw Error(where + ": \"subset\" must map label names to value lists");
      for (auto it = s["subset"].begin(); it != s["subset"].end(); ++it) {
        std::vector<std::string> values;
        if (it->is_string()) values.push_back(it->get<std::string>());
        else if (it->is_array()) for (const auto& v : *it) values.push_back(v.is_string() ? v.get<std::string>() : v.dump());
        else throw Error(where + ": subset \"" + it.key() + "\" must be a value or a list of values");
        st.subset_labels[it.key()] = values;
      }
    }
    if (st.steps < 0 || st.epochs < 0 || (st.steps == 0 && st.epochs == 0))
      throw Error(where + ": give a positive \"steps\" or \"epochs\"");
    if (!(st.lr_scale >= 0)) throw Error(where + ": \"lr_scale\" must be >= 0");
    check_groups(st.freeze, where);
    c.stages.push_back(st);
  });
  if (j.contains("lora") && !j["lora"].is_null()) {
    const auto& l = j["lora"];
    const std::string where = origin + ": lora";
    if (!l.is_object()) throw Error(where + " must be an object {rank, alpha, targets}");
    check_keys(l, {"rank", "alpha", "targets"}, where);
    take(l, "rank", c.lora_rank, where);
    take(l, "alpha", c.lora_alpha, where);
    take(l, "targets", c.lora_targets, where);
    if (c.lora_rank < 0) throw Error(where + ": rank must be >= 0");
    if (c.lora_rank > 0 && c.lora_targets.empty()) throw Error(where + ": give the target layers (e.g. [\"text\"])");
  }
  if (c.batch_size < 2) throw Error(origin + ": \"batch_size\" must be at least 2 (the loss contrasts the batch)");
  if (c.workers < 0) throw Error(origin + ": \"workers\" must be >= 0");
  if (c.text_buckets < 1) throw Error(origin + ": \"text_buckets\" must be >= 1");
  if (c.epochs < 0 || c.max_steps < 0 || (c.epochs == 0 && c.max_steps == 0 && c.stages.empty()))
    throw Error(origin + ": give \"epochs\", \"max_steps\" or \"stages\"");
  if (!(c.lr > 0)) throw Error(origin + ": \"lr\" must be > 0");
  if (c.schedule != "cosine" && c.schedule != "constant" && c.schedule != "linear")
    throw Error(origin + ": \"schedule\" must be cosine, constant or linear");
  if (c.truncation != "rand_trunc" && c.truncation != "middle" && c.truncation != "first")
    throw Error(origin + ": \"truncation\" must be rand_trunc, middle or first");
  if (!(c.weight_decay >= 0) || !(c.grad_clip >= 0) || c.warmup_steps < 0)
    throw Error(origin + ": weight_decay, grad_clip and warmup_steps must be >= 0");
  if (!(c.beta1 >= 0 && c.beta1 < 1 && c.beta2 >= 0 && c.beta2 < 1)) throw Error(origin + ": betas must be in [0, 1)");
  if (c.audio_augment_prob < 0 || c.audio_augment_prob > 1 || c.caption_augment_prob < 0 || c.caption_augment_prob > 1)
    throw Error(origin + ": augmentation probabilities must be in [0, 1]");
  if (!(c.ema_decay >= 0 && c.ema_decay < 1)) throw Error(origin + ": \"ema_decay\" must be in [0, 1) (0 = no weight average)");
  if (c.ema_decay > 0 && c.lora_rank > 0)
    throw Error(origin + ": \"ema_decay\" and \"lora\" cannot be combined (the average is kept of the full weights)");
  if (c.log_every < 1) c.log_every = 1;
  check_groups(c.freeze, origin + ": freeze");
  return c;
}

TrainConfig TrainConfig::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path, "cannot open training config");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return from_json(ss.str(), path);
  } catch (const FileError&) {
    throw;
  } catch (const Error& e) {
    throw FileError(path, e.what());
  }
}

std::string TrainConfig::to_json() const {
  json j;
  if (!model.empty()) j["model"] = model;
  else if (!model_json.empty()) j["model"] = json::parse(model_json);
  j["init"] = init;
  j["tokenizer"] = tokenizer;
  j["train_split"] = train_split;
  j["val_split"] = val_split;
  j["batch_size"] = batch_size;
  j["workers"] = workers;
  j["text_buckets"] = text_buckets;
  j["cache_dir"] = cache_dir;
  j["memory_cache_mb"] = memory_cache_mb;
  if (audio_augment.empty()) j["audio_augment"] = "";
  else {
    try {
      j["audio_augment"] = json::parse(audio_augment);
    } catch (...) {
      j["audio_augment"] = audio_augment;
    }
  }
  j["audio_augment_prob"] = audio_augment_prob;
  j["caption_augment_prob"] = caption_augment_prob;
  j["random_caption"] = random_caption;
  j["positives"] = positives;
  j["label_prompts"] = json::array();
  for (const auto& lp : label_prompts)
    j["label_prompts"].push_back({{"label", lp.label}, {"template", lp.text_template}, {"weight", lp.weight}});
  j["max_val_items"] = max_val_items;
  j["truncation"] = truncation;
  j["epochs"] = epochs;
  j["max_steps"] = max_steps;
  j["lr"] = lr;
  j["lr_audio"] = lr_audio;
  j["lr_text"] = lr_text;
  j["lr_heads"] = lr_heads;
  j["weight_decay"] = weight_decay;
  j["betas"] = {beta1, beta2};
  j["eps"] = eps;
  j["warmup_steps"] = warmup_steps;
  j["schedule"] = schedule;
  j["min_lr_ratio"] = min_lr_ratio;
  j["grad_clip"] = grad_clip;
  j["ema_decay"] = ema_decay;
  j["freeze_batchnorm"] = freeze_batchnorm;
  j["freeze"] = freeze;
  j["stages"] = json::array();
  for (const auto& s : stages) {
    json o;
    o["name"] = s.name;
    if (s.steps > 0) o["steps"] = s.steps;
    else o["epochs"] = s.epochs;
    o["freeze"] = s.freeze;
    o["lr_scale"] = s.lr_scale;
    if (!s.subset_labels.empty()) o["subset"] = s.subset_labels;
    if (s.max_items > 0) o["max_items"] = s.max_items;
    if (!s.label_captions.empty()) o["label_captions"] = s.label_captions;
    if (s.keep_own_captions) o["keep_own_captions"] = true;
    j["stages"].push_back(o);
  }
  if (lora_rank > 0) j["lora"] = {{"rank", lora_rank}, {"alpha", lora_alpha}, {"targets", lora_targets}};
  j["seed"] = seed;
  j["log_every"] = log_every;
  j["checkpoint_every"] = checkpoint_every;
  j["keep_checkpoints"] = keep_checkpoints;
  j["threads"] = threads;
  j["device"] = device;
  return j.dump(2);
}

}  // namespace synclap
