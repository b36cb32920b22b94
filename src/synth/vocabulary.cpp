// Vocabulary: parsing the JSON file of genres, instruments, moods, ... and finding the shipped default.
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "synclap/error.h"
#include "synclap/synth.h"
#include "synclap/util.h"

namespace synclap {
namespace {

using Json = nlohmann::json;

struct Ctx {
  std::string source;
  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw Error(source + ": " + where + ": " + what);
  }
};

void read_entry(const Json& j, VocabEntry& e, const std::string& where, const Ctx& c) {
  if (!j.is_object()) c.fail(where, "expected an object");
  if (!j.contains("name") || !j["name"].is_string() || j["name"].get<std::string>().empty())
    c.fail(where, "missing \"name\"");
  e.name = j["name"].get<std::string>();
  if (j.contains("synonyms")) {
    if (!j["synonyms"].is_array()) c.fail(where + " " + e.name, "\"synonyms\" must be an array of strings");
    for (const auto& s : j["synonyms"]) {
      if (!s.is_string() || s.get<std::string>().empty())
        c.fail(where + " " + e.name, "\"synonyms\" must be an array of non-empty strings");
      e.synonyms.push_back(s.get<std::string>());
    }
  }
  if (e.synonyms.empty()) e.synonyms.push_back(e.name);
}

template <class T>
T get_or(const Json& j, const char* key, T fallback) {
  if (!j.contains(key)) return fallback;
  return j[key].get<T>();
}

template <class T, class F>
std::vector<T> read_list(const Json& root, const char* key, const Ctx& c, F fill, bool required = true) {
  std::vector<T> out;
  if (!root.contains(key)) {
    if (required) c.fail(key, "missing list");
    return out;
  }
  if (!root[key].is_array() || root[key].empty()) c.fail(key, "must be a non-empty array");
  std::set<std::string> names;
  int i = 0;
  for (const auto& j : root[key]) {
    T e;
    const std::string where = std::string(key) + "[" + std::to_string(i++) + "]";
    read_entry(j, e, where, c);
    if (!names.insert(e.name).second) c.fail(where, "duplicate name \"" + e.name + "\"");
    try {
      fill(j, e);
    } catch (const nlohmann::json::exception& ex) {
      c.fail(where + " " + e.name, ex.what());
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<int> range2(const Json& j, const char* key, std::vector<int> fallback, const Ctx& c,
                        const std::string& where) {
  if (!j.contains(key)) return fallback;
  auto v = j[key].get<std::vector<int>>();
  if (v.size() != 2 || v[0] > v[1]) c.fail(where, std::string("\"") + key + "\" must be [low, high]");
  return v;
}

}  // namespace

Vocabulary Vocabulary::from_json(const std::string& text, const std::string& source) {
  Ctx c{source};
  Json root;
  try {
    root = Json::parse(text);
  } catch (const Json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  if (!root.is_object()) throw Error(source + ": expected a JSON object");
  Vocabulary v;
  v.source = source;
  v.json = text;

  v.genres = read_list<Genre>(root, "genres", c, [&](const Json& j, Genre& g) {
    if (j.contains("progressions")) g.progressions = j["progressions"].get<std::vector<std::vector<int>>>();
    if (g.progressions.empty()) g.progressions = {{1, 4, 5, 1}};
    for (const auto& p : g.progressions) {
      if (p.empty()) c.fail("genre " + g.name, "empty progression");
      for (int d : p)
        if (d < 1 || d > 7) c.fail("genre " + g.name, "progression degrees must be 1..7");
    }
    g.drums = get_or<std::string>(j, "drums", g.drums);
    g.comping = get_or<std::string>(j, "comping", g.comping);
    g.bass = get_or<std::string>(j, "bass", g.bass);
    g.melody = get_or<std::string>(j, "melody", g.melody);
    static const std::vector<std::string> melodies = {"straight", "long",  "flowing", "ostinato", "syncopated",
                                                      "riff",     "blues", "bebop",   "twang",    "song",
                                                      "sparse"};
    if (std::find(melodies.begin(), melodies.end(), g.melody) == melodies.end()) {
      std::string known;
      for (const auto& m : melodies) known += (known.empty() ? "" : ", ") + m;
      c.fail("genre " + g.name, "melody \"" + g.melody + "\" is not one of " + known);
    }
    g.bpm = range2(j, "bpm", g.bpm, c, "genre " + g.name);
    g.swing = get_or<double>(j, "swing", 0.0);
    g.sevenths = get_or<bool>(j, "sevenths", false);
    g.drum_kit = get_or<int>(j, "drum_kit", 0);
    if (j.contains("modes")) g.modes = j["modes"].get<std::vector<std::string>>();
    if (j.contains("time_signatures")) g.time_signatures = j["time_signatures"].get<std::vector<std::string>>();
    if (j.contains("typical_instruments"))
      g.typical_instruments = j["typical_instruments"].get<std::vector<std::string>>();
    if (j.contains("ensembles")) g.ensembles = j["ensembles"].get<std::vector<std::string>>();
  });
  v.instruments = read_list<Instrument>(root, "instruments", c, [&](const Json& j, Instrument& in) {
    in.drums = get_or<bool>(j, "drums", false);
    in.program = get_or<int>(j, "program", 0);
    if (in.program < -1 || in.program > 127) c.fail("instrument " + in.name, "program must be 0..127");
    if (j.contains("roles")) in.roles = j["roles"].get<std::vector<std::string>>();
    if (in.drums) in.roles = {"drums"};
    if (in.roles.empty()) c.fail("instrument " + in.name, "needs at least one role");
    static const std::set<std::string> known = {"lead", "chords", "bass", "pad", "drums"};
    for (const auto& r : in.roles)
      if (!known.count(r)) c.fail("instrument " + in.name, "unknown role \"" + r + "\"");
    auto r = range2(j, "range", {36, 96}, c, "instrument " + in.name);
    in.low = r[0];
    in.high = r[1];
    if (in.high - in.low < 12) c.fail("instrument " + in.name, "range must span at least an octave");
  });
  v.moods = read_list<Mood>(root, "moods", c, [&](const Json& j, Mood& m) {
    m.mode_bias = get_or<std::string>(j, "mode_bias", "");
    m.tempo_shift = get_or<int>(j, "tempo_shift", 0);
    m.velocity_shift = get_or<int>(j, "velocity_shift", 0);
    m.density = get_or<double>(j, "density", 1.0);
  });
  v.tempos = read_list<TempoWord>(root, "tempos", c, [&](const Json& j, TempoWord& t) {
    auto r = range2(j, "bpm", {60, 200}, c, "tempo " + t.name);
    t.bpm_low = std::max(20, r[0]);
    t.bpm_high = std::min(300, r[1]);
  });
  v.keys = read_list<VocabEntry>(root, "keys", c, [](const Json&, VocabEntry&) {});
  if (v.keys.size() != 12) c.fail("keys", "must list the 12 tonics, C first");
  v.modes = read_list<Mode>(root, "modes", c, [&](const Json& j, Mode& m) {
    m.intervals = j.at("intervals").get<std::vector<int>>();
    if (m.intervals.size() != 7 || m.intervals[0] != 0 ||
        !std::is_sorted(m.intervals.begin(), m.intervals.end()) || m.intervals[6] > 11)
      c.fail("mode " + m.name, "\"intervals\" must be 7 rising semitone offsets starting at 0");
    m.quality = get_or<std::string>(j, "quality", m.intervals[2] == 3 ? "minor" : "major");
  });
  v.time_signatures = read_list<TimeSignature>(root, "time_signatures", c, [&](const Json& j, TimeSignature& t) {
    t.numerator = j.at("numerator").get<int>();
    t.denominator = j.at("denominator").get<int>();
    if (t.numerator < 1 || t.numerator > 16 || (t.denominator != 2 && t.denominator != 4 && t.denominator != 8))
      c.fail("time signature " + t.name, "numerator 1..16, denominator 2, 4 or 8");
    if (j.contains("groups")) t.groups = j["groups"].get<std::vector<int>>();
    if (t.groups.empty()) t.groups.assign(t.numerator, 1);
    int sum = 0;
    for (int g : t.groups) sum += g;
    if (sum != t.numerator) c.fail("time signature " + t.name, "\"groups\" must add up to the numerator");
  });
  v.dynamics = read_list<Dynamics>(root, "dynamics", c, [&](const Json& j, Dynamics& d) {
    d.velocity = std::clamp(get_or<int>(j, "velocity", 90), 1, 127);
    d.gain = std::clamp(get_or<double>(j, "gain", 0.7), 0.01, 1.0);
    d.ramp = get_or<double>(j, "ramp", 0.0);
  });
  v.ensembles = read_list<EnsembleSize>(root, "ensembles", c, [&](const Json& j, EnsembleSize& e) {
    e.min_instruments = get_or<int>(j, "min", 1);
    e.max_instruments = get_or<int>(j, "max", e.min_instruments);
    if (e.min_instruments < 1 || e.max_instruments < e.min_instruments || e.max_instruments > 15)
      c.fail("ensemble " + e.name, "needs 1 <= min <= max <= 15");
  });
  v.productions = read_list<Production>(root, "productions", c, [&](const Json& j, Production& p) {
    p.reverb = std::clamp(get_or<double>(j, "reverb", 0.3), 0.0, 1.0);
    p.room = std::clamp(get_or<double>(j, "room", 0.5), 0.0, 1.0);
    p.chorus = std::clamp(get_or<double>(j, "chorus", 0.2), 0.0, 1.0);
    p.effects = get_or<std::string>(j, "effects", "");
  });
  if (root.contains("gendered_words")) v.gendered_words = root["gendered_words"].get<std::vector<std::string>>();

  // Every role the composer may ask for needs at least one instrument.
  for (const char* role : {"lead", "chords", "bass", "pad", "drums"}) {
    bool any = false;
    for (const auto& in : v.instruments)
      for (const auto& r : in.roles) any |= (r == role);
    if (!any) c.fail("instruments", std::string("no instrument has the role \"") + role + "\"");
  }
  for (const auto& g : v.genres)
    for (const auto& name : g.typical_instruments)
      if (v.find_instrument(name) < 0)
        c.fail("genre " + g.name, "typical instrument \"" + name + "\" is not in the instruments");
  const auto named = [](const auto& entries, const std::string& name) {
    return std::any_of(entries.begin(), entries.end(), [&](const auto& e) { return e.name == name; });
  };
  for (const auto& g : v.genres) {
    for (const auto& m : g.modes)
      if (!named(v.modes, m)) c.fail("genre " + g.name, "unknown mode \"" + m + "\"");
    for (const auto& m : g.time_signatures)
      if (!named(v.time_signatures, m))
        c.fail("genre " + g.name, "time signature \"" + m + "\" is not in the time_signatures");
    for (const auto& e : g.ensembles)
      if (!named(v.ensembles, e)) c.fail("genre " + g.name, "ensemble \"" + e + "\" is not in the ensembles");
  }
  return v;
}

Vocabulary Vocabulary::load(const std::string& path) {
  const std::string text = read_file(path, size_t(64) << 20);
  return from_json(text, path);
}

Vocabulary Vocabulary::builtin() {
  namespace fs = std::filesystem;
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("SYNCLAP_VOCAB")) candidates.push_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    // <source>/build*/synclap, <source>/build*/tests/..., <prefix>/bin/synclap
    for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
      candidates.push_back((p / "configs/vocab/default.json").string());
      candidates.push_back((p / "share/synclap/vocab/default.json").string());
    }
  }
  candidates.push_back("/usr/share/synclap/vocab/default.json");
  for (const auto& c : candidates)
    if (fs::is_regular_file(c, ec)) return load(c);
  throw Error("cannot find the default vocabulary configs/vocab/default.json (set SYNCLAP_VOCAB or pass --vocab)");
}

const std::vector<std::string>& Vocabulary::attributes() {
  static const std::vector<std::string> a = {"genre", "instrument", "mood", "tempo", "key", "mode",
                                             "time_signature", "dynamics", "ensemble", "production"};
  return a;
}

std::vector<std::string> Vocabulary::values(const std::string& attribute) const {
  std::vector<std::string> out;
  auto names = [&](const auto& list) {
    for (const auto& e : list) out.push_back(e.name);
  };
  if (attribute == "genre") names(genres);
  else if (attribute == "instrument") names(instruments);
  else if (attribute == "mood") names(moods);
  else if (attribute == "tempo") names(tempos);
  else if (attribute == "key") names(keys);
  else if (attribute == "mode") names(modes);
  else if (attribute == "time_signature") names(time_signatures);
  else if (attribute == "dynamics") names(dynamics);
  else if (attribute == "ensemble") names(ensembles);
  else if (attribute == "production") names(productions);
  else throw Error("unknown attribute \"" + attribute + "\"");
  return out;
}

int Vocabulary::find_instrument(const std::string& name) const {
  for (size_t i = 0; i < instruments.size(); ++i)
    if (instruments[i].name == name) return int(i);
  return -1;
}

}  // namespace synclap
