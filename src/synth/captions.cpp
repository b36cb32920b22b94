// Captions: keyword-to-caption augmentation by a small grammar (templates, synonyms, varied order,
// optional attributes left out) and de-biasing of gendered words.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "rng.h"
#include "synclap/synth.h"

namespace synclap {
namespace {

using synth::Rng;

std::string article(const std::string& word) {
  if (word.empty()) return "a";
  const char c = char(std::tolower(static_cast<unsigned char>(word[0])));
  const bool vowel = c == 'a' || c == 'e' || c == 'i' || c == 'o' || (c == 'u' && word.rfind("uni", 0) != 0);
  return vowel ? "an" : "a";
}

std::string with_article(const std::string& phrase) { return article(phrase) + " " + phrase; }

std::string capitalise(std::string s) {
  if (!s.empty()) s[0] = char(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

std::string join_list(const std::vector<std::string>& items, Rng& rng) {
  if (items.empty()) return "";
  if (items.size() == 1) return items[0];
  std::string out;
  const bool oxford = rng.chance(0.3);
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += (i + 1 == items.size()) ? (oxford && items.size() > 2 ? ", and " : " and ") : ", ";
    out += items[i];
  }
  return out;
}

const std::vector<std::string>& nouns() {
  static const std::vector<std::string> n = {"track", "song", "piece", "tune", "recording", "instrumental",
                                             "composition", "number", "groove", "cue", "arrangement", "clip"};
  return n;
}

// All the phrases a caption may use for one clip, each already in its chosen synonym.
struct Words {
  std::string genre, mood, noun, tempo_adj, bpm, key, meter, dynamics, ensemble, production;
  std::vector<std::string> instruments;            // plain names
  std::vector<std::string> instruments_with_roles; // "a cello melody", "piano chords"
};

std::string role_phrase(const std::string& name, const std::string& role, Rng& rng) {
  static const std::map<std::string, std::vector<std::string>> forms = {
      {"lead", {"a {} melody", "{} lead", "a {} line", "a soaring {} part", "{} on the melody"}},
      {"chords", {"{} chords", "comping {}", "{} harmony", "{} accompaniment"}},
      {"bass", {"a {} bassline", "{} on bass", "a {} bass part", "a low {} line"}},
      {"pad", {"{} pads", "a {} backdrop", "sustained {}", "a bed of {}"}},
      {"drums", {"{}", "a {} groove", "{} keeping time", "a {} beat"}},
      {"counter", {"a {} counter-melody", "{} answering the lead", "a {} counterline", "{} behind the melody"}}};
  auto it = forms.find(role);
  if (it == forms.end()) return name;
  static const std::vector<std::string> bass_named = {"a {} line", "{} underneath", "a low {} line", "a {} groove"};
  const bool says_bass = name.find("bass") != std::string::npos;
  std::string f = rng.pick(role == "bass" && says_bass ? bass_named : it->second);
  const auto pos = f.find("{}");
  f.replace(pos, 2, name);
  if (f.rfind("a ", 0) == 0) f = with_article(f.substr(2));
  return f;
}

Words choose_words(const ClipSpec& s, const Vocabulary& v, Rng& rng) {
  Words w;
  w.genre = rng.pick(v.genres[size_t(s.genre)].synonyms);
  w.mood = rng.pick(v.moods[size_t(s.mood)].synonyms);
  w.noun = rng.pick(nouns());
  w.tempo_adj = rng.pick(v.tempos[size_t(s.tempo)].synonyms);
  w.bpm = std::to_string(s.bpm) + " BPM";
  const std::string tonic = rng.pick(v.keys[size_t(s.key)].synonyms);
  w.key = tonic + " " + rng.pick(v.modes[size_t(s.mode)].synonyms);
  w.meter = rng.pick(v.time_signatures[size_t(s.time_signature)].synonyms);
  w.dynamics = rng.pick(v.dynamics[size_t(s.dynamics)].synonyms);
  w.ensemble = rng.pick(v.ensembles[size_t(s.ensemble)].synonyms);
  w.production = rng.pick(v.productions[size_t(s.production)].synonyms);
  std::vector<InstrumentPart> parts = s.parts;
  rng.shuffle(parts);
  for (const auto& p : parts) {
    const std::string name = rng.pick(v.instruments[size_t(p.instrument)].synonyms);
    w.instruments.push_back(name);
    w.instruments_with_roles.push_back(role_phrase(name, p.role, rng));
  }
  return w;
}

// One caption from one of several sentence shapes.
std::string build_caption(const ClipSpec& s, const Vocabulary& v, const CaptionOptions& opt, Rng& rng) {
  Words w = choose_words(s, v, rng);
  // Which attributes to mention. Genre or instruments always stay.
  auto keep = [&]() { return !rng.chance(opt.drop_prob); };
  bool k_genre = keep(), k_inst = keep();
  if (!k_genre && !k_inst) (rng.chance(0.5) ? k_genre : k_inst) = true;
  const bool k_mood = keep(), k_tempo = keep(), k_key = rng.chance(0.5 * (1 - opt.drop_prob)),
             k_meter = rng.chance(0.5 * (1 - opt.drop_prob)), k_dyn = rng.chance(0.6 * (1 - opt.drop_prob)),
             k_ens = rng.chance(0.5 * (1 - opt.drop_prob)), k_prod = rng.chance(0.6 * (1 - opt.drop_prob));
  const bool roles = rng.chance(0.45);
  const std::string inst = join_list(roles ? w.instruments_with_roles : w.instruments, rng);

  // Trailing clauses in random order.
  std::vector<std::string> clauses;
  if (k_tempo) {
    static const std::vector<std::string> f = {"at a {} tempo", "{}", "{} ({bpm})", "at around {bpm}", "with a {} pace"};
    static const std::vector<std::string> plain = {"{}", "{} ({bpm})", "at around {bpm}"};
    const bool self_describing = w.tempo_adj.find("tempo") != std::string::npos || w.tempo_adj.find("pace") != std::string::npos ||
                                 w.tempo_adj.find("allegro") != std::string::npos || w.tempo_adj.find("largo") != std::string::npos;
    std::string c = rng.pick(self_describing ? plain : f);
    auto p = c.find("{bpm}");
    if (p != std::string::npos) c.replace(p, 5, w.bpm);
    p = c.find("{}");
    if (p != std::string::npos) c.replace(p, 2, w.tempo_adj);
    if (c.rfind("a ", 0) == 0 || c.find(" a ") != std::string::npos) {
      const auto q = c.find("a " + w.tempo_adj);
      if (q != std::string::npos) c.replace(q, 1, article(w.tempo_adj));
    }
    clauses.push_back(c);
  }
  if (k_key) {
    const bool says_key = w.key.find("key") != std::string::npos;  // "D minor key": not "in the key of D minor key"
    clauses.push_back(says_key ? rng.pick(std::vector<std::string>{"in " + w.key, "set in " + w.key})
                               : rng.pick(std::vector<std::string>{"in " + w.key, "in the key of " + w.key, "set in " + w.key}));
  }
  if (k_meter) clauses.push_back(rng.pick(std::vector<std::string>{"in " + w.meter, "with a meter of " + w.meter}));
  if (k_dyn) clauses.push_back(rng.pick(std::vector<std::string>{"with " + w.dynamics + " dynamics", "played at a " + w.dynamics + " level", w.dynamics + " throughout"}));
  if (k_ens) clauses.push_back(rng.pick(std::vector<std::string>{"as " + with_article(w.ensemble), "(" + w.ensemble + ")"}));
  if (k_prod) clauses.push_back(rng.pick(std::vector<std::string>{"with " + with_article(w.production) + " sound", w.production + " production", "with " + with_article(w.production) + " mix"}));
  rng.shuffle(clauses);

  std::string adj;  // words before the noun: mood and genre
  if (k_mood) adj += w.mood + " ";
  if (k_genre) adj += w.genre + " ";
  std::string caption;
  const int shape = int(rng.below(8));
  auto tail = [&](const std::string& sep) {
    std::string t;
    for (const auto& c : clauses) t += sep + c;
    return t;
  };
  switch (shape) {
    case 0:  // "A sad jazz piece featuring piano and bass, slow, in D minor."
      caption = with_article(adj + w.noun);
      if (k_inst) caption += rng.pick(std::vector<std::string>{" featuring ", " with ", " built on ", " for "}) + inst;
      caption += tail(", ") + ".";
      break;
    case 1:  // "Piano and bass play a sad jazz tune, ..."
      if (k_inst) caption = capitalise(inst) + rng.pick(std::vector<std::string>{" play ", " perform ", " carry "}) + with_article(adj + w.noun);
      else caption = "Listen to " + with_article(adj + w.noun);
      caption += tail(", ") + ".";
      break;
    case 2:  // "This is a sad jazz piece. It features piano and bass. Slow, in D minor."
      caption = "This is " + with_article(adj + w.noun) + ".";
      if (k_inst) caption += rng.pick(std::vector<std::string>{" It features ", " You can hear ", " The instrumentation is "}) + inst + ".";
      if (!clauses.empty()) {
        std::string t = tail(", ").substr(2);
        caption += " " + capitalise(t) + ".";
      }
      break;
    case 3: {  // keyword list
      std::vector<std::string> kw;
      if (k_genre) kw.push_back(w.genre);
      if (k_inst) for (const auto& i : w.instruments) kw.push_back(i);
      if (k_mood) kw.push_back(w.mood);
      if (k_tempo) kw.push_back(w.tempo_adj);
      if (k_key) kw.push_back(w.key);
      if (k_meter) kw.push_back(w.meter);
      if (k_dyn) kw.push_back(w.dynamics);
      if (k_prod) kw.push_back(w.production);
      rng.shuffle(kw);
      for (size_t i = 0; i < kw.size(); ++i) caption += (i ? ", " : "") + kw[i];
      break;
    }
    case 4:  // "Sad jazz with piano and bass"
      caption = capitalise(adj.empty() ? "music" : adj.substr(0, adj.size() - 1));
      if (k_inst) caption += " with " + inst;
      caption += tail(", ");
      break;
    case 5:  // "An instrumental jazz track in D minor: slow, sad, with piano."
      caption = capitalise(with_article(adj + w.noun));
      if (!clauses.empty()) caption += " " + clauses[0];
      if (k_inst) caption += ": " + inst;
      for (size_t i = 1; i < clauses.size(); ++i) caption += "; " + clauses[i];
      caption += ".";
      break;
    case 6:  // "Slow, sad jazz: piano and bass, in D minor."
      caption = capitalise(k_tempo ? w.tempo_adj + ", " + adj : adj);
      if (caption.empty() || caption == " ") caption = "Music";
      while (!caption.empty() && (caption.back() == ' ' || caption.back() == ',')) caption.pop_back();
      if (k_inst) caption += ": " + inst;
      for (const auto& c : clauses)
        if (c.find(w.tempo_adj) == std::string::npos) caption += ", " + c;
      caption += ".";
      break;
    default:  // "The sound of piano and bass in a sad jazz piece, slow."
      if (k_inst) caption = "The sound of " + inst + " in " + with_article(adj + w.noun);
      else caption = capitalise(with_article(adj + w.noun));
      caption += tail(", ") + ".";
      break;
  }
  caption[0] = char(std::toupper(static_cast<unsigned char>(caption[0])));
  return debias_gendered(caption, v.gendered_words);
}

}  // namespace

std::vector<std::string> make_captions(const ClipSpec& spec, const Vocabulary& vocab, const CaptionOptions& options) {
  Rng rng(synth::derive_seed(spec.seed, 0, "captions"));
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (int tries = 0; int(out.size()) < options.per_clip && tries < options.per_clip * 20; ++tries) {
    std::string c = build_caption(spec, vocab, options, rng);
    if (seen.insert(c).second) out.push_back(std::move(c));
  }
  return out;
}

static std::string strip_possessive(const std::string& w) {
  if (w.size() > 2 && w.compare(w.size() - 2, 2, "'s") == 0) return w.substr(0, w.size() - 2);
  if (w.size() > 1 && w.back() == '\'') return w.substr(0, w.size() - 1);
  return w;
}

std::string debias_gendered(const std::string& text, const std::vector<std::string>& extra) {
  static const std::map<std::string, std::string> table = {
      {"man", "person"},       {"woman", "person"},     {"men", "people"},         {"women", "people"},
      {"boy", "child"},        {"girl", "child"},       {"boys", "children"},      {"girls", "children"},
      {"he", "they"},          {"she", "they"},         {"him", "them"},           {"his", "their"},
      {"her", "their"},        {"hers", "theirs"},      {"himself", "themselves"}, {"herself", "themselves"},
      {"he's", "they're"},     {"she's", "they're"},    {"guy", "person"},         {"guys", "people"},
      {"lady", "person"},      {"ladies", "people"},    {"gentleman", "person"},   {"gentlemen", "people"},
      {"male", ""},            {"female", ""},          {"actress", "actor"},      {"songstress", "singer"},
      {"frontman", "singer"},  {"frontwoman", "singer"}, {"boyfriend", "partner"},  {"girlfriend", "partner"},
      {"mother", "parent"},    {"father", "parent"},    {"brother", "sibling"},    {"sister", "sibling"},
      {"son", "child"},        {"daughter", "child"},   {"husband", "partner"},    {"wife", "partner"},
      {"king", "ruler"},       {"queen", "ruler"},      {"mr", ""},                {"mrs", ""},
      {"ms", ""},              {"sir", ""},             {"madam", ""},             {"feminine", ""},
      {"masculine", ""}};
  std::set<std::string> drop;
  for (auto w : extra) {
    std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    drop.insert(w);
  }
  std::string out;
  size_t i = 0;
  auto is_word = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '\''; };
  while (i < text.size()) {
    if (!is_word(text[i])) {
      out += text[i++];
      continue;
    }
    size_t j = i;
    while (j < text.size() && is_word(text[j])) ++j;
    const std::string word = text.substr(i, j - i);
    std::string lower = word;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    std::string rep = word;
    bool changed = false;
    if (drop.count(lower)) {
      rep.clear();
      changed = true;
    } else if (auto it = table.find(lower); it != table.end() || table.count(strip_possessive(lower))) {
      std::string suffix;
      if (it == table.end()) {
        const std::string base = strip_possessive(lower);
        suffix = word.substr(base.size());
        it = table.find(base);
      }
      rep = it->second.empty() ? "" : it->second + suffix;
      changed = true;
      if (!rep.empty() && std::isupper(static_cast<unsigned char>(word[0]))) {
        const bool all_upper = word.size() > 1 && std::all_of(word.begin(), word.end(), [](unsigned char c) {
                                 return !std::isalpha(c) || std::isupper(c);
                               });
        if (all_upper) std::transform(rep.begin(), rep.end(), rep.begin(), [](unsigned char c) { return char(std::toupper(c)); });
        else rep[0] = char(std::toupper(static_cast<unsigned char>(rep[0])));
      }
    }
    if (changed && rep.empty()) {
      // Remove the word and one space next to it; carry capitalisation to the next word.
      const bool cap = std::isupper(static_cast<unsigned char>(word[0]));
      if (j < text.size() && text[j] == ' ') ++j;
      else if (!out.empty() && out.back() == ' ') out.pop_back();
      if (cap && j < text.size() && std::islower(static_cast<unsigned char>(text[j])) &&
          (out.empty() || out.back() == ' ' || out.back() == '.')) {
        out += char(std::toupper(static_cast<unsigned char>(text[j])));
        ++j;
      }
      i = j;
      continue;
    }
    out += rep;
    i = j;
  }
  return out;
}

}  // namespace synclap
