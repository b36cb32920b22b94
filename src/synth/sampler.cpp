// Sampler: attribute combinations with coverage and pair balance, seeded splits, held-out combinations.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <set>
#include <unordered_map>

#include "rng.h"
#include "synclap/error.h"
#include "synclap/synth.h"

namespace synclap {

namespace {

// The single-valued attributes in the order the sampler chooses them.
const std::vector<std::string>& scalar_attributes() {
  static const std::vector<std::string> a = {"genre", "mood", "tempo", "key", "mode",
                                             "time_signature", "dynamics", "ensemble", "production"};
  return a;
}

// Whether a tempo word's BPM range overlaps the genre's typical one; if so, [*lo, *hi] becomes the overlap
// (a genre without a range overlaps every word and leaves [*lo, *hi] as the word's range).
bool bpm_overlap(const Genre& g, const TempoWord& t, int64_t* lo, int64_t* hi) {
  *lo = t.bpm_low, *hi = t.bpm_high;
  if (g.bpm.size() != 2) return true;
  const int64_t a = std::max<int64_t>(*lo, g.bpm[0]), b = std::min<int64_t>(*hi, g.bpm[1]);
  if (a > b) return false;
  *lo = a, *hi = b;
  return true;
}

int& field(ClipSpec& s, const std::string& attr) {
  if (attr == "genre") return s.genre;
  if (attr == "mood") return s.mood;
  if (attr == "tempo") return s.tempo;
  if (attr == "key") return s.key;
  if (attr == "mode") return s.mode;
  if (attr == "time_signature") return s.time_signature;
  if (attr == "dynamics") return s.dynamics;
  if (attr == "ensemble") return s.ensemble;
  return s.production;
}

std::string pair_key(const std::string& a, const std::string& b) { return a < b ? a + "|" + b : b + "|" + a; }

}  // namespace

std::vector<std::string> ClipSpec::label_pairs(const Vocabulary& v) const {
  ClipSpec copy = *this;
  std::vector<std::string> out;
  for (const auto& a : scalar_attributes()) out.push_back(a + "=" + v.values(a)[size_t(field(copy, a))]);
  for (const auto& p : parts) out.push_back("instrument=" + v.instruments[size_t(p.instrument)].name);
  return out;
}

std::string ClipSpec::labels_json(const Vocabulary& v) const {
  nlohmann::ordered_json j;
  j["genre"] = v.genres[size_t(genre)].name;
  std::vector<std::string> names;
  nlohmann::ordered_json parts_j = nlohmann::ordered_json::array();
  for (const auto& p : parts) {
    const auto& in = v.instruments[size_t(p.instrument)];
    names.push_back(in.name);
    parts_j.push_back({{"instrument", in.name}, {"role", p.role}, {"program", in.program}, {"drums", in.drums}});
  }
  j["instruments"] = names;
  for (const auto& p : parts)
    if (p.role == "lead") {
      j["lead"] = v.instruments[size_t(p.instrument)].name;  // the lead instrument (zero-shot target)
      break;
    }
  j["parts"] = parts_j;
  j["mood"] = v.moods[size_t(mood)].name;
  j["tempo"] = v.tempos[size_t(tempo)].name;
  j["bpm"] = bpm;
  j["key"] = v.keys[size_t(key)].name;
  j["mode"] = v.modes[size_t(mode)].name;
  j["time_signature"] = v.time_signatures[size_t(time_signature)].name;
  j["dynamics"] = v.dynamics[size_t(dynamics)].name;
  j["ensemble"] = v.ensembles[size_t(ensemble)].name;
  j["production"] = v.productions[size_t(production)].name;
  if (!instrumentation.empty()) j["instrumentation"] = instrumentation;
  return j.dump();
}

struct Sampler::Impl {
  const Vocabulary& v;
  SamplerOptions opt;
  synth::Rng rng;
  int64_t index = 0;
  // Use counts of values and of value pairs. The clips whose instruments are balanced against the genre (in a set
  // that also has genre-instrumented ones) choose their instruments by counts kept over those clips alone: against
  // the counts of the whole set they would take exactly the instruments the genre clips leave unused, and for each
  // genre the ones it does not use (anti-genre, not balanced).
  struct Counts {
    std::unordered_map<std::string, int64_t> single, pairs;
    void add(const std::vector<std::string>& chosen) {
      for (size_t i = 0; i < chosen.size(); ++i) {
        ++single[chosen[i]];
        for (size_t j = i + 1; j < chosen.size(); ++j) ++pairs[pair_key(chosen[i], chosen[j])];
      }
    }
  };
  Counts all, balanced_clips, free_ensemble_clips;
  std::vector<std::pair<std::string, std::string>> heldout;
  std::set<std::string> heldout_keys;
  std::vector<int64_t> heldout_used;
  std::vector<std::set<int>> typical_of_genre;  // each genre's typical instruments, by index
  std::vector<std::vector<int>> meters_of_genre;     // each genre's typical time signatures, by index
  std::vector<std::vector<int>> ensembles_of_genre;  // each genre's ensemble sizes, by index

  Impl(const Vocabulary& vocab, SamplerOptions o) : v(vocab), opt(std::move(o)), rng(synth::derive_seed(opt.seed, 0, "sampler")) {
    if (!opt.heldout.empty()) {
      heldout = opt.heldout;
      for (const auto& [a, b] : heldout) {
        for (const auto& s : {a, b}) {
          const auto eq = s.find('=');
          if (eq == std::string::npos) throw Error("held-out value \"" + s + "\" must read attribute=value");
          const auto vals = v.values(s.substr(0, eq));
          if (std::find(vals.begin(), vals.end(), s.substr(eq + 1)) == vals.end())
            throw Error("held-out value \"" + s + "\" is not in the vocabulary");
        }
      }
    } else {
      synth::Rng hr(synth::derive_seed(opt.seed, 0, "heldout"));
      std::vector<int> melodic;
      for (size_t i = 0; i < v.instruments.size(); ++i)
        if (!v.instruments[i].drums) melodic.push_back(int(i));
      std::set<std::string> seen;
      for (int k = 0, tries = 0; k < opt.heldout_count && tries < 1000; ++tries) {
        const auto& g = v.genres[size_t(hr.below(int64_t(v.genres.size())))].name;
        std::string other;
        if (k % 2 == 0 && !melodic.empty())
          other = "instrument=" + v.instruments[size_t(hr.pick(melodic))].name;
        else
          other = "mood=" + v.moods[size_t(hr.below(int64_t(v.moods.size())))].name;
        const std::string a = "genre=" + g;
        if (!seen.insert(pair_key(a, other)).second) continue;
        heldout.emplace_back(a, other);
        ++k;
      }
    }
    for (const auto& [a, b] : heldout) heldout_keys.insert(pair_key(a, b));
    heldout_used.assign(heldout.size(), 0);
    // The vocabulary has checked that each name is one of its values.
    auto indices = [&](const std::vector<std::string>& names, const std::string& attr) {
      const auto all_names = v.values(attr);
      std::vector<int> out;
      for (const auto& name : names)
        out.push_back(int(std::find(all_names.begin(), all_names.end(), name) - all_names.begin()));
      return out;
    };
    for (const auto& g : v.genres) {
      std::set<int> t;
      for (const auto& name : g.typical_instruments) t.insert(v.find_instrument(name));
      typical_of_genre.push_back(std::move(t));
      meters_of_genre.push_back(indices(g.time_signatures, "time_signature"));
      ensembles_of_genre.push_back(indices(g.ensembles, "ensemble"));
    }
  }

  bool is_heldout(const std::string& a, const std::string& b) const { return heldout_keys.count(pair_key(a, b)) > 0; }

  // Chooses among candidate values the one with the lowest use (own count, unless pairs_only, + pair counts with
  // what is already chosen), skipping held-out pairs unless allowed; ties broken at random.
  int choose(const Counts& counts, const std::string& attr, const std::vector<std::string>& names,
             const std::vector<std::string>& chosen, bool allow_heldout, const std::vector<double>& bias = {},
             const std::vector<int>& candidates = {}, bool pairs_only = false) {
    std::vector<int> cand = candidates;
    if (cand.empty())
      for (size_t i = 0; i < names.size(); ++i) cand.push_back(int(i));
    double best = std::numeric_limits<double>::infinity();
    std::vector<int> ties;
    for (int i : cand) {
      const std::string av = attr + "=" + names[size_t(i)];
      bool bad = false;
      double score = 0;
      auto it = counts.single.find(av);
      if (!pairs_only) score += 4.0 * double(it == counts.single.end() ? 0 : it->second);
      for (const auto& c : chosen) {
        if (!allow_heldout && is_heldout(av, c)) bad = true;
        auto pt = counts.pairs.find(pair_key(av, c));
        score += double(pt == counts.pairs.end() ? 0 : pt->second);
      }
      if (bad) continue;
      if (!bias.empty()) score += bias[size_t(i)];
      if (score < best - 1e-9) {
        best = score;
        ties.assign(1, i);
      } else if (score <= best + 1e-9) {
        ties.push_back(i);
      }
    }
    if (ties.empty()) throw Error("sampler: every value of " + attr + " is excluded by the held-out pairs");
    return ties[size_t(rng.below(int64_t(ties.size())))];
  }

  ClipSpec next() {
    ClipSpec s;
    s.index = index++;
    s.seed = synth::derive_seed(opt.seed, uint64_t(s.index), "clip");
    s.seconds = opt.seconds;

    // A deliberate held-out clip: fix the two values of one held-out pair first.
    std::map<std::string, std::string> fixed;
    const bool deliberate = !heldout.empty() && rng.chance(opt.heldout_fraction);
    if (deliberate) {
      size_t k = size_t(std::min_element(heldout_used.begin(), heldout_used.end()) - heldout_used.begin());
      ++heldout_used[k];
      for (const auto& av : {heldout[k].first, heldout[k].second}) {
        const auto eq = av.find('=');
        fixed[av.substr(0, eq)] = av.substr(eq + 1);
      }
    }

    std::vector<std::string> chosen;
    bool ensemble_free = false;  // a clip whose ensemble does not follow its genre (SamplerOptions::genre_ensembles)
    for (const auto& attr : scalar_attributes()) {
      const auto names = v.values(attr);
      int value;
      if (fixed.count(attr)) {
        value = int(std::find(names.begin(), names.end(), fixed[attr]) - names.begin());
      } else {
        std::vector<double> bias;
        std::vector<int> allowed;  // empty: every value
        bool within_genre = false;  // balanced by the counts of pairs with the genre alone
        if (attr == "tempo") {     // only tempo words that overlap the genre's typical range: genre must be audible
          int64_t lo, hi;
          for (size_t t = 0; t < v.tempos.size(); ++t)
            if (bpm_overlap(v.genres[size_t(s.genre)], v.tempos[t], &lo, &hi)) allowed.push_back(int(t));
        }
        if (attr == "time_signature" && opt.genre_meters > 0 && !meters_of_genre[size_t(s.genre)].empty()) {
          // The genre's meters, for a share of the clips (its own generator), balanced within the genre: by the set's
          // counts, which the many 4/4 genres fill, a genre with 4/4 among others would never get 4/4.
          synth::Rng mr(synth::derive_seed(opt.seed, uint64_t(s.index), "genre-meters"));
          if (mr.uniform() < opt.genre_meters) allowed = meters_of_genre[size_t(s.genre)], within_genre = true;
        }
        if (attr == "ensemble" && opt.genre_ensembles > 0) {
          // The genre's ensemble sizes (every size for a genre that names none), for a share of the clips (its own
          // generator), balanced within the genre. The other clips are balanced among themselves: by the whole
          // set's counts they would make up for the solos the beat genres lack and be solos most of the time.
          synth::Rng er(synth::derive_seed(opt.seed, uint64_t(s.index), "genre-ensembles"));
          if (er.uniform() < opt.genre_ensembles)
            allowed = ensembles_of_genre[size_t(s.genre)], within_genre = true;
          else
            ensemble_free = true;
        }
        if (attr == "mode") {  // prefer the genre's modes and the mood's major/minor colour
          const auto& g = v.genres[size_t(s.genre)];
          const auto& m = v.moods[size_t(s.mood)];
          for (const auto& mode : v.modes) {
            double b = 0;
            if (!g.modes.empty() && std::find(g.modes.begin(), g.modes.end(), mode.name) == g.modes.end()) b += 6;
            if (!m.mode_bias.empty() && m.mode_bias != mode.quality) b += 6;
            bias.push_back(b);
          }
        }
        const Counts& counts = attr == "ensemble" && ensemble_free ? free_ensemble_clips : all;
        value = within_genre ? choose(all, attr, names, {chosen[0]}, deliberate, {}, allowed, /*pairs_only=*/true)
                             : choose(counts, attr, names, chosen, deliberate, bias, allowed);
      }
      field(s, attr) = value;
      chosen.push_back(attr + "=" + names[size_t(value)]);
    }

    // Tempo: a BPM inside the tempo word's range, nudged by the mood.
    // Where the word's range overlaps the genre's, inside the overlap (a "fast" dnb track is 165-178).
    const auto& tw = v.tempos[size_t(s.tempo)];
    int64_t lo, hi;
    bpm_overlap(v.genres[size_t(s.genre)], tw, &lo, &hi);
    s.bpm = int(std::clamp<int64_t>(rng.between(lo, hi) + v.moods[size_t(s.mood)].tempo_shift / 2, lo, hi));

    // Instruments: the ensemble's size, each given a role.
    const auto& ens = v.ensembles[size_t(s.ensemble)];
    const int n = int(rng.between(ens.min_instruments, ens.max_instruments));
    const bool drums = v.genres[size_t(s.genre)].drums != "none";
    // A genre with drums has its groove from the duo up (the drums carry most of what makes it that genre).
    // A band's second melodic instrument plays a counter-line under the lead (one instrument carries the tune,
    // so the clip's "lead" label is unambiguous); it is drawn from the instruments that can lead.
    const std::vector<std::string> order =
        drums ? std::vector<std::string>{"lead", "drums", "chords", "bass", "pad", "counter", "chords"}
              : std::vector<std::string>{"lead", "chords", "bass", "pad", "pad", "counter", "chords"};
    std::vector<std::string> roles;
    for (int i = 0; i < n; ++i) roles.push_back(order[size_t(i) % order.size()]);
    if (n == 1 && rng.chance(0.4)) roles[0] = "chords";
    const auto inames = v.values("instrument");
    // Instrumentation that follows the genre, for a share of the clips (its own generator: the default draws
    // nothing from it and stays as it was).
    static const std::set<int> kNone;
    const std::set<int>* typical = &kNone;
    if (opt.genre_instruments > 0) {
      synth::Rng tr(synth::derive_seed(opt.seed, uint64_t(s.index), "genre-instruments"));
      if (tr.uniform() < opt.genre_instruments) typical = &typical_of_genre[size_t(s.genre)];
      s.instrumentation = typical->empty() ? "balanced" : "genre";  // a genre without typical instruments: balanced
    }
    const bool balanced_clip = s.instrumentation == "balanced";
    const Counts& instrument_counts = balanced_clip ? balanced_clips : all;
    std::set<int> used;
    auto assign = [&](int inst, const std::string& role) {
      s.parts.push_back({inst, role});
      used.insert(inst);
      chosen.push_back("instrument=" + inames[size_t(inst)]);
    };
    if (fixed.count("instrument")) {
      const int inst = v.find_instrument(fixed["instrument"]);
      const auto& ir = v.instruments[size_t(inst)].roles;
      auto it = std::find_first_of(roles.begin(), roles.end(), ir.begin(), ir.end());
      if (it == roles.end()) it = roles.begin(), *it = ir[0];
      assign(inst, *it);
      roles.erase(it);
    }
    for (const auto& role : roles) {
      const std::string plays = role == "counter" ? "lead" : role;  // an instrument that can lead can answer
      std::vector<int> cand;
      for (size_t i = 0; i < v.instruments.size(); ++i) {
        const auto& r = v.instruments[i].roles;
        if (!used.count(int(i)) && std::find(r.begin(), r.end(), plays) != r.end()) cand.push_back(int(i));
      }
      if (cand.empty()) continue;  // the vocabulary has too few instruments of this role: a smaller ensemble
      // Only the genre's pairs matter for instruments (pairs with key or tempo would over-constrain).
      std::vector<std::string> ctx = {chosen[0]};
      // The drums are the genre's kit ("drum kit" plays the genre's GM kit), not any kit.
      if (role == "drums") {
        const int kit = v.genres[size_t(s.genre)].drum_kit;
        cand.erase(std::remove_if(cand.begin(), cand.end(),
                                  [&](int i) {
                                    const int program = v.instruments[size_t(i)].program;
                                    return program >= 0 && program != kit;
                                  }),
                   cand.end());
        if (cand.empty()) continue;
      }
      if (!typical->empty() && role != "drums") {
        std::vector<int> own;
        for (int i : cand)
          if (typical->count(i)) own.push_back(i);
        if (!own.empty()) cand = own;
      }
      const int inst = choose(instrument_counts, "instrument", inames, ctx, deliberate, {}, cand);
      assign(inst, role);
    }

    all.add(chosen);
    if (balanced_clip) balanced_clips.add(chosen);
    if (ensemble_free) free_ensemble_clips.add(chosen);

    // Split: held-out combinations never go to training.
    bool held = false;
    for (size_t i = 0; i < chosen.size() && !held; ++i)
      for (size_t j = i + 1; j < chosen.size() && !held; ++j) held = is_heldout(chosen[i], chosen[j]);
    if (held) {
      s.split = "heldout";
    } else {
      synth::Rng sr(synth::derive_seed(opt.seed, uint64_t(s.index), "split"));
      const double u = sr.uniform();
      s.split = u < opt.val_fraction ? "val" : u < opt.val_fraction + opt.test_fraction ? "test" : "train";
    }
    return s;
  }
};

Sampler::Sampler(const Vocabulary& vocab, SamplerOptions options)
    : impl_(std::make_unique<Impl>(vocab, std::move(options))) {}
Sampler::~Sampler() = default;
ClipSpec Sampler::next() { return impl_->next(); }
std::vector<ClipSpec> Sampler::take(int64_t n) {
  std::vector<ClipSpec> out;
  out.reserve(size_t(std::max<int64_t>(0, n)));
  for (int64_t i = 0; i < n; ++i) out.push_back(next());
  return out;
}
const std::vector<std::pair<std::string, std::string>>& Sampler::heldout_pairs() const { return impl_->heldout; }

}  // namespace synclap
