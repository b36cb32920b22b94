// Rendering a Score with FluidSynth, offline (no audio driver): events are dispatched at their sample
// positions between fluid_synth_write_float calls, the stereo output is averaged to mono.
#include <fluidsynth.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <mutex>

#include "rng.h"
#include "synclap/augment.h"
#include "synclap/error.h"
#include "synclap/synth.h"

namespace synclap {

std::string default_soundfont() {
  if (const char* e = std::getenv("SYNCLAP_SOUNDFONT")) return e;
  return "/usr/share/sounds/sf2/FluidR3_GM.sf2";
}

namespace {
void quiet_fluid_logs() {
  static std::once_flag once;
  std::call_once(once, [] {
    for (int level : {FLUID_PANIC, FLUID_ERR, FLUID_WARN, FLUID_INFO, FLUID_DBG}) fluid_set_log_function(level, nullptr, nullptr);
  });
}
}  // namespace

struct FluidSynthRenderer::Impl {
  fluid_settings_t* settings = nullptr;
  fluid_synth_t* synth = nullptr;
  int sfont = -1;
  fluid_sfont_t* font = nullptr;  // loaded once (slow), shared by the per-clip synthesisers
  int rate = 48000;
  std::string path;

  ~Impl() {
    if (synth) delete_fluid_synth(synth);
    if (settings) delete_fluid_settings(settings);
  }
};

FluidSynthRenderer::FluidSynthRenderer(const std::string& soundfont, int sample_rate) : impl_(std::make_unique<Impl>()) {
  quiet_fluid_logs();
  Impl& m = *impl_;
  m.rate = sample_rate;
  m.path = soundfont;
  m.settings = new_fluid_settings();
  if (!m.settings) throw Error("FluidSynth: cannot create settings");
  fluid_settings_setnum(m.settings, "synth.sample-rate", double(sample_rate));
  // FluidSynth's own reverb and chorus keep their tails across fluid_synth_system_reset, which would make
  // a clip depend on the one rendered before it; synclap applies its own (apply_reverb / apply_chorus).
  fluid_settings_setint(m.settings, "synth.reverb.active", 0);
  fluid_settings_setint(m.settings, "synth.chorus.active", 0);
  fluid_settings_setint(m.settings, "synth.polyphony", 256);
  fluid_settings_setint(m.settings, "synth.cpu-cores", 1);
  fluid_settings_setint(m.settings, "synth.threadsafe-api", 0);
  fluid_settings_setnum(m.settings, "synth.gain", 0.5);
  m.synth = new_fluid_synth(m.settings);
  if (!m.synth) throw Error("FluidSynth: cannot create a synthesiser");
  m.sfont = fluid_synth_sfload(m.synth, soundfont.c_str(), 1);
  if (m.sfont == FLUID_FAILED) throw FileError(soundfont, "FluidSynth cannot load this soundfont");
  m.font = fluid_synth_get_sfont_by_id(m.synth, m.sfont);
}

FluidSynthRenderer::~FluidSynthRenderer() = default;

Waveform FluidSynthRenderer::render(const Score& score, uint64_t seed) {
  Impl& m = *impl_;
  // A fresh synthesiser per clip, sharing the loaded soundfont: FluidSynth's voices keep state from
  // earlier notes (a reset does not clear it), which would make a clip depend on the one before.
  struct Fresh {
    Impl& m;
    fluid_synth_t* s;
    explicit Fresh(Impl& impl) : m(impl), s(new_fluid_synth(impl.settings)) {
      if (!s) throw Error("FluidSynth: cannot create a synthesiser");
      if (fluid_synth_add_sfont(s, m.font) == FLUID_FAILED) {
        delete_fluid_synth(s);
        throw Error("FluidSynth: cannot share the soundfont");
      }
    }
    ~Fresh() {
      fluid_synth_remove_sfont(s, m.font);
      delete_fluid_synth(s);
    }
  } fresh(m);
  fluid_synth_t* s = fresh.s;
  const int sfid = fluid_sfont_get_id(m.font);
  auto write = [&](int len, float* l, float* r) {
    if (fluid_synth_write_float(s, len, l, 0, 1, r, 0, 1) != FLUID_OK) throw Error("FluidSynth: rendering failed");
  };

  for (const Track& t : score.tracks) {
    if (t.drums) fluid_synth_set_channel_type(s, t.channel, CHANNEL_TYPE_DRUM);
    else fluid_synth_set_channel_type(s, t.channel, CHANNEL_TYPE_MELODIC);
    if (fluid_synth_program_select(s, t.channel, sfid, t.bank, t.program) != FLUID_OK)
      fluid_synth_program_select(s, t.channel, sfid, t.bank, 0);  // a kit/program the soundfont lacks
    fluid_synth_cc(s, t.channel, 7, t.volume);
    fluid_synth_cc(s, t.channel, 10, t.pan);
  }

  struct Ev {
    int64_t at;
    bool on;
    int ch, key, vel;
  };
  const int64_t total = int64_t(std::llround(score.seconds * m.rate));
  std::vector<Ev> evs;
  evs.reserve(score.notes.size() * 2);
  // FluidSynth applies events at the boundaries of its 64-sample blocks: put them there explicitly.
  for (const NoteEvent& n : score.notes) {
    const int64_t a = int64_t(std::llround(n.start * m.rate / 64.0)) * 64;
    const int64_t b = std::max(a + 64, int64_t(std::llround((n.start + n.duration) * m.rate / 64.0)) * 64);
    if (a >= total) continue;
    evs.push_back({a, true, n.channel, n.key, n.velocity});
    evs.push_back({b, false, n.channel, n.key, 0});
  }
  std::stable_sort(evs.begin(), evs.end(), [](const Ev& x, const Ev& y) {
    if (x.at != y.at) return x.at < y.at;
    return !x.on && y.on;  // note-offs first
  });

  Waveform out;
  out.sample_rate = m.rate;
  out.samples.resize(size_t(total));
  std::vector<float> left(4096), right(4096);
  int64_t pos = 0;
  size_t e = 0;
  while (pos < total) {
    while (e < evs.size() && evs[e].at <= pos) {
      const Ev& ev = evs[e++];
      if (ev.on) fluid_synth_noteon(s, ev.ch, ev.key, ev.vel);
      else fluid_synth_noteoff(s, ev.ch, ev.key);
    }
    int64_t until = total;
    if (e < evs.size()) until = std::min(until, evs[e].at);
    const int len = int(std::min<int64_t>(until - pos, int64_t(left.size())));
    std::fill(left.begin(), left.begin() + len, 0.0f);
    std::fill(right.begin(), right.begin() + len, 0.0f);
    write(len, left.data(), right.data());
    for (int i = 0; i < len; ++i) out.samples[size_t(pos + i)] = 0.5f * (left[size_t(i)] + right[size_t(i)]);
    pos += len;
  }

  // Chorus and room reverb (fresh state per clip), peak-normalise to the dynamics' level, then the
  // production's own effects.
  if (score.chorus > 0) apply_chorus(out.samples, m.rate, 12.0, 2.5 + 4.0 * score.chorus, 0.25 + 0.5 * score.chorus, score.chorus);
  if (score.reverb > 0) apply_reverb(out.samples, m.rate, score.room, 0.4, 0.6 * score.reverb);
  // Peak-normalise to the dynamics' level, then the production's effects.
  float peak = 0;
  for (float v : out.samples) peak = std::max(peak, std::fabs(v));
  if (peak > 0) {
    const float g = float(score.gain / peak);
    for (float& v : out.samples) v *= g;
  }
  if (!score.effects.empty()) {
    AugmentChain::parse(score.effects).apply(out, synth::derive_seed(seed, 0, "effects"));
    float p2 = 0;
    for (float v : out.samples) p2 = std::max(p2, std::fabs(v));
    if (p2 > 0.999f)
      for (float& v : out.samples) v *= 0.999f / p2;
  }
  return out;
}

Waveform render_clip(const ClipSpec& spec, const Vocabulary& vocab) {
  thread_local std::unique_ptr<FluidSynthRenderer> renderer;
  if (!renderer) renderer = std::make_unique<FluidSynthRenderer>(default_soundfont(), 48000);
  return renderer->render(compose(spec, vocab), spec.seed);
}

}  // namespace synclap
