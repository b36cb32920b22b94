#include "model/clap_config.h"

#include <set>

#include "synclap/error.h"
#include "synclap/util.h"

namespace synclap {

namespace {

using json = nlohmann::json;

// j[key] if present and not null, else `fallback`. Type mismatches become synclap::Error.
template <typename T>
T value_or(const json& j, const char* key, const T& fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const json::exception& e) {
    throw Error(std::string("model config: bad value for '") + key + "': " + e.what());
  }
}

// Integers may be written as 12 or 12.0 by other tools.
int64_t int_or(const json& j, const char* key, int64_t fallback) {
  if (!j.is_object()) return fallback;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (it->is_number_integer() || it->is_number_unsigned()) return it->get<int64_t>();
  if (it->is_number_float()) {
    const double v = it->get<double>();
    if (v == double(int64_t(v))) return int64_t(v);
  }
  throw Error(std::string("model config: '") + key + "' must be an integer, got " + it->dump());
}

const std::set<std::string>& supported_activations() {
  static const std::set<std::string> s{"relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "silu", "swish", "tanh"};
  return s;
}

TextConfig text_from_json(const json& t) {
  TextConfig c;
  c.model_type = value_or<std::string>(t, "model_type", c.model_type);
  c.vocab_size = int_or(t, "vocab_size", c.vocab_size);
  c.hidden_size = int_or(t, "hidden_size", c.hidden_size);
  c.num_hidden_layers = int_or(t, "num_hidden_layers", c.num_hidden_layers);
  c.num_attention_heads = int_or(t, "num_attention_heads", c.num_attention_heads);
  c.intermediate_size = int_or(t, "intermediate_size", c.intermediate_size);
  c.max_position_embeddings = int_or(t, "max_position_embeddings", c.max_position_embeddings);
  c.type_vocab_size = int_or(t, "type_vocab_size", c.type_vocab_size);
  c.pad_token_id = int_or(t, "pad_token_id", c.pad_token_id);
  c.bos_token_id = int_or(t, "bos_token_id", c.bos_token_id);
  c.eos_token_id = int_or(t, "eos_token_id", c.eos_token_id);
  c.layer_norm_eps = value_or<double>(t, "layer_norm_eps", c.layer_norm_eps);
  c.hidden_act = value_or<std::string>(t, "hidden_act", c.hidden_act);
  c.position_embedding_type = value_or<std::string>(t, "position_embedding_type", c.position_embedding_type);
  c.hidden_dropout_prob = value_or<double>(t, "hidden_dropout_prob", c.hidden_dropout_prob);
  c.attention_probs_dropout_prob = value_or<double>(t, "attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  c.pooling = value_or<std::string>(t, "pooling", c.pooling);
  return c;
}

}  // namespace

int64_t TextConfig::max_tokens() const {
  // RoBERTa: position ids run pad+1 .. pad+L, so L <= max_position_embeddings - pad - 1 (514 -> 512).
  if (is_roberta()) return max_position_embeddings - pad_token_id - 1;
  return max_position_embeddings;
}

ClapConfig ClapConfig::from_json(const json& j) {
  if (!j.is_object()) throw Error("model config: expected a JSON object");
  ClapConfig c;
  const json& t = j.contains("text_config") && !j["text_config"].is_null() ? j["text_config"] : json::object();
  const json& a = j.contains("audio_config") && !j["audio_config"].is_null() ? j["audio_config"] : json::object();
  if (!t.is_object()) throw Error("model config: 'text_config' must be an object");
  if (!a.is_object()) throw Error("model config: 'audio_config' must be an object");
  c.text = text_from_json(t);
  c.audio_json = a;
  c.audio_model_type = value_or<std::string>(a, "model_type", c.audio_model_type);
  c.audio_hidden_size = int_or(a, "hidden_size", c.audio_hidden_size);
  c.enable_fusion = value_or<bool>(a, "enable_fusion", c.enable_fusion);
  c.projection_dim = int_or(j, "projection_dim", c.projection_dim);
  c.logit_scale_init_value = value_or<double>(j, "logit_scale_init_value", c.logit_scale_init_value);
  c.projection_hidden_act = value_or<std::string>(j, "projection_hidden_act", c.projection_hidden_act);
  c.name = value_or<std::string>(j, "synclap_name", value_or<std::string>(j, "_name_or_path", ""));
  c.description = value_or<std::string>(j, "synclap_description", "");
  c.validate();
  return c;
}

ClapConfig ClapConfig::from_json_string(const std::string& s) {
  json j;
  try {
    j = json::parse(s);
  } catch (const json::exception& e) {
    throw Error(std::string("model config: not valid JSON: ") + e.what());
  }
  return from_json(j);
}

ClapConfig ClapConfig::from_file(const std::string& path) {
  std::string text;
  try {
    text = read_file(path, size_t(16) << 20);
  } catch (const FileError&) {
    throw;
  } catch (const std::exception& e) {
    throw FileError(path, e.what());
  }
  try {
    return from_json_string(text);
  } catch (const FileError&) {
    throw;
  } catch (const std::exception& e) {
    throw FileError(path, e.what());
  }
}

json ClapConfig::to_json() const {
  json t = json::object();
  t["model_type"] = text.model_type;
  t["vocab_size"] = text.vocab_size;
  t["hidden_size"] = text.hidden_size;
  t["num_hidden_layers"] = text.num_hidden_layers;
  t["num_attention_heads"] = text.num_attention_heads;
  t["intermediate_size"] = text.intermediate_size;
  t["max_position_embeddings"] = text.max_position_embeddings;
  t["type_vocab_size"] = text.type_vocab_size;
  t["pad_token_id"] = text.pad_token_id;
  t["bos_token_id"] = text.bos_token_id;
  t["eos_token_id"] = text.eos_token_id;
  t["layer_norm_eps"] = text.layer_norm_eps;
  t["hidden_act"] = text.hidden_act;
  t["position_embedding_type"] = text.position_embedding_type;
  t["hidden_dropout_prob"] = text.hidden_dropout_prob;
  t["attention_probs_dropout_prob"] = text.attention_probs_dropout_prob;
  t["projection_dim"] = projection_dim;
  t["projection_hidden_act"] = projection_hidden_act;
  if (text.is_small()) t["pooling"] = text.pooling;

  json a = audio_json.is_object() ? audio_json : json::object();
  a["model_type"] = audio_model_type;
  if (a.contains("hidden_size") || audio_model_type == "clap_audio_model") a["hidden_size"] = audio_hidden_size;
  a["enable_fusion"] = enable_fusion;
  a["projection_dim"] = projection_dim;
  a["projection_hidden_act"] = projection_hidden_act;

  json j = json::object();
  j["model_type"] = "clap";
  if (!name.empty()) j["synclap_name"] = name;
  if (!description.empty()) j["synclap_description"] = description;
  j["text_config"] = t;
  j["audio_config"] = a;
  j["projection_dim"] = projection_dim;
  j["projection_hidden_act"] = projection_hidden_act;
  j["logit_scale_init_value"] = logit_scale_init_value;
  return j;
}

void ClapConfig::validate() const {
  auto fail = [](const std::string& m) { throw Error("model config: " + m); };
  if (!text.is_roberta() && !text.is_small())
    fail("unknown text_config.model_type '" + text.model_type + "' (expected clap_text_model or synclap_small_text)");
  if (text.vocab_size <= 0 || text.hidden_size <= 0 || text.num_hidden_layers < 0 || text.num_attention_heads <= 0 ||
      text.intermediate_size <= 0 || text.max_position_embeddings <= 0 || text.type_vocab_size <= 0)
    fail("text_config sizes must be positive");
  if (text.hidden_size % text.num_attention_heads != 0)
    fail("text hidden_size " + std::to_string(text.hidden_size) + " is not a multiple of num_attention_heads " +
         std::to_string(text.num_attention_heads));
  if (text.pad_token_id < 0 || text.pad_token_id >= text.vocab_size) fail("text pad_token_id out of range");
  if (text.is_roberta() && text.max_tokens() <= 0) fail("text max_position_embeddings too small for the pad id");
  if (text.position_embedding_type != "absolute")
    fail("only absolute text position embeddings are supported, not '" + text.position_embedding_type + "'");
  if (!supported_activations().count(text.hidden_act)) fail("unsupported text hidden_act '" + text.hidden_act + "'");
  if (!supported_activations().count(projection_hidden_act))
    fail("unsupported projection_hidden_act '" + projection_hidden_act + "'");
  if (text.is_small() && text.pooling != "mean" && text.pooling != "first")
    fail("text pooling must be 'mean' or 'first', not '" + text.pooling + "'");
  if (!(text.layer_norm_eps > 0)) fail("text layer_norm_eps must be positive");
  if (audio_hidden_size <= 0) fail("audio_config.hidden_size must be positive");
  if (projection_dim <= 0) fail("projection_dim must be positive");
  if (!(logit_scale_init_value > 0)) fail("logit_scale_init_value must be positive");
}

}  // namespace synclap
