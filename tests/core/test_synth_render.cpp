// Synthetic data, the audio side: the composer's notes, FluidSynth rendering (length, level,
// determinism) and that genres / instruments give measurably different audio.
#ifdef SYNCLAP_HAVE_FLUIDSYNTH
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "synclap/frontend.h"
#include "synclap/synth.h"
#include "synclap/util.h"
#include "test_support.h"

using namespace synclap;

namespace {

const Vocabulary& vocab() {
  static const Vocabulary v = Vocabulary::load(std::string(SYNCLAP_SOURCE_DIR) + "/configs/vocab/default.json");
  return v;
}

int idx(const std::string& attr, const std::string& name) {
  const auto vals = vocab().values(attr);
  auto it = std::find(vals.begin(), vals.end(), name);
  EXPECT_NE(it, vals.end()) << attr << "=" << name;
  return int(it - vals.begin());
}

ClipSpec spec(const std::string& genre, std::vector<std::pair<std::string, std::string>> parts, int bpm,
              const std::string& meter = "4/4", uint64_t seed = 1, double seconds = 4.0) {
  ClipSpec s;
  s.seed = seed;
  s.seconds = seconds;
  s.genre = idx("genre", genre);
  s.mood = idx("mood", "calm");
  s.tempo = idx("tempo", "moderate");
  s.key = 2;
  s.mode = idx("mode", "minor");
  s.time_signature = idx("time_signature", meter);
  s.dynamics = idx("dynamics", "medium");
  s.ensemble = idx("ensemble", "trio");
  s.production = idx("production", "dry");
  s.bpm = bpm;
  for (auto& [inst, role] : parts) s.parts.push_back({idx("instrument", inst), role});
  return s;
}

// Mean spectral centroid (in mel bins, power-weighted) and mean spectral flux.
struct Features {
  double centroid = 0, flux = 0, rms = 0;
};
Features features(const Waveform& w) {
  FeatureExtractor fx;
  auto lm = fx.log_mel(w.samples.data(), w.samples.size());
  const float top = *std::max_element(lm.begin(), lm.end());
  for (float& v : lm) v = std::max(v, top - 60.0f);  // ignore the near-silent floor
  const int bins = 64;
  const size_t frames = lm.size() / bins;
  double num = 0, den = 0;
  std::vector<double> flux(frames, 0.0);
  for (size_t f = 0; f < frames; ++f)
    for (int b = 0; b < bins; ++b) {
      const double p = std::pow(10.0, lm[f * bins + b] / 10.0);
      num += p * b;
      den += p;
      if (f > 0) flux[f] += std::max(0.0f, lm[f * bins + b] - lm[(f - 1) * bins + b]);
    }
  Features out;
  out.centroid = num / std::max(den, 1e-12);
  double mean = 0;
  for (double v : flux) mean += v;
  mean /= double(frames);
  out.flux = mean;  // mean positive spectral flux (dB per frame): high for percussive, busy music
  double e = 0;
  for (float v : w.samples) e += double(v) * v;
  out.rms = std::sqrt(e / double(w.samples.size()));
  return out;
}

}  // namespace

TEST(Composer, DeterministicForASeedAndNotesStayInside) {
  const auto s = spec("jazz", {{"vibraphone", "lead"}, {"piano", "chords"}, {"acoustic bass", "bass"}, {"drum kit", "drums"}}, 120);
  const Score a = compose(s, vocab()), b = compose(s, vocab());
  ASSERT_EQ(a.notes.size(), b.notes.size());
  for (size_t i = 0; i < a.notes.size(); ++i) {
    EXPECT_EQ(a.notes[i].start, b.notes[i].start);
    EXPECT_EQ(a.notes[i].key, b.notes[i].key);
    EXPECT_EQ(a.notes[i].velocity, b.notes[i].velocity);
  }
  auto s2 = s;
  s2.seed = 2;
  const Score c = compose(s2, vocab());
  bool differ = c.notes.size() != a.notes.size();
  for (size_t i = 0; !differ && i < a.notes.size(); ++i) differ = a.notes[i].key != c.notes[i].key || a.notes[i].start != c.notes[i].start;
  EXPECT_TRUE(differ);
  ASSERT_EQ(a.tracks.size(), 4u);
  EXPECT_TRUE(a.tracks[3].drums);
  EXPECT_EQ(a.tracks[3].channel, 9);
  EXPECT_EQ(a.tracks[3].bank, 128);
  EXPECT_EQ(a.tracks[3].program, 32);  // jazz kit from the genre
  std::set<int> channels;
  for (const auto& n : a.notes) {
    EXPECT_GE(n.start, 0.0);
    EXPECT_LT(n.start + n.duration, 4.0 + 1e-9);
    channels.insert(n.channel);
    if (n.channel != 9) {
      const auto& t = *std::find_if(a.tracks.begin(), a.tracks.end(), [&](const Track& t) { return t.channel == n.channel; });
      const auto& in = vocab().instruments[vocab().find_instrument(t.instrument)];
      EXPECT_GE(n.key, in.low) << t.instrument;
      EXPECT_LE(n.key, in.high) << t.instrument;
    }
  }
  EXPECT_EQ(channels.size(), 4u);  // every part plays
}

TEST(Composer, MelodyAndChordsUseTheKeyAndMode) {
  // D minor: D E F G A Bb C. Chords and bass must stay in the scale; the melody too (no chromatic notes).
  const auto s = spec("pop", {{"flute", "lead"}, {"piano", "chords"}, {"electric bass", "bass"}}, 100, "4/4", 1, 10.0);
  const Score sc = compose(s, vocab());
  const std::set<int> scale = {2, 4, 5, 7, 9, 10, 0};
  int n = 0;
  for (const auto& note : sc.notes) {
    EXPECT_TRUE(scale.count(note.key % 12)) << note.key << " ch " << note.channel;
    ++n;
  }
  EXPECT_GT(n, 20);
}

TEST(Composer, LeadPhrasingFollowsTheGenre) {
  // A solo flute at 120 BPM (a beat is 0.5 s) for 10 s: the genre's "melody" shapes the line on its own.
  struct Stats {
    size_t notes = 0;
    double mean_duration = 0, off_eighth = 0;  // seconds; share of onsets on the sixteenths between eighths
  };
  auto stats = [](const std::string& genre) {  // over 8 clips (seeds), notes counted per clip
    Stats st;
    size_t all = 0;
    for (uint64_t seed = 1; seed <= 8; ++seed) {
      const Score sc = compose(spec(genre, {{"flute", "lead"}}, 120, "4/4", seed, 10.0), vocab());
      for (const auto& n : sc.notes) {
        ++all;
        st.mean_duration += n.duration;
        const double eighths = n.start / 0.25;
        if (std::fabs(eighths - std::round(eighths)) > 0.3) st.off_eighth += 1;
      }
    }
    st.notes = all / 8;
    st.mean_duration /= double(std::max<size_t>(1, all));
    st.off_eighth /= double(std::max<size_t>(1, all));
    return st;
  };
  const Stats pop = stats("pop"), ambient = stats("ambient"), techno = stats("techno"), funk = stats("funk"),
              rock = stats("rock");
  EXPECT_GT(ambient.mean_duration, 2 * pop.mean_duration) << ambient.mean_duration << " vs " << pop.mean_duration;
  EXPECT_GT(ambient.mean_duration, 0.7);
  EXPECT_GT(techno.notes, 2 * ambient.notes);
  EXPECT_GT(techno.notes, size_t(1.4 * double(pop.notes))) << techno.notes << " vs " << pop.notes;
  EXPECT_GT(funk.off_eighth, 0.4) << funk.off_eighth;
  EXPECT_GT(funk.off_eighth, pop.off_eighth + 0.15) << funk.off_eighth << " vs " << pop.off_eighth;
  EXPECT_LT(rock.mean_duration, 0.15);  // staccato eighths: 0.25 s x 0.45
  EXPECT_GE(rock.notes, 36u);           // eighths: 2 per beat, 20 beats in 10 s
}

// A six-piece band's second melodic instrument answers under the lead instead of playing a second lead: half-bar
// notes from the second bar, low in its range, on a quieter track, softer and far fewer than the lead's.
TEST(Composer, CounterLineStaysUnderTheLead) {
  const auto s = spec("jazz", {{"trumpet", "lead"}, {"drum kit", "drums"}, {"piano", "chords"}, {"acoustic bass", "bass"},
                               {"warm pad", "pad"}, {"alto sax", "counter"}}, 120, "4/4", 3, 10.0);
  const Score sc = compose(s, vocab());
  ASSERT_EQ(sc.tracks.size(), 6u);
  const Track& lead = sc.tracks[0];
  const Track& counter = sc.tracks[5];
  EXPECT_EQ(counter.role, "counter");
  EXPECT_LT(counter.volume, lead.volume);
  std::vector<NoteEvent> ln, cn;
  for (const auto& n : sc.notes) {
    if (n.channel == lead.channel) ln.push_back(n);
    if (n.channel == counter.channel) cn.push_back(n);
  }
  ASSERT_FALSE(cn.empty());
  EXPECT_LT(cn.size() * 2, ln.size()) << cn.size() << " counter notes vs " << ln.size() << " lead notes";
  // From the second bar on (a bar is 2 s), half-bar notes (1 s, 95 % of it sounding).
  const auto& sax = vocab().instruments[size_t(vocab().find_instrument("alto sax"))];
  double mean_vel_c = 0, mean_vel_l = 0;
  for (const auto& n : cn) {
    EXPECT_GE(n.start, 2.0 - 0.05);
    EXPECT_GE(n.duration, 0.9 - 1e-9);
    EXPECT_LE(n.key, sax.low + (sax.high - sax.low) / 8 + 14);
    mean_vel_c += n.velocity;
  }
  for (const auto& n : ln) mean_vel_l += n.velocity;
  EXPECT_LT(mean_vel_c / double(cn.size()), mean_vel_l / double(ln.size()));
}

// The idiomatic lines (blues, bebop, twang, song, sparse), given to five genres of the default vocabulary (which
// itself keeps the plain phrasings: bench/RESULTS.md): a solo flute in D minor at 120 BPM (a beat is 0.5 s),
// 10 s, over 8 seeds; each idiom's notes and gestures are there.
TEST(Composer, IdiomaticLinesCarryTheirGenre) {
  static const Vocabulary idioms = [] {
    auto j = nlohmann::json::parse(read_file(std::string(SYNCLAP_SOURCE_DIR) + "/configs/vocab/default.json"));
    const std::map<std::string, std::string> melody = {
        {"blues", "blues"}, {"jazz", "bebop"}, {"country", "twang"}, {"folk", "song"}, {"lo-fi", "sparse"}};
    for (auto& g : j["genres"])
      if (melody.count(g["name"])) g["melody"] = melody.at(g["name"]);
    return Vocabulary::from_json(j.dump());
  }();
  auto clips = [](const std::string& genre) {
    std::vector<std::vector<NoteEvent>> out;
    for (uint64_t seed = 1; seed <= 8; ++seed)
      out.push_back(compose(spec(genre, {{"flute", "lead"}}, 120, "4/4", seed, 10.0), idioms).notes);
    return out;
  };
  auto rel = [](const NoteEvent& n) { return ((n.key - 2) % 12 + 12) % 12; };  // pitch class above the tonic D
  auto count = [](const std::vector<std::vector<NoteEvent>>& cs) {
    size_t n = 0;
    for (const auto& c : cs) n += c.size();
    return double(n) / double(cs.size());
  };
  const auto pop = clips("pop");

  // Blues: only the blues scale (and the bent-up major third); the flat fifth turns up; the calls leave room.
  const auto blues = clips("blues");
  int flat_fifth = 0, bends = 0;
  for (const auto& c : blues) {
    bool ff = false;
    for (size_t i = 0; i < c.size(); ++i) {
      EXPECT_TRUE(std::set<int>({0, 3, 4, 5, 6, 7, 10}).count(rel(c[i]))) << c[i].key;
      ff |= rel(c[i]) == 6;
      if (rel(c[i]) == 4) {
        ++bends;
        EXPECT_TRUE(i > 0 && c[i - 1].key == c[i].key - 1 && c[i - 1].duration < 0.1) << "a major third only as a bend";
      }
    }
    flat_fifth += ff;
    double longest = 0, end = 0;  // the call leaves room: a silence of at least a beat and a half somewhere
    for (const auto& n : c) {
      longest = std::max(longest, n.start - end);
      end = std::max(end, n.start + n.duration);
    }
    EXPECT_GT(longest, 0.75);
  }
  EXPECT_GE(flat_fifth, 3);
  EXPECT_GE(bends, 2);

  // Bebop: runs of swung eighths (jazz swing 0.6 puts the off-beat at 0.6 of the beat), chromatic approach notes.
  const auto bebop = clips("jazz");
  size_t on_grid = 0, all = 0, outside = 0;
  const std::set<int> d_minor = {0, 2, 3, 5, 7, 8, 10};
  for (const auto& c : bebop)
    for (const auto& n : c) {
      const double beat = n.start / 0.5, frac = beat - std::floor(beat);
      on_grid += std::min({frac, 1 - frac, std::fabs(frac - 0.6)}) < 0.06;
      outside += !d_minor.count(rel(n));
      ++all;
    }
  EXPECT_GT(double(on_grid), 0.9 * double(all));
  EXPECT_GT(double(outside), 0.1 * double(all));

  // Twang: the pentatonic degrees 1 2 3 5 6 of D minor (D E F A Bb), hammer-ons from the step below (a grace note
  // right before a higher one), double stops (a lower chord tone a third or a fourth below, struck together).
  const auto twang = clips("country");
  int with_double_stop = 0;
  for (const auto& c : twang) {
    int graces = 0;
    bool dstop = false;
    for (size_t i = 0; i < c.size(); ++i) {
      if (c[i].duration < 0.07 && c[i].start < 9.9 && i + 1 < c.size()) {
        ++graces;
        EXPECT_GT(c[i + 1].key, c[i].key);
        EXPECT_LE(c[i + 1].key - c[i].key, 4);
        EXPECT_NEAR(c[i + 1].start - c[i].start, 0.0625, 1e-9);
      }
      bool lower_partner = false;
      for (size_t j = 0; j < c.size(); ++j)
        if (j != i && c[j].start == c[i].start && c[j].key > c[i].key) {
          lower_partner = true;
          EXPECT_GE(c[j].key - c[i].key, 3);
          EXPECT_LE(c[j].key - c[i].key, 5);
        }
      dstop |= lower_partner;
      if (!lower_partner) EXPECT_TRUE(std::set<int>({0, 2, 3, 7, 8}).count(rel(c[i]))) << c[i].key;
    }
    EXPECT_GE(graces, 1);
    with_double_stop += dstop;
  }
  EXPECT_GE(with_double_stop, 4);

  // Song: A A B A, so the first two bars (4 s at 120 BPM in 4/4) come back note for note in the next two; long notes.
  const auto song = clips("folk");
  double song_len = 0, pop_len = 0, song_n = 0, pop_n = 0;
  for (const auto& c : song) {
    std::vector<int> a, again;
    for (const auto& n : c) {
      EXPECT_TRUE(std::set<int>({0, 2, 3, 7, 8}).count(rel(n))) << n.key;
      if (n.start < 3.95) a.push_back(n.key);  // (onsets jitter by a few ms around the bar line at 4 s)
      else if (n.start < 7.95) again.push_back(n.key);
      song_len += n.duration;
      ++song_n;
    }
    EXPECT_FALSE(a.empty());
    EXPECT_EQ(a, again);
  }
  for (const auto& c : pop)
    for (const auto& n : c) pop_len += n.duration, ++pop_n;
  EXPECT_GT(song_len / song_n, 1.2 * pop_len / pop_n);

  // Sparse: one to three notes a bar, behind the (lo-fi swing 0.4) eighth grid.
  const auto sparse = clips("lo-fi");
  double late = 0, notes = 0;
  for (const auto& c : sparse) {
    EXPECT_LE(c.size(), 3u * 6u);  // 6 bars are composed for 10 s
    for (const auto& n : c) {
      const double beat = n.start / 0.5, base = std::floor(beat);
      const double off = std::min(beat - base, std::fabs(beat - base - (0.5 + 0.4 / 6))) * 0.5;
      late += std::min(off, 0.2);
      ++notes;
    }
  }
  EXPECT_LT(count(sparse), 0.5 * count(pop));
  EXPECT_GT(late / notes, 0.025);
}

TEST(Composer, DrumsFollowTheTimeSignature) {
  // The kick's first hits repeat once per bar: 4 quarters in 4/4, 3 in 3/4, 3.5 in 7/8.
  for (auto [meter, quarters] : std::vector<std::pair<std::string, double>>{{"4/4", 4.0}, {"3/4", 3.0}, {"7/8", 3.5}}) {
    const auto s = spec("rock", {{"drum kit", "drums"}}, 120, meter, 5, 20.0);
    const Score sc = compose(s, vocab());
    std::vector<double> crash;
    for (const auto& n : sc.notes)
      if (n.key == 49) crash.push_back(n.start);  // a crash every 4 bars
    ASSERT_GE(crash.size(), 2u) << meter;
    EXPECT_NEAR(crash[1] - crash[0], 4 * quarters * 0.5, 0.06) << meter;
  }
}

TEST(Composer, DrumGroovesKeepTheirGenreInEveryMeter) {
  // Every genre's groove plays the same drums in every meter (not one generic beat outside 4/4), so its
  // ride, cowbell, congas or claps are heard whatever the time signature. Crash and fill toms aside (20 s:
  // every meter has its fills).
  auto kit_of = [](const std::string& genre, const std::string& meter) {
    std::map<int, int> hits;
    for (const auto& n : compose(spec(genre, {{"drum kit", "drums"}}, 110, meter, 7, 20.0), vocab()).notes)
      if (n.key != 49 && n.key != 41 && n.key != 45 && n.key != 48) ++hits[n.key];
    return hits;
  };
  std::set<std::string> grooves;
  for (const auto& g : vocab().genres) {
    if (g.drums == "none") continue;
    const auto common = kit_of(g.name, "4/4");
    std::string groove;
    for (const auto& [key, count] : common) groove += std::to_string(key) + " ";
    grooves.insert(groove);
    for (const char* meter : {"3/4", "6/8", "5/4", "7/8", "2/4"}) {
      const auto other = kit_of(g.name, meter);
      ASSERT_EQ(other.size(), common.size()) << g.name << " in " << meter;
      for (const auto& [key, count] : common) EXPECT_GT(other.count(key) ? other.at(key) : 0, 0) << g.name << " " << meter << " key " << key;
    }
  }
  EXPECT_GE(grooves.size(), 8u);  // the genres' kits differ
  // Latin in 7/8 (2+2+3): the cowbell keeps its eighth-note pulse, 7 per bar; the 3-eighth group is filled too.
  const auto latin = compose(spec("latin", {{"drum kit", "drums"}}, 120, "7/8", 3, 7.0), vocab());
  int cowbells = 0;
  for (const auto& n : latin.notes) cowbells += n.key == 56 && n.start < 1.75 - 0.02;  // one bar = 3.5 q = 1.75 s
  EXPECT_EQ(cowbells, 7);
}

TEST(SynthRender, LengthLevelAndDeterminismAcrossReuse) {
  FluidSynthRenderer r;
  const auto a = spec("house", {{"saw lead", "lead"}, {"warm pad", "chords"}, {"synth bass", "bass"}, {"electronic drums", "drums"}}, 124);
  auto b = spec("classical", {{"violin", "lead"}, {"harp", "chords"}, {"cello", "bass"}}, 80);
  b.production = idx("production", "spacious");
  const Waveform w1 = r.render(compose(a, vocab()), a.seed);
  const Waveform w2 = r.render(compose(b, vocab()), b.seed);
  const Waveform w3 = r.render(compose(a, vocab()), a.seed);
  ASSERT_EQ(w1.sample_rate, 48000);
  ASSERT_EQ(w1.samples.size(), size_t(4 * 48000));
  ASSERT_EQ(w2.samples.size(), size_t(4 * 48000));
  EXPECT_EQ(w1.samples, w3.samples);  // reset between clips: nothing carries over
  FluidSynthRenderer fresh;
  EXPECT_EQ(fresh.render(compose(a, vocab()), a.seed).samples, w1.samples);
  float peak = 0;
  for (float v : w1.samples) peak = std::max(peak, std::fabs(v));
  EXPECT_NEAR(peak, vocab().dynamics[a.dynamics].gain, 1e-4);
  EXPECT_NE(w1.samples, w2.samples);
}

TEST(SynthRender, GenresAndInstrumentsSoundMeasurablyDifferent) {
  FluidSynthRenderer r;
  auto render = [&](const ClipSpec& s) { return features(r.render(compose(s, vocab()), s.seed)); };
  // Solo instruments: a piccolo-high flute melody versus a low tuba line.
  const auto flute = render(spec("classical", {{"flute", "lead"}}, 90));
  const auto tuba = render(spec("classical", {{"tuba", "bass"}}, 90));
  EXPECT_GT(flute.centroid, tuba.centroid + 8) << flute.centroid << " vs " << tuba.centroid;
  // Genres: fast metal with drums versus slow ambient pads.
  const auto metal = render(spec("metal", {{"distorted guitar", "chords"}, {"electric bass", "bass"}, {"drum kit", "drums"}}, 170));
  const auto ambient = render(spec("ambient", {{"new age pad", "pad"}, {"warm pad", "chords"}}, 65));
  EXPECT_GT(metal.flux, ambient.flux * 1.3) << metal.flux << " vs " << ambient.flux;
  EXPECT_GT(metal.centroid, ambient.centroid) << metal.centroid << " vs " << ambient.centroid;
}

TEST(SynthRender, EveryInstrumentOfTheVocabularySounds) {
  // Each instrument alone, in its first role: the soundfont has the program/kit and it is audible.
  FluidSynthRenderer r;
  for (const auto& in : vocab().instruments) {
    const std::string role = in.roles[0];
    auto s = spec(in.drums ? "rock" : "pop", {{in.name, role}}, 120, "4/4", 3, 1.5);
    const Score sc = compose(s, vocab());
    ASSERT_FALSE(sc.notes.empty()) << in.name;
    Score raw = sc;
    raw.gain = 1.0;
    const Waveform w = r.render(raw, 3);
    double e = 0;
    for (float v : w.samples) e += double(v) * v;
    EXPECT_GT(std::sqrt(e / double(w.samples.size())), 0.02) << in.name;  // peak-normalised to 1: not silent
  }
}

TEST(Composer, EveryGenreMeterAndModeComposes) {
  for (const auto& g : vocab().genres)
    for (const auto& ts : vocab().time_signatures) {
      auto s = spec(g.name, {{"piano", "chords"}, {"electric bass", "bass"}, {"flute", "lead"}, {"drum kit", "drums"}}, 110,
                    ts.name, 4, 6.0);
      for (size_t m = 0; m < vocab().modes.size(); m += 2) {
        s.mode = int(m);
        const Score sc = compose(s, vocab());
        std::set<int> channels;
        for (const auto& n : sc.notes) channels.insert(n.channel);
        EXPECT_EQ(channels.size(), 4u) << g.name << " " << ts.name;
      }
    }
}

TEST(SynthRender, RenderClipUsesTheSpecSeconds) {
  auto s = spec("funk", {{"clavinet", "chords"}, {"slap bass", "bass"}}, 105, "4/4", 9, 2.5);
  const Waveform w = render_clip(s, vocab());
  EXPECT_EQ(w.samples.size(), size_t(2.5 * 48000));
}
#endif  // SYNCLAP_HAVE_FLUIDSYNTH
