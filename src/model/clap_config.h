// synclap: the configuration of a CLAP model (towers + heads), read from and written as JSON in the
// shape of HuggingFace's ClapConfig (`audio_config`, `text_config`, `projection_dim`, ...), so that an HF
// `config.json` is a valid synclap model config. synclap adds `model_type` values for its own towers:
//   text_config.model_type  "clap_text_model" (RoBERTa, HF)  | "synclap_small_text" (small pre-LN transformer)
//   audio_config.model_type "clap_audio_model" (HTS-AT, HF)   | other towers registered by their own files
// The audio tower's own settings stay as JSON here (`audio_json`): the tower parses them itself
// (e.g. HtsatConfig from_hf_audio_config), so this file does not depend on any audio tower.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace synclap {

// The text tower. For RoBERTa the fields mean what they mean in HF ClapTextConfig.
struct TextConfig {
  std::string model_type = "clap_text_model";
  int64_t vocab_size = 50265;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 514;
  int64_t type_vocab_size = 1;
  int64_t pad_token_id = 1;
  int64_t bos_token_id = 0;
  int64_t eos_token_id = 2;
  double layer_norm_eps = 1e-12;  // HF ClapTextConfig default (RoBERTa itself uses 1e-5)
  std::string hidden_act = "gelu";
  std::string position_embedding_type = "absolute";
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  // synclap_small_text only: "mean" (masked mean over tokens) or "first" (the first token).
  std::string pooling = "mean";

  bool is_roberta() const { return model_type == "clap_text_model" || model_type == "roberta"; }
  bool is_small() const { return model_type == "synclap_small_text"; }
  // The longest token sequence the tower accepts (RoBERTa positions start at pad_token_id + 1).
  int64_t max_tokens() const;
};

// The whole model.
struct ClapConfig {
  TextConfig text;
  nlohmann::json audio_json = nlohmann::json::object();  // HF-shaped audio_config, parsed by the tower
  std::string audio_model_type = "clap_audio_model";
  // The audio tower's pooled width (= audio projection input): audio_config.hidden_size; ClapModel sets it
  // from the tower it builds (towers with other defaults, e.g. cnn_audio, report their own).
  int64_t audio_hidden_size = 768;
  bool enable_fusion = false;
  // Both projection heads (HF's ClapConfig copies these into both tower configs, overriding theirs).
  int64_t projection_dim = 512;
  double logit_scale_init_value = 1.0 / 0.07;
  std::string projection_hidden_act = "relu";
  std::string name;         // optional, e.g. "htsat-tiny" (JSON: synclap_name)
  std::string description;  // optional (JSON: synclap_description)

  // From an HF ClapConfig JSON (config.json / ClapConfig.to_json_string()). Missing keys take HF's
  // ClapConfig defaults. Throws Error on values that cannot build a model.
  static ClapConfig from_json(const nlohmann::json& j);
  static ClapConfig from_json_string(const std::string& s);
  // Reads a file; throws FileError naming it.
  static ClapConfig from_file(const std::string& path);
  // HF-shaped JSON that from_json reads back to the same config.
  nlohmann::json to_json() const;

  // Checks consistency (hidden sizes divisible by heads, projection dims equal, ...); throws Error.
  void validate() const;
};

}  // namespace synclap
