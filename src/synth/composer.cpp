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
  // A note at time t, humanised by the clip's timing jitter unless `exact` (the later notes of one gesture).
  void note(int ch, double t, double dur, int key, int vel, bool exact = false) {
    if (!exact) t += rng.normal() * jitter_s;
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
//   blues, bebop, twang, song, sparse: idioms with their own notes and gestures (idiom_part below)
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

// Idiomatic lead lines: genres whose tunes are told apart by their vocabulary of notes and gestures more than by
// their rhythmic grid. Each writes the whole lead part.
//   blues   call and response on the blues scale (minor pentatonic with the flat fifth): a swung call of 3-6 notes
//           that lands on a held tonic, fifth or flat seventh, then an answer or a rest; the call's rhythm comes
//           back (the AAB of a blues verse) and minor thirds are bent up to the major third
//   bebop   runs of swung eighths that start off the beat, chord tones (with sevenths) on the beats and chromatic
//           or scale approach notes between, each run ending on a short accent (jazz)
//   twang   the major pentatonic (scale degrees 1 2 3 5 6) with grace-note hammer-ons from the step below and double
//           stops a diatonic third apart on the longer notes; every second bar ends on the tonic (country)
//   song    a singable two-bar tune in quarters and halves on the pentatonic degrees, sung A A B A: the same tune
//           twice, a higher middle, the tune again ending on the tonic (folk)
//   sparse  one to three notes a bar on the chord's upper tones (seventh, ninth, third, fifth), played behind the
//           beat, long and soft (lo-fi)
bool is_idiom(const std::string& style) {
  return style == "blues" || style == "bebop" || style == "twang" || style == "song" || style == "sparse";
}

// The keys in [low, high] whose pitch class is in pcs, ascending.
std::vector<int> ladder(const std::vector<int>& pcs, int low, int high) {
  std::vector<int> keys;
  for (int k = low; k <= high; ++k)
    if (std::find(pcs.begin(), pcs.end(), ((k % 12) + 12) % 12) != pcs.end()) keys.push_back(k);
  return keys;
}
// A random step along a ladder of n rungs from rung r, kept on the ladder.
int walk(Rng& rng, int r, const std::vector<int>& steps, size_t n) {
  return std::clamp(r + rng.pick(steps), 0, int(n) - 1);
}
// The index in a ladder of the key nearest to `key`.
int rung(const std::vector<int>& lad, int key) {
  int best = 0;
  for (int i = 1; i < int(lad.size()); ++i)
    if (std::abs(lad[size_t(i)] - key) < std::abs(lad[size_t(best)] - key)) best = i;
  return best;
}

void idiom_part(Ctx& c, const Track& tr, const std::string& style, int low, int high, const std::vector<int>& prog,
                int entry_bar) {
  // The idioms' choices: starts, landing notes and steps (in rungs) of the walks, note lengths (in quarters).
  static const std::vector<double> kCallStarts = {0.0, 0.5, 1.0}, kSongLengths = {1.0, 1.0, 1.0, 0.5, 2.0},
                                   kTwangLengths = {0.5, 0.5, 0.5, 1.0, 1.0, 1.5, 2.0};
  static const std::vector<int> kLandings = {0, 0, 7, 10}, kCallSteps = {-1, -1, -2, 1, 0, -1, 2},
                                kAnswerSteps = {1, 2, -1}, kSongSteps = {-1, 1, 1, 0, -1, 2, -2},
                                kTwangSteps = {-1, 1, 1, -1, 2, -2, 0};
  const double bar_q = c.meter.bar_q();
  const int top = int(bar_q * 2 + 0.5);  // eighths in a bar
  auto play = [&](double pos_q, double len_q, int key, double legato, int acc, double late_s = 0) {
    const double t = c.time_of(pos_q) + late_s;
    c.note(tr.channel, t, len_q * c.q * legato, key, c.velocity(t, acc));
  };
  // A grace note a sixteenth's length before the main note (a bend or a hammer-on), the two humanised together;
  // `with` (>= 0) sounds with the main note (a double stop). Returns nothing; notes past the clip are dropped.
  auto grace_then = [&](double pos_q, double len_q, int grace, int key, double legato, int with = -1) {
    const double t = c.time_of(pos_q) + c.rng.normal() * c.jitter_s, g = 0.125 * c.q;
    if (grace >= 0) c.note(tr.channel, t, g, grace, c.velocity(t, -2), true);
    const double tm = grace >= 0 ? t + g : t, len = len_q * c.q * legato - (grace >= 0 ? g : 0);
    const int vel = c.velocity(tm, 4);
    c.note(tr.channel, tm, len, key, vel, true);
    if (with >= 0) c.note(tr.channel, tm, len, with, vel - 10, true);
  };
  if (style == "blues") {
    std::vector<int> pcs;
    for (int o : {0, 3, 5, 6, 7, 10}) pcs.push_back((c.tonic + o) % 12);
    const auto lad = ladder(pcs, low, high);
    if (lad.size() < 4) return;
    // The call's rhythm, fixed for the clip: eighths and quarters from a start on or off the beat, the last note held.
    std::vector<std::pair<double, double>> call;
    double pos = c.rng.pick(kCallStarts);
    const int n = int(c.rng.between(3, 6));
    for (int i = 0; i < n - 1 && pos < bar_q - 1.0; ++i) {
      const double len = c.rng.chance(0.65) ? 0.5 : 1.0;
      call.push_back({pos, len});
      pos += len;
    }
    call.push_back({pos, std::max(1.0, std::min(2.5, bar_q + 1.0 - pos))});  // may ring into the next bar
    int r = int(lad.size()) * 2 / 3;
    for (int b = entry_bar; b < c.bars; b += 2) {
      const double b0 = b * bar_q;
      for (size_t i = 0; i < call.size(); ++i) {
        const auto [p, len] = call[i];
        if (i + 1 == call.size()) {  // land on the tonic, fifth or flat seventh
          const int target = (c.tonic + c.rng.pick(kLandings)) % 12;
          int best = -1;
          for (int j = 0; j < int(lad.size()); ++j)
            if (lad[size_t(j)] % 12 == target && (best < 0 || std::abs(j - r) < std::abs(best - r))) best = j;
          if (best >= 0) r = best;
        } else {
          r = walk(c.rng, r, kCallSteps, lad.size());
        }
        const int key = lad[size_t(r)];
        if ((key - c.tonic + 12) % 12 == 3 && len >= 0.5 && c.rng.chance(0.6)) {  // the bend: minor third up to major
          grace_then(b0 + p, len, key, key + 1, 0.9);
        } else {
          play(b0 + p, len, key, 0.9, i == 0 ? 6 : 0);
        }
      }
      if (b + 1 < c.bars && c.rng.chance(0.4)) {  // a short answer at the end of the second bar
        const double b1 = (b + 1) * bar_q;
        for (double q = std::max(0.0, bar_q - 1.5); q < bar_q - 0.25; q += 0.5) {
          r = walk(c.rng, r, kAnswerSteps, lad.size());
          play(b1 + q, 0.5, lad[size_t(r)], 0.8, -4);
        }
      }
      if (r < 2 || r > int(lad.size()) - 3) r = int(lad.size()) * 2 / 3;  // the next call starts high again
    }
  } else if (style == "bebop") {
    int cur = (low + high) / 2, dir = 1;
    int e = int(std::llround(entry_bar * bar_q * 2));
    const int end = int(c.bars * bar_q * 2);
    if (c.rng.chance(0.6)) ++e;  // the first run starts off the beat
    while (e < end) {
      const int run = int(c.rng.between(5, 12));
      for (int i = 0; i < run && e < end; ++i, ++e) {
        const int bar = int(e / std::max(1, top));
        const auto pcs = c.chord_pcs(prog[size_t(bar) % prog.size()]);
        if (cur + 4 * dir > high || cur + 4 * dir < low || c.rng.chance(0.12)) dir = -dir;
        auto chord_tone_from = [&](int k, int min_step) {
          for (int d = min_step; d < 12; ++d)
            if (std::find(pcs.begin(), pcs.end(), (((k + d * dir) % 12) + 12) % 12) != pcs.end()) return k + d * dir;
          return k + 2 * dir;
        };
        int key;
        if (e % 2 == 0) {
          key = chord_tone_from(cur, 1);
        } else {
          const int target = chord_tone_from(cur, 2);
          key = target - dir;  // a chromatic approach, or half the time the scale step toward the target
          if (c.rng.chance(0.5)) {
            int k = cur + dir;
            while (std::find(c.scale.begin(), c.scale.end(), ((k - c.tonic) % 12 + 12) % 12) == c.scale.end()) k += dir;
            if (k != target) key = k;
          }
          if (key == cur) key = target;
        }
        key = fit(key, low, high);
        const bool last = i + 1 == run;
        play(e * 0.5, 0.5, key, last ? 0.45 : 0.85, last ? 10 : (e % 2 ? -6 : 2));
        cur = key;
      }
      e += int(c.rng.between(1, 4));  // breathe
    }
  } else if (style == "twang" || style == "song") {
    const std::vector<int> pcs = {c.degree_pc(1), c.degree_pc(2), c.degree_pc(3), c.degree_pc(5), c.degree_pc(6)};
    const auto lad = ladder(pcs, low, high);
    if (lad.size() < 5) return;
    const int home = rung(lad, fit(nearest(c.degree_pc(1), (low + high) / 2), low, high));
    if (style == "song") {
      // The tune's rhythm over two bars: quarters, pairs of eighths, halves; the second bar ends on a long note.
      std::vector<std::pair<double, double>> rhythm;
      for (int half = 0; half < 2; ++half) {
        double pos = half * bar_q;
        const double stop = half == 0 ? bar_q : 2 * bar_q - std::min(2.0, bar_q / 2);
        while (pos < stop - 1e-9) {
          const double len = std::min(stop - pos, c.rng.pick(kSongLengths));
          if (len == 0.5) {
            rhythm.push_back({pos, 0.5});
            if (pos + 0.5 < stop - 1e-9) rhythm.push_back({pos + 0.5, 0.5});
            pos += 1.0;
          } else {
            rhythm.push_back({pos, len});
            pos += len;
          }
        }
        if (half == 1) rhythm.push_back({stop, 2 * bar_q - stop});
      }
      auto tune = [&](int start, int end_rung) {
        std::vector<int> rs;
        int r = start;
        for (size_t i = 0; i < rhythm.size(); ++i) {
          if (i + 1 == rhythm.size()) r = end_rung;
          else r = walk(c.rng, r, kSongSteps, lad.size());
          rs.push_back(r);
        }
        return rs;
      };
      const int fifth = rung(lad, fit(nearest(c.degree_pc(5), lad[size_t(home)] + 7), low, high));
      const auto a = tune(home, fifth), a_end = tune(home, home);
      const auto bsec = tune(std::min(int(lad.size()) - 1, home + 3), fifth);
      for (int b = entry_bar, section = 0; b < c.bars; b += 2, ++section) {
        const int k = section % 4;
        const auto& rs = k == 2 ? bsec : k == 3 ? a_end : a;
        for (size_t i = 0; i < rhythm.size(); ++i)
          play(b * bar_q + rhythm[i].first, rhythm[i].second, lad[size_t(rs[i])], 0.95, i == 0 ? 6 : 0);
      }
    } else {  // twang
      auto motif = [&] {  // eighths, quarters, a dotted quarter or a half
        std::vector<std::pair<double, double>> m;
        for (double pos = 0; pos < bar_q - 1e-9;) {
          const double len = std::min(bar_q - pos, c.rng.pick(kTwangLengths));
          m.push_back({pos, len});
          pos += len;
        }
        return m;
      };
      const auto motif_a = motif(), motif_b = motif();
      int r = home;
      for (int b = entry_bar; b < c.bars; ++b) {
        const auto& motif = (b / 2) % 2 == 0 ? motif_a : motif_b;
        const auto chord = c.chord_pcs(prog[size_t(b) % prog.size()]);
        for (size_t i = 0; i < motif.size(); ++i) {
          const auto [p, len] = motif[i];
          if (b % 2 == 1 && i + 1 == motif.size()) r = home;
          else r = walk(c.rng, r, kTwangSteps, lad.size());
          const int key = lad[size_t(r)];
          const double b0 = b * bar_q;
          const int grace = len >= 0.5 && r > 0 && c.rng.chance(0.45) ? lad[size_t(r - 1)] : -1;  // a hammer-on
          int with = -1;
          if (len >= 1.0 && c.rng.chance(0.5)) {  // double stop: the chord tone a third or a fourth below
            for (int d = 3; d <= 5 && with < 0; ++d)
              if (std::find(chord.begin(), chord.end(), ((key - d) % 12 + 12) % 12) != chord.end() && key - d >= low)
                with = key - d;
          }
          if (grace >= 0 || with >= 0) grace_then(b0 + p, len, grace, key, 0.8, with);
          else play(b0 + p, len, key, 0.8, i == 0 ? 6 : 0);
        }
      }
    }
  } else {  // sparse
    int last = fit((low + high) / 2 + 4, low, high);
    for (int b = entry_bar; b < c.bars; ++b) {
      const int deg = prog[size_t(b) % prog.size()];
      const std::vector<int> upper = {c.degree_pc(deg + 6), c.degree_pc(deg + 8), c.degree_pc(deg + 2), c.degree_pc(deg + 4)};
      std::vector<int> slots;
      for (int st = 1; st < top; ++st) slots.push_back(st);
      c.rng.shuffle(slots);
      const int n = int(c.rng.between(1, std::min<int64_t>(3, int64_t(slots.size()))));
      std::vector<int> on(slots.begin(), slots.begin() + n);
      std::sort(on.begin(), on.end());
      for (size_t i = 0; i < on.size(); ++i) {
        const double p = on[i] * 0.5;
        const double next = i + 1 < on.size() ? on[i + 1] * 0.5 : bar_q + 0.5;
        const int key = fit(nearest(upper[size_t(c.rng.below(i == 0 ? 2 : 4))], last), low, high);
        play(b * bar_q + p, std::min(1.5, next - p), key, 0.95, -10, 0.03 + std::fabs(c.rng.normal()) * 0.01);
        last = key;
      }
    }
  }
}

void melody_part(Ctx& c, const Track& tr, const Instrument& in, const std::vector<int>& prog, int entry_bar) {
  const int low = std::max(in.low, in.low + (in.high - in.low) / 4);
  const int high = std::min(in.high, low + 19);
  const std::string& style = c.genre.melody;
  if (is_idiom(style)) return idiom_part(c, tr, style, low, high, prog, entry_bar);
  const double bar_q = c.meter.bar_q();
  const double density = c.mood.density * (c.s.bpm > 140 ? 0.7 : 1.0);
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

// A counter-line: a band's second melodic instrument under the lead. It answers rather than competes: from the
// second bar on, the guide tones of each chord (its third, then its seventh or fifth) in half-bar notes, each
// moved to the nearest key, in the low part of the instrument's range and softer than the lead, so that the
// clip's "lead" is the one instrument that carries the tune.
void counter_part(Ctx& c, const Track& tr, const Instrument& in, const std::vector<int>& prog) {
  const int low = in.low + (in.high - in.low) / 8;
  const int high = std::min(in.high, low + 14);
  const double bar_q = c.meter.bar_q();
  int last = (low + high) / 2;
  for (int b = 1; b < c.bars; ++b) {
    const auto pcs = c.chord_pcs(prog[size_t(b) % prog.size()]);
    const int guides[2] = {pcs[1], pcs.size() > 3 ? pcs[3] : pcs[2]};
    for (int h = 0; h < 2; ++h) {
      const int key = fit(nearest(guides[h], last), low, high);
      last = key;
      const double t = c.time_of(b * bar_q + h * bar_q / 2);
      c.note(tr.channel, t, bar_q / 2 * c.q * 0.95, key, c.velocity(t, -14));
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
      t.volume = part.role == "lead"      ? 112
                 : part.role == "bass"    ? 108
                 : part.role == "pad"     ? 78
                 : part.role == "counter" ? 84
                                          : 92;
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
    } else if (part.role == "counter") {
      counter_part(c, t, in, prog);
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
