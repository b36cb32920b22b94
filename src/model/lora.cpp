#include "model/lora.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "io/torch/tensor_io.h"
#include "model/projection.h"
#include "synclap/error.h"
#include "synclap/safetensors.h"

namespace synclap {

namespace {

const char* kSpecKey = "synclap_lora";

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

// Shell-style '*' match of the whole string (iterative, with backtracking to the last star).
bool glob_match(const std::string& pattern, const std::string& s) {
  size_t p = 0, i = 0, star = std::string::npos, mark = 0;
  while (i < s.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = i;
    } else if (p < pattern.size() && pattern[p] == s[i]) {
      ++p;
      ++i;
    } else if (star != std::string::npos) {
      p = star + 1;
      i = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

// Attention projections: RoBERTa / Swin (attention.self.{query,key,value}, attention.output.dense) and the
// small text transformer (attn.qkv, attn.proj). The feed-forward "output.dense" of a layer is not one.
bool is_attention_projection(const std::string& name) {
  static const char* suffixes[] = {".attention.self.query", ".attention.self.key", ".attention.self.value",
                                   ".attention.output.dense", ".attn.qkv", ".attn.proj"};
  for (const char* s : suffixes)
    if (ends_with(name, s)) return true;
  return false;
}

bool pattern_matches(const std::string& pattern, const std::string& name) {
  if (pattern == "audio") return starts_with(name, "audio_model.") && is_attention_projection(name);
  if (pattern == "text") return starts_with(name, "text_model.") && is_attention_projection(name);
  if (pattern.find('*') != std::string::npos) return glob_match(pattern, name);
  return name.find(pattern) != std::string::npos;
}

}  // namespace

nlohmann::json LoraSpec::to_json() const { return {{"rank", rank}, {"alpha", alpha}, {"targets", targets}}; }

LoraSpec LoraSpec::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("LoRA spec: expected a JSON object");
  LoraSpec s;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    const auto& v = it.value();
    if (k == "rank") {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0) throw Error("LoRA spec: rank must be a positive integer");
      s.rank = v.get<int64_t>();
    } else if (k == "alpha") {
      if (!v.is_number() || !(v.get<double>() > 0.0) || !std::isfinite(v.get<double>()))
        throw Error("LoRA spec: alpha must be a positive number");
      s.alpha = v.get<double>();
    } else if (k == "targets") {
      if (!v.is_array()) throw Error("LoRA spec: targets must be an array of strings");
      for (const auto& t : v) {
        if (!t.is_string() || t.get<std::string>().empty())
          throw Error("LoRA spec: targets must be non-empty strings");
        s.targets.push_back(t.get<std::string>());
      }
    } else {
      throw Error("LoRA spec: unknown key '" + k + "' (expected rank, alpha, targets)");
    }
  }
  return s;
}

LoraAdapters::LoraAdapters(ClapModelImpl& model, const LoraSpec& spec, uint64_t seed) : spec_(spec) {
  if (spec.rank <= 0) throw Error("LoRA: rank must be positive");
  if (!(spec.alpha > 0.0)) throw Error("LoRA: alpha must be positive");
  std::vector<bool> used(spec.targets.size(), false);
  auto gen = make_generator(seed);
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    auto lin = std::dynamic_pointer_cast<torch::nn::LinearImpl>(item.value());
    if (!lin) continue;
    bool match = false;
    for (size_t i = 0; i < spec.targets.size(); ++i)
      if (pattern_matches(spec.targets[i], item.key())) used[i] = match = true;
    if (!match) continue;
    Adapter a;
    a.name = item.key();
    a.linear = torch::nn::Linear(lin);
    a.base = lin->named_parameters(/*recurse=*/false)["weight"];
    const int64_t out = a.base.size(0), in = a.base.size(1);
    if (spec.rank > std::min(in, out))
      throw Error("LoRA: rank " + std::to_string(spec.rank) + " exceeds the size of " + a.name + " [" +
                  std::to_string(out) + ", " + std::to_string(in) + "]");
    // A ~ U(-1/sqrt(in), 1/sqrt(in)) (Kaiming-uniform with a = sqrt(5), as nn.Linear), B = 0.
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    a.A = torch::empty({spec.rank, in}, torch::kFloat).uniform_(-bound, bound, gen);
    a.A = a.A.to(a.base.options()).set_requires_grad(true);
    a.B = torch::zeros({out, spec.rank}, a.base.options()).set_requires_grad(true);
    adapters_.push_back(std::move(a));
  }
  for (size_t i = 0; i < spec.targets.size(); ++i)
    if (!used[i]) throw Error("LoRA: target '" + spec.targets[i] + "' matches no linear layer of the model");
}

std::vector<std::string> LoraAdapters::target_names() const {
  std::vector<std::string> r;
  for (const auto& a : adapters_) r.push_back(a.name);
  return r;
}

std::vector<torch::Tensor> LoraAdapters::parameters() const {
  std::vector<torch::Tensor> r;
  for (const auto& a : adapters_) {
    r.push_back(a.A);
    r.push_back(a.B);
  }
  return r;
}

std::vector<std::pair<std::string, torch::Tensor>> LoraAdapters::named_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> r;
  for (const auto& a : adapters_) {
    r.emplace_back(a.name + ".lora_A", a.A);
    r.emplace_back(a.name + ".lora_B", a.B);
  }
  return r;
}

int64_t LoraAdapters::num_parameters() const {
  int64_t n = 0;
  for (const auto& a : adapters_) n += a.A.numel() + a.B.numel();
  return n;
}

double LoraAdapters::scale() const { return spec_.alpha / static_cast<double>(spec_.rank); }

void LoraAdapters::apply() {
  const double s = scale();
  for (auto& a : adapters_) {
    if (a.A.device() != a.base.device())
      throw Error("LoRA: adapters of " + a.name + " are on another device than the model (call to())");
    a.linear->weight = a.base.detach() + s * a.B.mm(a.A);
  }
}

void LoraAdapters::restore() {
  for (auto& a : adapters_) a.linear->weight = a.base;
}

void LoraAdapters::merge() {
  torch::NoGradGuard no_grad;
  const double s = scale();
  for (auto& a : adapters_) {
    a.base.add_(a.B.mm(a.A), s);
    a.B.zero_();
  }
  restore();
}

void LoraAdapters::to(const torch::Device& device) {
  torch::NoGradGuard no_grad;
  for (auto& a : adapters_) {
    a.A.set_data(a.A.to(device));
    a.B.set_data(a.B.to(device));
  }
}

void LoraAdapters::save(const std::string& path, const std::map<std::string, std::string>& metadata) const {
  auto meta = metadata;
  nlohmann::json spec = spec_.to_json();
  spec["modules"] = target_names();
  meta[kSpecKey] = spec.dump();
  write_tensors(path, named_parameters(), meta);  // atomic (SafetensorsWriter::write)
}

LoraAdapters LoraAdapters::load(ClapModelImpl& model, const std::string& path) {
  SafetensorsReader reader(path);
  auto it = reader.metadata().find(kSpecKey);
  if (it == reader.metadata().end()) throw FileError(path, "not a synclap LoRA file (no '" + std::string(kSpecKey) + "' metadata)");
  LoraSpec spec;
  try {
    auto j = nlohmann::json::parse(it->second);
    j.erase("modules");
    spec = LoraSpec::from_json(j);
  } catch (const std::exception& e) {
    throw FileError(path, std::string("bad LoRA metadata: ") + e.what());
  }
  LoraAdapters adapters;
  try {
    adapters = LoraAdapters(model, spec, 0);
  } catch (const Error& e) {
    throw FileError(path, e.what());
  }
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : adapters.named_parameters()) {
    expected.insert(name);
    if (!reader.contains(name)) throw FileError(path, "missing tensor " + name + " for this model");
    auto v = read_tensor(reader, name);
    if (v.sizes() != t.sizes())
      throw FileError(path, "tensor " + name + " has shape " + c10::str(v.sizes()) + ", the model needs " +
                                c10::str(t.sizes()));
    t.copy_(v);
  }
  for (const auto& n : reader.names())
    if (!expected.count(n)) throw FileError(path, "tensor " + n + " has no matching layer in this model");
  return adapters;
}

}  // namespace synclap
