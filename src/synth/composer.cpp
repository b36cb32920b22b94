// The composer: from a clip's attributes to notes. Chords by genre and mode, melody, bass, drums by
// genre and time signature, dynamics, an arrangement by role, humanised timing and velocity.
#include <algorithm>
#include <cmath>
#include <map>

#include "rng.h"
#include "synclap/error.h"
#include "synclap/synth.h"

namespace synclap {
namespace {

using synth::Rng;

// GM percussion keys.
enum Drum {
  Kick = 36, Rim = 37, Snare = 38, Clap = 39, LowTom = 41, ClosedHat = 42, MidTom = 45, PedalHat = 44,
  OpenHat = 46, HighTom = 48, Crash = 49, Ride = 51, Cowbell = 56, HighConga = 62, LowConga = 64,
  Claves = 75, Shaker = 70
};

struct Meter {
  int num = 4, den = 4;
  std::vector<int> groups;
  double unit_q = 1.0;  // length of one denominator unit in quarter notes
  double bar_q() const { return num * unit_q; }
  int steps() const { return den == 8 ? num * 2 : num * 4; }  // 16th-note grid
  double step_q() const { return 0.25; }
  bool common() const { return num == 4 && den == 4; }
};

struct Ctx {
  const ClipSpec& s;
  const Vocabulary& v;
  const Genre& genre;
  const Mood& mood;
  const Dynamics& dyn;
  Meter meter;
  double q;               // seconds per quarter note
  int bars;
  std::vector<int> scale; // 7 pitch classes from the tonic (offsets)
  int tonic;
  Rng rng;
  double jitter_s;
  Score* score;

  double bar_start(int bar) const { return bar * meter.bar_q() * q; }
  // Seconds of a position given in quarters from the clip start, with swing on off-beat eighths.
  double time_of(double quarters) const {
    double whole = std::floor(quarters);
    double frac = quarters - whole;
    if (genre.swing > 0 && std::fabs(frac - 0.5) < 1e-6) frac = 0.5 + genre.swing * (2.0 / 3.0 - 0.5);
    return (whole + frac) * q;
  }
  int velocity(double t, int offset = 0) {
    double v = dyn.velocity + mood.velocity_shift + offset + dyn.ramp * (t / std::max(1e-6, s.seconds) - 0.5);
    v += rng.normal() * 5.0;
    return int(std::clamp(v, 12.0, 127.0));
  }
  void note(int ch, double t, double dur, int key, int vel) {
    t += rng.normal() * jitter_s;
    if (t < 0) t = 0;
    if (t >= s.seconds - 0.02 || key < 0 || key > 127) return;
    dur = std::min(dur, s.seconds - t);
    if (dur < 0.01) return;
    score->notes.push_back({t, dur, ch, key, std::clamp(vel, 1, 127)});
  }
  // Pitch class of scale degree d (1-based, may exceed 7).
  int degree_pc(int d) const {
    const int i = ((d - 1) % 7 + 7) % 7;
    return (tonic + scale[size_t(i)]) % 12;
  }
  std::vector<int> chord_pcs(int degree) const {
    std::vector<int> pcs = {degree_pc(degree), degree_pc(degree + 2), degree_pc(degree + 4)};
    if (genre.sevenths) pcs.push_back(degree_pc(degree + 6));
    return pcs;
  }
};

// The MIDI key of pitch class pc nearest to `target`.
int nearest(int pc, int target) {
  int k = target - ((target - pc) % 12 + 12) % 12;
  if (target - k > 6) k += 12;
  return k;
}
int fit(int key, int low, int high) {
  while (key < low) key += 12;
  while (key > high) key -= 12;
  return key;
}

// A voicing of the chord close to `center`.
std::vector<int> voicing(const std::vector<int>& pcs, int center, int low, int high) {
  std::vector<int> keys;
  for (int pc : pcs) keys.push_back(fit(nearest(pc, center), low, high));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

void chords_part(Ctx& c, const Track& tr, const Instrument& in, const std::vector<int>& prog, bool pad) {
  const int center = pad ? in.low + (in.high - in.low) * 55 / 100 : in.low + (in.high - in.low) * 40 / 100;
  const std::string style = pad ? "pad" : c.genre.comping;
  const double bar_q = c.meter.bar_q();
  // A stabs rhythm (16th positions), fixed for the clip so it repeats like a riff.
  std::vector<int> stab_steps;
  for (int st = 0; st < c.meter.steps(); ++st)
    if (st == 0 || (st % 2 == 0 && c.rng.chance(0.3)) || (st % 4 == 3 && c.rng.chance(0.25))) stab_steps.push_back(st);
  for (int b = 0; b < c.bars; ++b) {
    const auto keys = voicing(c.chord_pcs(prog[size_t(b) % prog.size()]), center, in.low, in.high);
    const double b0 = b * bar_q;
    const int vel_off = pad ? -18 : -6;
    if (style == "pad" || style == "block") {
      const int splits = (style == "block" && c.meter.common() && c.rng.chance(0.5)) ? 2 : 1;
      for (int h = 0; h < splits; ++h) {
        const double t = c.time_of(b0 + h * bar_q / splits);
        const int vel = c.velocity(t, vel_off);
        for (int k : keys) c.note(tr.channel, t, bar_q / splits * c.q * 0.98, k, vel);
      }
    } else if (style == "arpeggio") {
      std::vector<int> seq = keys;
      if (keys.size() > 2) seq.insert(seq.end(), keys.rbegin() + 1, keys.rend() - 1);
      seq.insert(seq.begin(), keys[0] - 12 >= in.low ? keys[0] - 12 : keys[0]);
      const int n = int(bar_q / 0.5);
      for (int i = 0; i < n; ++i) {
        const double t = c.time_of(b0 + i * 0.5);
        c.note(tr.channel, t, 0.5 * c.q * 1.6, seq[size_t(i) % seq.size()], c.velocity(t, vel_off - (i % 2) * 8));
      }
    } else if (style == "strum") {
      // Down-up eighth strums, accents on group starts; a few ms between strings.
      const int n = int(bar_q / 0.5);
      for (int i = 0; i < n; ++i) {
        if (i % 2 == 1 && c.rng.chance(0.35)) continue;
        const double t = c.time_of(b0 + i * 0.5);
        const bool down = i % 2 == 0;
        const int vel = c.velocity(t, vel_off + (down ? 4 : -10));
        for (size_t j = 0; j < keys.size(); ++j) {
          const size_t k = down ? j : keys.size() - 1 - j;
          c.note(tr.channel, t + 0.008 * double(j), 0.5 * c.q * 0.95, keys[k], vel);
        }
      }
    } else if (style == "offbeat") {
      const double unit = c.meter.den == 8 ? 1.5 : 1.0;  // dotted quarter beats in compound time
      for (double pos = unit / 2; pos < bar_q - 1e-9; pos += unit) {
        const double t = c.time_of(b0 + pos);
        const int vel = c.velocity(t, vel_off);
        for (int k : keys) c.note(tr.channel, t, 0.3 * c.q, k, vel);
      }
    } else {  // stabs
      for (int st : stab_steps) {
        const double t = c.time_of(b0 + st * c.meter.step_q());
        const int vel = c.velocity(t, vel_off + (st == 0 ? 6 : 0));
        for (int k : keys) c.note(tr.channel, t, 0.35 * c.q, k, vel);
      }
    }
  }
}

void bass_part(Ctx& c, const Track& tr, const Instrument& in, const std::vector<int>& prog) {
  const int low = in.low, high = std::min(in.high, in.low + 24);
  const double bar_q = c.meter.bar_q();
  const std::string style = c.genre.bass;
  // Syncopated riff: 16th positions fixed for the clip.
  std::vector<int> riff = {0};
  for (int st = 1; st < c.meter.steps(); ++st)
    if ((st % 4 == 3 && c.rng.chance(0.45)) || (st % 4 == 2 && c.rng.chance(0.35)) || (st % 8 == 6 && c.rng.chance(0.5)))
      riff.push_back(st);
  for (int b = 0; b < c.bars; ++b) {
    const int deg = prog[size_t(b) % prog.size()];
    const int next_deg = prog[size_t(b + 1) % prog.size()];
    const int root = fit(nearest(c.degree_pc(deg), low + 6), low, high);
    const int fifth = fit(nearest(c.degree_pc(deg + 4), root + 7), low, high);
    const int next_root = fit(nearest(c.degree_pc(next_deg), root), low, high);
    const double b0 = b * bar_q;
    auto hit = [&](double pos, double len_q, int key, int acc = 0) {
      const double t = c.time_of(b0 + pos);
      c.note(tr.channel, t, len_q * c.q * 0.92, key, c.velocity(t, acc));
    };
    if (style == "walking") {
      const int n = int(std::round(bar_q));
      const std::vector<int> tones = {root, fit(nearest(c.degree_pc(deg + 2), root + 4), low, high), fifth,
                                      fit(nearest(c.degree_pc(deg + 1), root + 2), low, high)};
      for (int i = 0; i < n; ++i) {
        int key = i == 0 ? root : (i == n - 1 ? next_root + (c.rng.chance(0.5) ? 1 : -1) : tones[size_t(c.rng.below(4))]);
        hit(i, 1.0, fit(key, low, high), i == 0 ? 4 : -4);
      }
    } else if (style == "root_fifth") {
      hit(0, c.meter.groups[0] * c.meter.unit_q, root, 4);
      double pos = 0;
      for (size_t g = 0; g + 1 < c.meter.groups.size(); ++g) pos += c.meter.groups[g] * c.meter.unit_q;
      if (c.meter.groups.size() > 1) hit(pos, bar_q - pos, fifth);
      if (c.meter.groups.size() > 2) hit(c.meter.groups[0] * c.meter.unit_q, c.meter.groups[1] * c.meter.unit_q, root);
    } else if (style == "octave") {
      const int n = int(bar_q / 0.5);
      for (int i = 0; i < n; ++i) hit(i * 0.5, 0.45, (i % 2 && root + 12 <= in.high) ? root + 12 : root, i % 2 ? -6 : 4);
    } else if (style == "syncopated") {
      for (size_t i = 0; i < riff.size(); ++i) {
        const int st = riff[i];
        const int nxt = i + 1 < riff.size() ? riff[i + 1] : c.meter.steps();
        const int key = (i % 3 == 2) ? fifth : (i % 4 == 3 && root + 12 <= in.high ? root + 12 : root);
        hit(st * 0.25, (nxt - st) * 0.25, key, st == 0 ? 6 : 0);
      }
    } else if (style == "pedal") {
      const int tonic = fit(nearest(c.tonic, low + 6), low, high);
      hit(0, bar_q, tonic, -4);
    } else {  // root
      double pos = 0;
      for (size_t g = 0; g < c.meter.groups.size(); g += 2) {
        double len = 0;
        for (size_t h = g; h < std::min(g + 2, c.meter.groups.size()); ++h) len += c.meter.groups[h] * c.meter.unit_q;
        hit(pos, len, root, g == 0 ? 4 : -2);
        pos += len;
      }
    }
  }
}

// The lead's phrasing by genre (the vocabulary's "melody"), so that a line carries its genre even alone:
//   straight    one-bar motifs of mixed lengths (density from the mood), a scale walk snapped to chord tones
//   long        sustained notes of 1.5-4 quarters (ambient, film music)
//   flowing     running eighths, sometimes a held note at the bar's end (classical lines)
//   ostinato    a repeated sixteenth figure (eighths above 150 BPM) arpeggiating the chord (electronic dance)
//   syncopated  onsets mostly off the beat, half of them on the sixteenths between, short notes (funk, latin)
//   riff        driving staccato eighths on the chord's root, fifth and octave, low in the range (rock, metal)
// The grid (in quarters) of the fixed-grid phrasings: sixteenths for an ostinato (eighths above 150 BPM),
// eighths for a riff or a flowing line.
double figure_grid(const Ctx& c, const std::string& style) { return style == "ostinato" && c.s.bpm <= 150 ? 0.25 : 0.5; }

std::vector<std::pair<double, double>> melody_rhythm(Ctx& c, const std::string& style, double density) {
  const double bar_q = c.meter.bar_q();
  std::vector<std::pair<double, double>> notes;  // (position, length) in quarters
  if (style == "long") {
    static const std::vector<double> lengths = {1.5, 2.0, 2.0, 3.0, 4.0};
    for (double pos = 0; pos < bar_q - 1e-9;) {
      const double len = std::min(c.rng.pick(lengths), bar_q - pos);
      notes.push_back({pos, len});
      pos += len;
    }
  } else if (style == "flowing" || style == "riff") {
    const double step = figure_grid(c, style);
    for (double pos = 0; pos < bar_q - 1e-9; pos += step) notes.push_back({pos, std::min(step, bar_q - pos)});
    if (style == "flowing" && notes.size() >= 3 && c.rng.chance(0.5)) {
      notes.pop_back();
      notes.back().second = bar_q - notes.back().first;
    }
  } else if (style == "ostinato") {
    const double step = figure_grid(c, style);
    for (double pos = 0; pos < bar_q - 1e-9; pos += step)
      if (pos == 0 || !c.rng.chance(0.25)) notes.push_back({pos, std::min(step, bar_q - pos)});
  } else if (style == "syncopated") {
    for (double pos = 0; pos < bar_q - 1e-9; pos += 0.25) {
      const double frac = pos - std::floor(pos);
      // the beat 15 %, its "and" 30 %, the sixteenths between ("e", "a") 50 %
      if (c.rng.chance(frac < 1e-9 ? 0.15 : std::fabs(frac - 0.5) < 1e-9 ? 0.3 : 0.5)) notes.push_back({pos, 0.25});
    }
    for (size_t k = 0; k < notes.size(); ++k) {
      const double next = k + 1 < notes.size() ? notes[k + 1].first : bar_q;
      notes[k].second = std::min(0.75, next - notes[k].first);
    }
  } else {  // straight
    double pos = 0;
    while (pos < bar_q - 1e-9) {
      static const std::vector<double> lengths = {0.25, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0};
      double len;
      do {
        const double r = c.rng.uniform();
        const size_t idx = size_t(std::clamp(r / std::max(0.3, density) * 3.0, 0.0, 6.0));
        len = lengths[std::min<size_t>(idx, lengths.size() - 1)];
      } while (len > bar_q - pos + 1e-9 && len > 0.25);
      len = std::min(len, bar_q - pos);
      if (!c.rng.chance(0.15 / std::max(0.5, density))) notes.push_back({pos, len});
      pos += len;
    }
  }
  if (notes.empty()) notes.push_back({0, bar_q});
  return notes;
}

void melody_part(Ctx& c, const Track& tr, const Instrument& in, const std::vector<int>& prog, int entry_bar) {
  const int low = std::max(in.low, in.low + (in.high - in.low) / 4);
  const int high = std::min(in.high, low + 19);
  const double bar_q = c.meter.bar_q();
  const double density = c.mood.density * (c.s.bpm > 140 ? 0.7 : 1.0);
  const std::string& style = c.genre.melody;
  // How much of each note's length sounds.
  const double legato = style == "long" ? 0.98 : style == "riff" ? 0.45 : style == "ostinato" ? 0.6
                        : style == "syncopated" ? 0.7 : 0.9;
  const auto motif_a = melody_rhythm(c, style, density), motif_b = melody_rhythm(c, style, density);
  const int center = (low + high) / 2;
  if (style == "ostinato" || style == "riff") {
    // Chord-tone figures: the ostinato climbs the chord from its root (one shape per clip, up or up-down); the
    // riff stays on the root in the lower part of the range with fifths and octaves on some steps.
    const bool updown = c.rng.chance(0.5);
    const double grid = figure_grid(c, style);
    for (int b = entry_bar; b < c.bars; ++b) {
      const auto& motif = (b / 2) % 2 == 0 ? motif_a : motif_b;
      const auto pcs = c.chord_pcs(prog[size_t(b) % prog.size()]);
      const int root = fit(nearest(pcs[0], style == "riff" ? low + 5 : center - 4), low, high);
      for (const auto& [pos, len] : motif) {
        const int step = int(std::llround(pos / grid));
        int key;
        if (style == "riff") {
          key = step % 4 == 3 ? fit(nearest(pcs[2], root + 7), low, high) : step % 8 == 6 ? fit(root + 12, low, high) : root;
        } else {
          const int n = int(pcs.size()) + (updown ? int(pcs.size()) - 2 : 0);
          int i = n > 0 ? step % n : 0;
          if (i >= int(pcs.size())) i = 2 * (int(pcs.size()) - 1) - i;
          key = fit(nearest(pcs[size_t(i)], root + (7 * i) / 2), low, high);
        }
        const double t = c.time_of(b * bar_q + pos);
        c.note(tr.channel, t, len * c.q * legato, key, c.velocity(t, step % 4 == 0 ? 8 : 0));
      }
    }
    return;
  }
  // Scale-degree walk, snapped to chord tones on strong positions.
  int deg = 1 + int(c.rng.below(3)) * 2;  // start on 1, 3 or 5
  int last_key = fit(nearest(c.degree_pc(deg), center), low, high);
  for (int b = entry_bar; b < c.bars; ++b) {
    const auto& motif = (b / 2) % 2 == 0 ? motif_a : motif_b;
    const int chord_deg = prog[size_t(b) % prog.size()];
    const auto pcs = c.chord_pcs(chord_deg);
    for (const auto& [pos, len] : motif) {
      const bool strong = std::fabs(pos - std::round(pos)) < 1e-9 && (int(std::round(pos)) % 2 == 0);
      static const std::vector<int> steps = {-2, -1, -1, 0, 1, 1, 2, -3, 3};
      static const std::vector<int> runs = {-1, 1, 1, 1, -1, 2, -2};  // flowing lines move by step
      deg += style == "flowing" ? c.rng.pick(runs) : c.rng.pick(steps);
      int pc = c.degree_pc(deg);
      if (strong && std::find(pcs.begin(), pcs.end(), pc) == pcs.end()) {
        // move to the nearest chord tone in scale steps
        for (int d = 1; d < 4; ++d) {
          if (std::find(pcs.begin(), pcs.end(), c.degree_pc(deg + d)) != pcs.end()) { deg += d; break; }
          if (std::find(pcs.begin(), pcs.end(), c.degree_pc(deg - d)) != pcs.end()) { deg -= d; break; }
        }
        pc = c.degree_pc(deg);
      }
      int key = nearest(pc, last_key);
      if (key > high) { key -= 12; deg -= 7; }
      if (key < low) { key += 12; deg += 7; }
      key = fit(key, low, high);
      last_key = key;
      const double t = c.time_of(b * bar_q + pos);
      c.note(tr.channel, t, len * c.q * legato, key, c.velocity(t, strong ? 8 : 0));
    }
  }
}

// 16-step patterns in 4/4 ("x" hit, "o" soft hit); other meters play them through drum_step_map().
struct Pattern {
  std::vector<std::pair<int, std::string>> lanes;  // (drum key, 16 chars)
  bool crash = true, fill = true;
};

const std::map<std::string, Pattern>& patterns() {
  static const std::map<std::string, Pattern> p = {
      {"rock", {{{Kick, "x.......x.x....."}, {Snare, "....x.......x..."}, {ClosedHat, "x.x.x.x.x.x.x.x."}}}},
      {"pop", {{{Kick, "x.....x.x......."}, {Snare, "....x.......x..."}, {ClosedHat, "x.o.x.o.x.o.x.o."}, {Shaker, "oooooooooooooooo"}}}},
      {"four_on_floor", {{{Kick, "x...x...x...x..."}, {Clap, "....x.......x..."}, {OpenHat, "..x...x...x...x."}, {ClosedHat, "o.o.o.o.o.o.o.o."}}}},
      {"techno", {{{Kick, "x...x...x...x..."}, {ClosedHat, "oooooooooooooooo"}, {OpenHat, "..x...x...x...x."}, {Rim, "......x.......x."}}, false, false}},
      {"disco", {{{Kick, "x...x...x...x..."}, {Snare, "....x.......x..."}, {OpenHat, "..x...x...x...x."}, {ClosedHat, "x...x...x...x..."}}}},
      {"hiphop", {{{Kick, "x.....x...x....."}, {Snare, "....x.......x..."}, {ClosedHat, "x.x.x.x.x.x.x.xo"}}, false, false}},
      {"jazz_swing", {{{Ride, "x...x.x.x...x.x."}, {PedalHat, "....x.......x..."}, {Kick, "o.......o......."}, {Snare, "......o.......o."}}, false, true}},
      {"shuffle", {{{Kick, "x.......x.x....."}, {Snare, "....x.......x..."}, {ClosedHat, "x.x.x.x.x.x.x.x."}}}},
      {"bossa", {{{Kick, "x..xx..xx..xx..x"}, {Rim, "x..x..x...x..x.."}, {ClosedHat, "oooooooooooooooo"}}, false, false}},
      {"reggae", {{{Kick, "........x......."}, {Rim, "........x......."}, {ClosedHat, "x.x.x.x.x.x.x.x."}}, false, true}},
      {"funk", {{{Kick, "x.x.......x..x.."}, {Snare, "....x..o.o..x..o"}, {ClosedHat, "xoxoxoxoxoxoxoxo"}}}},
      {"metal", {{{Kick, "xxxxxxxxxxxxxxxx"}, {Snare, "....x.......x..."}, {Ride, "x.x.x.x.x.x.x.x."}}}},
      {"country", {{{Kick, "x.......x......."}, {Snare, "oxoxoxoxoxoxoxox"}}}},
      {"dnb", {{{Kick, "x.........x....."}, {Snare, "....x.......x..."}, {ClosedHat, "x.x.x.x.x.x.x.x."}, {Ride, "..x...x...x...x."}}}},
      {"latin", {{{Cowbell, "x.x.x.x.x.x.x.x."}, {Kick, "...x...x...x...x"}, {HighConga, "..x...x...x..x.x"}, {LowConga, "......x.......x."}, {Claves, "x..x..x...x.x..."}}, false, false}},
      {"cinematic", {{{Kick, "x.......x......."}, {LowTom, "..........x.x.x."}, {MidTom, "............x..."}}, true, false}},
  };
  return p;
}

// Where each 16th step of a bar in this meter takes its hits from in the genre's 4/4 pattern, so that every
// meter keeps the genre's groove (its kick and backbeat placement, its hats, ride, cowbell or congas). The bar
// is cut into beats (quarters in x/4, the meter's groups in x/8), and each beat plays one beat of the pattern:
// two-beat bars play its first half and its second half in turn (two bars of 2/4 make one of 4/4), three-beat
// bars its beats 1, 3 and 4 (the downbeat, the middle where a one-drop lands, the closing backbeat), longer bars
// its downbeat first, its last beat last and its beats 2 and 3 in turn between. A beat longer than a quarter (a
// group of three eighths) goes on with the off-beat eighth of its source beat. In 4/4 this is the pattern itself.
std::vector<int> drum_step_map(const Meter& m, int bar) {
  std::vector<int> beats;  // each beat's length in 16th steps
  if (m.den == 8) {
    for (int g : m.groups) beats.push_back(2 * g);
  } else {
    for (int i = 0; i < m.num; ++i) beats.push_back(std::max(1, 16 / std::max(1, m.den)));
  }
  const size_t n = beats.size();
  std::vector<int> map;
  for (size_t k = 0; k < n; ++k) {
    int src = 0;
    if (n == 2) src = int(k) + (bar % 2 == 1 ? 2 : 0);
    else if (n == 3) src = k == 0 ? 0 : int(k) + 1;
    else if (k > 0) src = k + 1 == n ? 3 : (k % 2 == 1 ? 1 : 2);
    for (int i = 0; i < beats[k]; ++i) map.push_back(4 * src + (i < 4 ? i : 2 + (i - 4) % 2));
  }
  return map;
}

void drums_part(Ctx& c, const Track& tr) {
  const std::string style = c.genre.drums;
  const auto& pats = patterns();
  auto it = pats.find(style);
  const Pattern& pat = it != pats.end() ? it->second : pats.at("rock");
  const double bar_q = c.meter.bar_q();
  const double step = c.meter.step_q();
  const std::vector<int> maps[2] = {drum_step_map(c.meter, 0), drum_step_map(c.meter, 1)};
  for (int b = 0; b < c.bars; ++b) {
    const std::vector<int>& map = maps[b % 2];
    const int n = int(map.size());
    const double b0 = b * bar_q;
    const bool fill_bar = pat.fill && b % 4 == 3;
    auto hit = [&](double pos_q, int key, int acc) {
      const double t = c.time_of(b0 + pos_q);
      c.note(tr.channel, t, 0.1, key, c.velocity(t, acc));
    };
    if (pat.crash && b % 4 == 0) hit(0, Crash, 4);
    for (const auto& [key, lane] : pat.lanes)
      for (int st = 0; st < n; ++st) {
        if (fill_bar && st >= n - 4) continue;
        const char x = lane[size_t(map[size_t(st)])];
        if (x == 'x') hit(st * step, key, map[size_t(st)] % 4 == 0 ? 6 : 0);
        else if (x == 'o') hit(st * step, key, -28);
      }
    if (fill_bar) {
      static const int toms[] = {HighTom, MidTom, LowTom, Snare};
      for (int i = 0; i < 4; ++i) hit(bar_q - 1.0 + i * 0.25, toms[(i + b) % 4], 0);
    }
  }
}

}  // namespace

Score compose(const ClipSpec& s, const Vocabulary& v) {
  Score score;
  score.seconds = s.seconds;
  score.bpm = s.bpm;
  const auto& prod = v.productions.at(size_t(s.production));
  Rng prng(synth::derive_seed(s.seed, 0, "production"));
  // Vary the effects a little around the production's settings.
  score.reverb = std::clamp(prod.reverb + prng.uniform(-0.08, 0.08), 0.0, 1.0);
  score.room = std::clamp(prod.room + prng.uniform(-0.1, 0.1), 0.0, 1.0);
  score.chorus = std::clamp(prod.chorus + prng.uniform(-0.05, 0.05), 0.0, 1.0);
  score.effects = prod.effects;
  const auto& dyn = v.dynamics.at(size_t(s.dynamics));
  score.gain = dyn.gain;

  const auto& ts = v.time_signatures.at(size_t(s.time_signature));
  Meter m;
  m.num = ts.numerator;
  m.den = ts.denominator;
  m.groups = ts.groups;
  m.unit_q = 4.0 / ts.denominator;
  const auto& mode = v.modes.at(size_t(s.mode));
  Ctx c{s, v, v.genres.at(size_t(s.genre)), v.moods.at(size_t(s.mood)), dyn, m, 60.0 / std::max(20, s.bpm), 0,
        mode.intervals, s.key % 12, Rng(synth::derive_seed(s.seed, 0, "compose")), 0.0, &score};
  c.bars = int(std::ceil(s.seconds / (m.bar_q() * c.q))) + 1;
  c.jitter_s = c.genre.drums == "techno" || c.genre.drums == "four_on_floor" ? 0.002 : 0.007;
  const auto& prog = c.genre.progressions[size_t(c.rng.below(int64_t(c.genre.progressions.size())))];

  int next_channel = 0;
  for (size_t i = 0; i < s.parts.size(); ++i) {
    const auto& part = s.parts[i];
    const auto& in = v.instruments.at(size_t(part.instrument));
    Track t;
    t.instrument = in.name;
    t.role = part.role;
    t.drums = in.drums;
    if (in.drums) {
      t.channel = 9;
      t.bank = 128;
      t.program = in.program >= 0 ? in.program : c.genre.drum_kit;
      t.volume = 100;
      t.pan = 64;
    } else {
      if (next_channel == 9) ++next_channel;
      t.channel = next_channel++;
      t.program = in.program;
      t.volume = part.role == "lead" ? 112 : part.role == "bass" ? 108 : part.role == "pad" ? 78 : 92;
      t.pan = part.role == "bass" ? 64 : int(c.rng.between(34, 94));
    }
    score.tracks.push_back(t);
    if (t.drums) {
      drums_part(c, t);
    } else if (part.role == "bass") {
      bass_part(c, t, in, prog);
    } else if (part.role == "chords" || part.role == "pad") {
      chords_part(c, t, in, prog, part.role == "pad");
      if (s.parts.size() == 1) melody_part(c, t, in, prog, 0);  // a solo keyboard/guitar plays both
    } else {
      // Lead: in larger ensembles it sometimes enters after the first bar.
      const int entry = s.parts.size() >= 3 && c.rng.chance(0.4) ? 1 : 0;
      melody_part(c, t, in, prog, entry);
    }
  }
  std::stable_sort(score.notes.begin(), score.notes.end(),
                   [](const NoteEvent& a, const NoteEvent& b) { return a.start < b.start; });
  return score;
}

}  // namespace synclap
