// synclap eval --model CKPT --data DIR --task retrieval|zeroshot|probe [--label ATTR] [--templates T ...]:
// evaluates a model on a dataset directory (manifest.jsonl) and writes result.json (+ pictures and
// report.html) to --out DIR, printing a table.
//   retrieval  text->audio / audio->text R@1/5/10, mAP@10, median rank over the chosen split's captions
//   zeroshot   classifies clips by prompt templates filled with the label's values (template ensemble; without
//              --templates, those the model's training classified the label with, stored in the checkpoint)
//   probe      logistic regression on frozen audio embeddings: fit on the train split, accuracy on the test split
// --where ATTR=VALUE evaluates a slice of the split (e.g. ensemble=solo); zeroshot also writes predictions.csv.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "eval_support.h"
#include "synclap/error.h"
#include "synclap/util.h"

namespace fs = std::filesystem;

namespace synclap::cli {
namespace {

struct EvalArgs {
  std::string model, tokenizer, data, task, label, split = "test", train_split = "train", out, templates_file;
  std::vector<std::string> templates, classes, where;
  std::string optimizer = "lbfgs";
  double l2 = 1e-4;
  uint64_t seed = 0;
  int64_t limit = 0;
};

const std::vector<std::string> kDefaultTemplates = {"This audio is a {}.", "a {} recording", "music: {}"};

// The single class value of an item for `attr`: a string, a number, or a one-element list; else "".
std::string label_value(const ManifestItem& it, const std::string& attr) {
  if (!it.labels.contains(attr)) return "";
  const auto& v = it.labels[attr];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return fmt(v.get<double>(), 3);
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_array() && v.size() == 1 && v[0].is_string()) return v[0].get<std::string>();
  return "";
}

// --where ATTR=VALUE filters: an item is kept when, for every attribute named, its label equals one of the
// values given for it (a list-valued label when it holds one of them). Numbers and booleans compare as they
// print (label_value's spelling).
using Where = std::map<std::string, std::set<std::string>>;

Where parse_where(const std::vector<std::string>& args) {
  Where w;
  for (const auto& a : args) {
    const auto eq = a.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == a.size())
      throw Error("--where \"" + a + "\": expected ATTR=VALUE (e.g. ensemble=solo)");
    w[a.substr(0, eq)].insert(a.substr(eq + 1));
  }
  return w;
}

bool matches(const ManifestItem& it, const Where& where) {
  for (const auto& [attr, values] : where) {
    if (!it.labels.contains(attr)) return false;
    const auto& v = it.labels[attr];
    bool hit = false;
    if (v.is_array()) {
      for (const auto& e : v) hit = hit || (e.is_string() && values.count(e.get<std::string>()));
    } else {
      hit = values.count(label_value(it, attr)) > 0;
    }
    if (!hit) return false;
  }
  return true;
}

std::string describe(const Where& where) {
  std::string s;
  for (const auto& [attr, values] : where) {
    if (!s.empty()) s += " and ";
    std::string alt;
    for (const auto& v : values) alt += (alt.empty() ? "" : "|") + v;
    s += attr + "=" + alt;
  }
  return s;
}

std::vector<ManifestItem> select_split(const std::vector<ManifestItem>& all, const std::string& split, int64_t limit,
                                       bool* fell_back, const Where& where = {}) {
  std::vector<ManifestItem> out;
  for (const auto& it : all)
    if ((split == "all" || it.split == split) && matches(it, where)) out.push_back(it);
  *fell_back = false;
  if (out.empty() && split != "all" && std::none_of(all.begin(), all.end(), [&](const ManifestItem& it) {
        return it.split == split;
      })) {
    for (const auto& it : all)
      if (matches(it, where)) out.push_back(it);
    *fell_back = true;
  }
  if (out.empty() && !where.empty())
    throw Error("no item of split '" + split + "' matches --where " + describe(where));
  if (limit > 0 && int64_t(out.size()) > limit) out.resize(size_t(limit));
  return out;
}

void write_report(const std::string& dir, const std::string& title, const std::string& table,
                  const std::string& svg, const nlohmann::json& result) {
  std::ostringstream h;
  h << "<!doctype html><html><head><meta charset=\"utf-8\"><title>" << xml_escape(title)
    << "</title><style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}</style></head><body>"
    << "<h1>" << xml_escape(title) << "</h1><pre>" << xml_escape(table) << "</pre>";
  if (!svg.empty()) h << "<h2>Confusion matrix</h2>" << svg;
  h << "<h2>Provenance</h2><pre>" << xml_escape(result["provenance"].dump(2)) << "</pre></body></html>\n";
  write_file_atomic((fs::path(dir) / "report.html").string(), h.str());
}

int run_eval(const EvalArgs& a, const Context& ctx) {
  if (a.task != "retrieval" && a.task != "zeroshot" && a.task != "probe")
    throw Error("--task must be retrieval, zeroshot or probe");
  if ((a.task == "zeroshot" || a.task == "probe") && a.label.empty())
    throw Error("--task " + a.task + " needs --label ATTR (e.g. genre)");
  const std::vector<ManifestItem> all = read_manifest(a.data);
  const Where where = parse_where(a.where);
  LoadedModel lm = load_model(a.model, a.tokenizer, ctx);
  Provenance prov = model_provenance(lm, a.task);
  prov.dataset = a.data;
  prov.dataset_sha256 = sha256_file((fs::path(a.data) / "manifest.jsonl").string());
  prov.seed = a.seed;
  const std::string out_dir = a.out.empty() ? "eval-" + a.task : a.out;
  fs::create_directories(out_dir);

  nlohmann::json result;
  result["task"] = a.task;
  std::string table, svg;
  bool fell_back = false;

  if (a.task == "retrieval") {
    const auto items = select_split(all, a.split, a.limit, &fell_back, where);
    std::vector<std::string> files;
    for (const auto& it : items) files.push_back(it.audio);
    std::vector<size_t> kept;
    const Embeddings audio = embed_audio_files(lm, files, ctx, &kept, "embedding clips");
    std::vector<std::string> texts;
    std::vector<int64_t> text_clip;
    for (size_t k = 0; k < kept.size(); ++k)
      for (const auto& c : items[kept[k]].captions) {
        texts.push_back(c);
        text_clip.push_back(int64_t(k));
      }
    if (texts.empty()) throw Error("no captions in the selected items");
    const Embeddings text = embed_texts(lm, texts, ctx);
    const std::vector<float> sim = cosine_matrix(text, audio);
    const RetrievalResult r = retrieval_metrics(sim, text.rows, audio.rows, text_clip);
    auto dir_json = [](const RetrievalMetrics& m) {
      return nlohmann::json{{"R@1", m.r1},   {"R@5", m.r5},   {"R@10", m.r10},          {"mAP@10", m.map10},
                            {"median_rank", m.median_rank}, {"mean_rank", m.mean_rank}, {"queries", m.queries}};
    };
    result["text_to_audio"] = dir_json(r.text_to_audio);
    result["audio_to_text"] = dir_json(r.audio_to_text);
    result["clips"] = r.clips;
    result["captions"] = r.texts;
    result["protocol"] =
        "audio->text: hit if any caption of the clip ranks within k; mAP@10 = sum_j j/rank_j over captions within "
        "10, / captions of the clip; ties ranked against the query";
    std::vector<std::vector<std::string>> rows = {{"direction", "R@1", "R@5", "R@10", "mAP@10", "median rank"}};
    for (auto [name, m] : {std::pair<const char*, const RetrievalMetrics*>{"text->audio", &r.text_to_audio},
                           {"audio->text", &r.audio_to_text}})
      rows.push_back({name, fmt(m->r1), fmt(m->r5), fmt(m->r10), fmt(m->map10), fmt(m->median_rank, 1)});
    table = format_table(rows) + std::to_string(r.clips) + " clips, " + std::to_string(r.texts) + " captions\n";
  } else {
    std::vector<std::string> templates = a.templates;
    if (!a.templates_file.empty()) {
      std::istringstream in(read_file(a.templates_file));
      std::string line;
      while (std::getline(in, line))
        if (!line.empty() && line[0] != '#') templates.push_back(line);
    }
    // Without --templates: the prompts the model was trained to classify this label with, if its training had
    // label_prompts (a model scores best on the wording it learnt), else general ones.
    std::string templates_from = templates.empty() ? "" : "given";
    if (templates.empty() && a.task == "zeroshot") {
      templates = trained_label_templates(lm.model, a.label);
      if (!templates.empty()) templates_from = "training";
    }
    if (templates.empty()) templates = kDefaultTemplates, templates_from = "default";

    const std::string eval_split = a.split;
    auto labelled = [&](const std::string& split, std::vector<ManifestItem>* items, std::vector<std::string>* values) {
      bool fb = false;
      for (const auto& it : select_split(all, split, a.limit, &fb, where)) {
        const std::string v = label_value(it, a.label);
        if (v.empty()) continue;
        items->push_back(it);
        values->push_back(v);
      }
      return fb;
    };
    std::vector<ManifestItem> items;
    std::vector<std::string> values;
    fell_back = labelled(eval_split, &items, &values);
    if (items.empty()) throw Error("no item of split '" + eval_split + "' has a single-valued label '" + a.label + "'");

    if (a.task == "zeroshot") {
      prov.templates = templates;
      std::vector<std::string> classes = a.classes;
      if (classes.empty()) {  // the label's values over the whole split: a slice is classified among them all
        std::set<std::string> s(values.begin(), values.end());
        if (!where.empty()) {
          bool fb = false;
          for (const auto& it : select_split(all, eval_split, 0, &fb)) {
            const std::string v = label_value(it, a.label);
            if (!v.empty()) s.insert(v);
          }
        }
        classes.assign(s.begin(), s.end());
      }
      std::map<std::string, int64_t> index;
      for (size_t c = 0; c < classes.size(); ++c) index[classes[c]] = int64_t(c);
      std::vector<std::string> files;
      std::vector<int64_t> labels;
      for (size_t i = 0; i < items.size(); ++i) {
        const auto f = index.find(values[i]);
        if (f == index.end()) continue;
        files.push_back(items[i].audio);
        labels.push_back(f->second);
      }
      std::vector<size_t> kept;
      const Embeddings audio = embed_audio_files(lm, files, ctx, &kept, "embedding clips");
      std::vector<int64_t> kept_labels;
      for (size_t k : kept) kept_labels.push_back(labels[k]);
      const auto prompts = make_prompts(templates, classes);
      const Embeddings pe = embed_texts(lm, prompts, ctx);
      const Embeddings ce = class_embeddings(pe, int64_t(classes.size()), int64_t(templates.size()));
      const ZeroShotResult z = zero_shot(audio, ce, kept_labels, classes);
      result["label"] = a.label;
      result["classes"] = classes;
      result["templates"] = templates;
      result["templates_from"] = templates_from;  // given | training (the model's label prompts) | default
      result["items"] = z.items;
      result["top1"] = z.top1;
      result["top5"] = z.top5;
      result["balanced_accuracy"] = z.balanced_accuracy;
      result["per_class_accuracy"] = z.per_class_accuracy;
      result["per_class_count"] = z.per_class_count;
      result["confusion"] = z.confusion;
      std::vector<std::vector<std::string>> rows = {{"class", "items", "accuracy"}};
      for (size_t c = 0; c < classes.size(); ++c)
        if (z.per_class_count[c] > 0 || where.empty())  // a slice lists the classes it holds (result.json: all)
          rows.push_back({classes[c], std::to_string(z.per_class_count[c]), fmt(z.per_class_accuracy[c], 3)});
      table = format_table(rows) + "top-1 " + fmt(z.top1) + "  top-5 " + fmt(z.top5) + "  balanced " +
              fmt(z.balanced_accuracy) + "  (" + std::to_string(z.items) + " clips, " +
              std::to_string(templates.size()) + " templates)\n";
      std::ostringstream pc;  // one row per clip: what it is, what it was taken for, how sure
      pc << "audio,label,predicted,correct,score,margin\n";
      const size_t nc = classes.size();
      for (size_t k = 0; k < kept.size(); ++k) {
        const float* row = z.scores.data() + k * nc;
        const int64_t p = z.predictions[k];
        float second = -2.f;
        for (size_t c = 0; c < nc; ++c)
          if (int64_t(c) != p) second = std::max(second, row[c]);
        pc << csv_quote(files[kept[k]]) << ',' << csv_quote(classes[size_t(kept_labels[k])]) << ','
           << csv_quote(classes[size_t(p)]) << ',' << (p == kept_labels[k] ? 1 : 0) << ',' << fmt(row[p], 5) << ','
           << fmt(nc > 1 ? row[p] - second : 0.0, 5) << '\n';
      }
      write_file_atomic((fs::path(out_dir) / "predictions.csv").string(), pc.str());
      svg = confusion_svg(z.confusion, classes, "zero-shot " + a.label);
      int w = 0, h = 0;
      const auto rgb = confusion_rgb(z.confusion, int64_t(classes.size()), classes.size() <= 20 ? 24 : 8, &w, &h);
      write_png_rgb((fs::path(out_dir) / "confusion.png").string(), rgb, w, h);
    } else {
      std::vector<ManifestItem> train_items;
      std::vector<std::string> train_values;
      bool fb_train = false;
      for (const auto& it : all)
        if (it.split == a.train_split) {
          const std::string v = label_value(it, a.label);
          if (!v.empty()) {
            train_items.push_back(it);
            train_values.push_back(v);
          }
        }
      (void)fb_train;
      if (train_items.empty()) throw Error("no item of split '" + a.train_split + "' has label '" + a.label + "'");
      std::set<std::string> s(train_values.begin(), train_values.end());
      const std::vector<std::string> classes(s.begin(), s.end());
      if (classes.size() < 2) throw Error("the probe needs at least two classes in the training split");
      std::map<std::string, int64_t> index;
      for (size_t c = 0; c < classes.size(); ++c) index[classes[c]] = int64_t(c);
      auto embed = [&](const std::vector<ManifestItem>& its, const std::vector<std::string>& vals, const char* what,
                       std::vector<float>* x, std::vector<int64_t>* y, int64_t* dim, int64_t* unseen) {
        std::vector<std::string> files;
        std::vector<int64_t> labels;
        for (size_t i = 0; i < its.size(); ++i) {
          const auto f = index.find(vals[i]);
          if (f == index.end()) {
            ++*unseen;
            continue;
          }
          files.push_back(its[i].audio);
          labels.push_back(f->second);
        }
        if (files.empty()) throw Error(std::string("no usable ") + what + " items");
        std::vector<size_t> kept;
        const Embeddings e = embed_audio_files(lm, files, ctx, &kept, std::string("embedding ") + what);
        *x = e.data;
        *dim = e.dim;
        for (size_t k : kept) y->push_back(labels[k]);
      };
      std::vector<float> xtr, xte;
      std::vector<int64_t> ytr, yte;
      int64_t dim = 0, unseen_train = 0, unseen_test = 0;
      embed(train_items, train_values, "train", &xtr, &ytr, &dim, &unseen_train);
      embed(items, values, "test", &xte, &yte, &dim, &unseen_test);
      ProbeOptions po;
      po.optimizer = a.optimizer;
      po.l2 = a.l2;
      po.seed = a.seed;
      const ProbeResult p = linear_probe(xtr, ytr, xte, yte, dim, int64_t(classes.size()), po);
      result["label"] = a.label;
      result["classes"] = classes;
      result["train_items"] = p.train_items;
      result["test_items"] = p.test_items;
      result["test_items_with_unseen_class"] = unseen_test;
      result["train_accuracy"] = p.train_accuracy;
      result["test_accuracy"] = p.test_accuracy;
      result["final_loss"] = p.final_loss;
      result["confusion"] = p.confusion;
      result["probe"] = {{"optimizer", po.optimizer}, {"l2", po.l2}, {"max_iter", po.max_iter},
                         {"standardize", po.standardize}};
      table = format_table({{"split", "items", "accuracy"},
                            {a.train_split, std::to_string(p.train_items), fmt(p.train_accuracy)},
                            {eval_split, std::to_string(p.test_items), fmt(p.test_accuracy)}}) +
              std::to_string(classes.size()) + " classes of '" + a.label + "'\n";
      svg = confusion_svg(p.confusion, classes, "linear probe " + a.label);
    }
  }
  if (fell_back) result["note"] = "no item has split '" + a.split + "': all items were used";
  if (!where.empty()) result["where"] = describe(where);
  result["split"] = fell_back ? "all" : a.split;
  result["provenance"] = nlohmann::json::parse(prov.to_json());
  write_file_atomic((fs::path(out_dir) / "result.json").string(), result.dump(2) + "\n");
  if (!svg.empty()) write_file_atomic((fs::path(out_dir) / "confusion.svg").string(), svg);
  write_report(out_dir, "synclap eval: " + a.task, table, svg, result);
  if (ctx.json) {
    std::cout << result.dump(2) << std::endl;
  } else {
    std::cout << table;
    if (fell_back) std::cout << "note: no item has split '" << a.split << "': all items were used\n";
    if (!where.empty()) std::cout << "items where " << describe(where) << "\n";
    std::cout << "wrote " << out_dir << "/result.json, " << (a.task == "zeroshot" ? "predictions.csv, " : "")
              << "report.html\n";
  }
  return 0;
}

Command reg("eval", "Evaluate a model on a dataset: retrieval, zero-shot classification or a linear probe",
            [](CLI::App& sub, Context& ctx) -> Runner {
              auto a = std::make_shared<EvalArgs>();
              sub.add_option("--model", a->model, "Checkpoint")->required();
              sub.add_option("--data", a->data, "Dataset directory with manifest.jsonl")->required();
              sub.add_option("--task", a->task, "retrieval | zeroshot | probe")->required();
              sub.add_option("--label", a->label, "Label attribute for zeroshot / probe (e.g. genre; a list-valued label uses the items with exactly one value)");
              sub.add_option("--templates", a->templates, "Prompt templates with {} for the class name (ensemble; default: the templates the model was trained to classify the label with, if its training had label_prompts, else three general ones)");
              sub.add_option("--templates-file", a->templates_file, "One template per line");
              sub.add_option("--classes", a->classes, "Class names for zeroshot (default: the label's values)");
              sub.add_option("--split", a->split, "Split to evaluate (default test; 'all' for every item)");
              sub.add_option("--train-split", a->train_split, "Split the probe is fitted on (default train)");
              sub.add_option("--optimizer", a->optimizer, "Probe optimizer: lbfgs | adam");
              sub.add_option("--l2", a->l2, "Probe L2 penalty (default 1e-4)");
              sub.add_option("--seed", a->seed, "Seed (probe initialisation)");
              sub.add_option("--limit", a->limit, "Use at most this many items of the split");
              sub.add_option("--where", a->where,
                             "Only items whose label ATTR is VALUE (ATTR=VALUE; repeat: different attributes must all "
                             "match, values of one attribute are alternatives; a list label matches if it holds the value). "
                             "The probe's training split is not filtered");
              sub.add_option("--tokenizer", a->tokenizer, "Directory with vocab.json + merges.txt");
              sub.add_option("-o,--out", a->out, "Output directory (default eval-<task>)");
              return [a, &ctx]() { return run_eval(*a, ctx); };
            });

}  // namespace
}  // namespace synclap::cli
