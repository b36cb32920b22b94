#include "io/torch/checkpoint.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "io/torch/tensor_io.h"
#include "synclap/error.h"
#include "synclap/safetensors.h"
#include "synclap/util.h"

namespace synclap {

namespace fs = std::filesystem;

namespace {

// Drops the pages that lie wholly inside [data, data + bytes) of a read-only file mapping from this process's
// resident memory once a tensor has been copied out of it, so that loading a model costs about one copy of
// the weights in peak memory instead of two (mapped file pages + tensors). Each tensor is read once; pages
// shared with a neighbouring tensor are kept. (With the reader's in-memory fallback instead of a mapping, the
// discarded pages are ones already copied.)
void release_pages(const uint8_t* data, size_t bytes) {
  static const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  if (!data || bytes < page) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(data) + page - 1) / page * page;
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes) / page * page;
  if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, MADV_DONTNEED);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}

// "a, b, c and 12 more"
std::string list_str(const std::vector<std::string>& v, size_t max_items = 12) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max_items; ++i) out += (i ? ", " : "") + v[i];
  if (v.size() > max_items) out += " and " + std::to_string(v.size() - max_items) + " more";
  return out;
}

bool is_float_dtype(DType d) { return d == DType::F64 || d == DType::F32 || d == DType::F16 || d == DType::BF16; }

std::string path_join(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }

bool is_file(const std::string& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

}  // namespace

bool is_recomputable_buffer(const std::string& name) {
  static const char* const suffixes[] = {"embeddings.position_ids", "embeddings.token_type_ids",
                                         "relative_position_index", "num_batches_tracked"};
  for (const char* s : suffixes) {
    const std::string suf = s;
    if (name == suf || ends_with(name, "." + suf)) return true;
  }
  return false;
}

StateLoadReport load_state(const std::vector<std::pair<std::string, torch::Tensor>>& targets,
                           const std::vector<std::string>& files) {
  if (files.empty()) throw Error("load_state: no checkpoint files");
  std::vector<std::unique_ptr<SafetensorsReader>> readers;
  std::map<std::string, const SafetensorsReader*> where;
  for (const auto& f : files) {
    readers.push_back(std::make_unique<SafetensorsReader>(f));
    for (const auto& n : readers.back()->names()) {
      if (where.count(n)) throw FileError(f, "tensor '" + n + "' is also in " + where[n]->path());
      where[n] = readers.back().get();
    }
  }
  const std::string& first = files.front();

  // Check everything before copying anything.
  std::vector<std::string> missing, mismatched;
  std::set<std::string> wanted;
  StateLoadReport report;
  report.metadata = readers.front()->metadata();
  for (const auto& [name, t] : targets) {
    wanted.insert(name);
    auto it = where.find(name);
    if (it == where.end()) {
      if (is_recomputable_buffer(name)) report.missing_tolerated.push_back(name);
      else missing.push_back(name);
      continue;
    }
    const TensorInfo& info = it->second->info(name);
    const std::vector<int64_t> model_shape(t.sizes().begin(), t.sizes().end());
    if (info.shape != model_shape) {
      mismatched.push_back(name + " (file " + shape_str(info.shape) + ", model " + shape_str(model_shape) + ")");
    } else if (is_float_dtype(info.dtype) != t.is_floating_point()) {
      mismatched.push_back(name + " (file " + dtype_name(info.dtype) + ", model " + c10::toString(t.scalar_type()) +
                           ")");
    }
  }
  std::vector<std::string> unexpected;
  for (const auto& [n, r] : where)
    if (!wanted.count(n)) unexpected.push_back(n);
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = "checkpoint does not match the model:";
    if (!missing.empty()) msg += " missing " + std::to_string(missing.size()) + " (" + list_str(missing) + ");";
    if (!unexpected.empty())
      msg += " unexpected " + std::to_string(unexpected.size()) + " (" + list_str(unexpected) + ");";
    if (!mismatched.empty())
      msg += " mis-shaped " + std::to_string(mismatched.size()) + " (" + list_str(mismatched) + ");";
    msg.pop_back();
    throw FileError(first, msg);
  }

  torch::NoGradGuard no_grad;
  for (const auto& [name, target] : targets) {
    auto it = where.find(name);
    if (it == where.end()) continue;
    const SafetensorsReader& r = *it->second;
    const TensorInfo& info = r.info(name);
    torch::Tensor t = target;
    if (t.device().is_cpu() && t.is_contiguous() && to_torch_dtype(info.dtype) == t.scalar_type()) {
      const size_t bytes = size_t(info.end - info.begin);
      if (bytes) std::memcpy(t.data_ptr(), r.raw(name), bytes);
    } else {
      t.copy_(read_tensor(r, name));
    }
    release_pages(r.raw(name), size_t(info.end - info.begin));
    report.loaded.push_back(name);
  }
  return report;
}

std::string to_string(CheckpointFormat f) {
  switch (f) {
    case CheckpointFormat::HuggingFace: return "huggingface";
    case CheckpointFormat::Synclap: return "synclap";
    case CheckpointFormat::SingleFile: return "safetensors";
  }
  return "?";
}

CheckpointFormat detect_checkpoint_format(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (is_file(path_join(path, "model_config.json"))) return CheckpointFormat::Synclap;
    if (is_file(path_join(path, "config.json"))) return CheckpointFormat::HuggingFace;
    throw FileError(path, "not a model directory (no model_config.json or config.json)");
  }
  if (is_file(path)) {
    if (ends_with(path, ".safetensors")) return CheckpointFormat::SingleFile;
    throw FileError(path, "not a model: expected a checkpoint directory or a .safetensors file");
  }
  throw FileError(path, "no such model file or directory");
}

PreprocessContract hf_inference_contract(const ClapConfig& config, const std::string& preprocessor_json) {
  PreprocessContract c = config.enable_fusion ? PreprocessContract::clap_fused() : PreprocessContract::clap_unfused();
  if (!preprocessor_json.empty()) {
    // Mel and window settings from the file; truncation policy stays synclap's deterministic one.
    const PreprocessContract hf = PreprocessContract::from_hf_preprocessor(preprocessor_json);
    c.sample_rate = hf.sample_rate;
    c.n_fft = hf.n_fft;
    c.hop_length = hf.hop_length;
    c.n_mels = hf.n_mels;
    c.f_min = hf.f_min;
    c.f_max = hf.f_max;
    c.max_samples = hf.max_samples;
    c.padding = hf.padding;
    c.validate();
  }
  return c;
}

namespace {

std::vector<std::string> hf_weight_files(const std::string& dir) {
  const std::string single = path_join(dir, "model.safetensors");
  if (is_file(single)) return {single};
  const std::string index = path_join(dir, "model.safetensors.index.json");
  if (is_file(index)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(index, size_t(64) << 20));
    } catch (const nlohmann::json::exception& e) {
      throw FileError(index, std::string("invalid JSON: ") + e.what());
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object()) throw FileError(index, "no weight_map");
    std::vector<std::string> files;
    std::set<std::string> seen;
    for (const auto& [k, v] : j["weight_map"].items()) {
      if (!v.is_string()) throw FileError(index, "weight_map entry '" + k + "' is not a file name");
      const std::string f = v.get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        throw FileError(index, "weight_map names a file outside the directory: " + f);
      if (seen.insert(f).second) files.push_back(path_join(dir, f));
    }
    if (files.empty()) throw FileError(index, "empty weight_map");
    return files;
  }
  if (is_file(path_join(dir, "pytorch_model.bin")))
    throw FileError(dir, "has only pytorch_model.bin; synclap reads safetensors (model.safetensors) checkpoints");
  throw FileError(dir, "no model.safetensors");
}

void check_contract_matches(const ClapConfig& config, const PreprocessContract& contract, const std::string& path) {
  if (contract.fusion != config.enable_fusion)
    throw FileError(path, std::string("preprocessing contract is ") + (contract.fusion ? "fused" : "unfused") +
                              " but the model is " + (config.enable_fusion ? "fused" : "unfused"));
}

}  // namespace

LoadedModel load_checkpoint(const std::string& path) {
  LoadedModel out;
  out.path = path;
  out.format = detect_checkpoint_format(path);
  std::vector<std::string> files;
  switch (out.format) {
    case CheckpointFormat::Synclap: {
      out.config = ClapConfig::from_file(path_join(path, "model_config.json"));
      const std::string pp = path_join(path, "preprocess.json");
      try {
        out.contract = PreprocessContract::from_json(read_file(pp, size_t(1) << 20));
      } catch (const FileError&) {
        throw;
      } catch (const std::exception& e) {
        throw FileError(pp, e.what());
      }
      files = {path_join(path, "model.safetensors")};
      break;
    }
    case CheckpointFormat::HuggingFace: {
      out.config = ClapConfig::from_file(path_join(path, "config.json"));
      const std::string pp = path_join(path, "preprocessor_config.json");
      try {
        out.contract = hf_inference_contract(out.config, is_file(pp) ? read_file(pp, size_t(1) << 20) : "");
      } catch (const FileError&) {
        throw;
      } catch (const std::exception& e) {
        throw FileError(pp, e.what());
      }
      files = hf_weight_files(path);
      break;
    }
    case CheckpointFormat::SingleFile: {
      SafetensorsReader reader(path);
      auto it = reader.metadata().find("config");
      if (it == reader.metadata().end())
        throw FileError(path, "no model config in the safetensors metadata (key 'config')");
      try {
        out.config = ClapConfig::from_json_string(it->second);
        auto pp = reader.metadata().find("preprocess");
        out.contract = pp != reader.metadata().end() ? PreprocessContract::from_json(pp->second)
                                                     : hf_inference_contract(out.config);
      } catch (const FileError&) {
        throw;
      } catch (const std::exception& e) {
        throw FileError(path, e.what());
      }
      files = {path};
      break;
    }
  }
  check_contract_matches(out.config, out.contract, path);
  out.model = ClapModel(out.config);
  out.report = load_state(out.model->state_tensors(), files);
  out.model->eval();
  return out;
}

void save_checkpoint(const ClapModelImpl& model, const PreprocessContract& contract, const std::string& dir,
                     const std::map<std::string, std::string>& metadata) {
  check_contract_matches(model.config(), contract, dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw FileError(dir, "cannot create directory: " + ec.message());
  const std::string config_json = model.config().to_json().dump(2);
  std::map<std::string, std::string> meta = metadata;
  meta["format"] = "pt";
  meta["synclap_format"] = "synclap.checkpoint/1";
  meta["config"] = config_json;
  meta["preprocess"] = contract.to_json();
  write_tensors(path_join(dir, "model.safetensors"), model.state_tensors(), meta);
  write_file_atomic(path_join(dir, "model_config.json"), config_json + "\n");
  write_file_atomic(path_join(dir, "preprocess.json"), contract.to_json() + "\n");
}

}  // namespace synclap
