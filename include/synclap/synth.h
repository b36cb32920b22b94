// synclap: synthetic text–music pairs with every attribute known.
//
//   Vocabulary (JSON)  ──► Sampler (coverage, splits, held-out combinations) ──► ClipSpec
//   ClipSpec ──► captions (grammar + synonyms, de-biased)     ClipSpec ──► compose() ──► Score
//   Score ──► FluidSynthRenderer (48 kHz, offline) ──► Waveform
//
// Every step is deterministic for a seed: clip i of a run depends only on the run's seed, the
// vocabulary and the clips before it (never on the thread count or on how many clips are asked for).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "synclap/audio.h"

namespace synclap {

// ---------------------------------------------------------------------------------------------
// Vocabulary
// ---------------------------------------------------------------------------------------------

// One value of an attribute: its canonical name, the words a caption may use for it, and (for
// genres, instruments, moods, ...) the musical facts the composer needs, kept as JSON-ish fields.
struct VocabEntry {
  std::string name;
  std::vector<std::string> synonyms;  // never empty: the name itself when the file gives none
};

struct Genre : VocabEntry {
  std::vector<std::vector<int>> progressions;  // scale degrees 1..7, one chord per bar
  std::string drums = "rock";     // drum style (see composer), "none" for no drums
  std::string comping = "block";  // block | arpeggio | strum | offbeat | stabs
  std::string bass = "root";      // root | root_fifth | walking | octave | syncopated | pedal
  // The lead's phrasing: straight | long | flowing | ostinato | syncopated | riff, or an idiom with its own notes and
  // gestures: blues | bebop | twang | song | sparse (see the composer).
  std::string melody = "straight";
  std::vector<int> bpm{90, 130};  // typical tempo range
  double swing = 0.0;             // 0 = straight eighths, 1 = full triplet swing
  bool sevenths = false;          // chords with sevenths
  int drum_kit = 0;               // GM drum kit program (bank 128)
  std::vector<std::string> modes; // preferred modes (empty = any)
  // Time signatures typical of the genre (vocabulary names; empty = any), drawn when a clip's meter follows its
  // genre (SamplerOptions::genre_meters).
  std::vector<std::string> time_signatures;
  // Instruments typical of the genre (vocabulary names), drawn when a clip's instrumentation follows its genre
  // (SamplerOptions::genre_instruments).
  std::vector<std::string> typical_instruments;
  // Ensemble sizes the genre is played in (vocabulary names; empty = any), drawn when a clip's ensemble follows its
  // genre (SamplerOptions::genre_ensembles): a beat-made genre such as techno is not played by one instrument alone.
  std::vector<std::string> ensembles;
};

struct Instrument : VocabEntry {
  int program = 0;                 // General MIDI program 0..127 (drum kit program when drums)
  bool drums = false;              // a drum kit (bank 128, MIDI channel 10)
  std::vector<std::string> roles;  // of lead | chords | bass | pad | drums
  int low = 36, high = 96;         // playable MIDI key range
};

struct Mood : VocabEntry {
  std::string mode_bias;           // "major", "minor" or "" (either)
  int tempo_shift = 0;             // BPM added to the tempo
  int velocity_shift = 0;          // added to every velocity
  double density = 1.0;            // melody note density factor
};

struct TempoWord : VocabEntry {
  int bpm_low = 60, bpm_high = 200;
};

struct Mode : VocabEntry {
  std::vector<int> intervals;      // 7 semitone offsets from the tonic
  std::string quality;             // "major" or "minor" (for moods)
};

struct TimeSignature : VocabEntry {
  int numerator = 4, denominator = 4;
  std::vector<int> groups;         // beat grouping in denominator units, e.g. 7/8 = {2,2,3}
};

struct Dynamics : VocabEntry {
  int velocity = 90;               // base velocity
  double gain = 0.7;               // output peak
  double ramp = 0.0;               // velocity change over the clip (+ crescendo, - fading)
};

struct EnsembleSize : VocabEntry {
  int min_instruments = 1, max_instruments = 1;
};

struct Production : VocabEntry {
  double reverb = 0.3;             // FluidSynth reverb level 0..1
  double room = 0.5;               // reverb room size 0..1
  double chorus = 0.2;             // chorus level 0..1
  std::string effects;             // an augmentation chain (JSON text, see augment.h) applied after rendering
};

struct Vocabulary {
  std::vector<Genre> genres;
  std::vector<Instrument> instruments;
  std::vector<Mood> moods;
  std::vector<TempoWord> tempos;
  std::vector<VocabEntry> keys;    // 12 tonics; index = pitch class (0 = C)
  std::vector<Mode> modes;
  std::vector<TimeSignature> time_signatures;
  std::vector<Dynamics> dynamics;
  std::vector<EnsembleSize> ensembles;
  std::vector<Production> productions;
  std::vector<std::string> gendered_words;  // extra words to de-bias (beyond the built-in list)

  // Parses JSON text; throws Error naming the missing or malformed field.
  static Vocabulary from_json(const std::string& json_text, const std::string& source = "<vocabulary>");
  static Vocabulary load(const std::string& path);  // FileError naming the file
  // The shipped default (configs/vocab/default.json, compiled in).
  static Vocabulary builtin();

  // The attribute names that are single-valued categories ("genre", "mood", "tempo", "key", "mode",
  // "time_signature", "dynamics", "ensemble", "production") plus "instrument".
  static const std::vector<std::string>& attributes();
  // Canonical value names of an attribute (throws Error for an unknown attribute).
  std::vector<std::string> values(const std::string& attribute) const;
  int find_instrument(const std::string& name) const;  // -1 if absent
  std::string source;  // where it came from (for provenance)
  std::string json;    // the text it was parsed from
};

// ---------------------------------------------------------------------------------------------
// A clip's attributes
// ---------------------------------------------------------------------------------------------

struct InstrumentPart {
  int instrument = 0;  // index into Vocabulary::instruments
  std::string role;    // lead | chords | bass | pad | drums | counter (a second melodic instrument under the lead)
};

struct ClipSpec {
  int64_t index = 0;
  uint64_t seed = 0;   // this clip's own seed (rendering, captions)
  int genre = 0, mood = 0, tempo = 0, key = 0, mode = 0, time_signature = 0, dynamics = 0,
      ensemble = 0, production = 0;
  int bpm = 120;
  std::vector<InstrumentPart> parts;
  std::string split;   // train | val | test | heldout
  double seconds = 10.0;
  // "genre" when the instruments were drawn from the genre's typical ones, "balanced" when not; empty (and not
  // in the labels) when the sampler's genre_instruments is 0.
  std::string instrumentation;

  // {"genre": "jazz", "instruments": [...], "roles": {...}, "bpm": 92, ...}: every label, canonical names.
  std::string labels_json(const Vocabulary& v) const;
  // "attribute=value" for every single-valued attribute plus "instrument=<name>" for each part.
  std::vector<std::string> label_pairs(const Vocabulary& v) const;
};

// ---------------------------------------------------------------------------------------------
// Sampling
// ---------------------------------------------------------------------------------------------

struct SamplerOptions {
  uint64_t seed = 0;
  double seconds = 10.0;
  double val_fraction = 0.05, test_fraction = 0.05;
  // Attribute-value pairs never seen in training (a compositional test). When empty, `heldout_count`
  // pairs of genre × instrument and genre × mood are chosen from the seed.
  std::vector<std::pair<std::string, std::string>> heldout;  // e.g. {"genre=jazz", "instrument=violin"}
  int heldout_count = 8;
  double heldout_fraction = 0.04;  // share of clips that deliberately use a held-out pair
  // Share of clips whose instruments are drawn from their genre's typical ones (the vocabulary's
  // "typical_instruments"), role by role where the genre has one for the role, as real genres sound. 0 (the
  // default): instruments are balanced against the genre like every other pair.
  double genre_instruments = 0.0;
  // Share of clips whose time signature is one of their genre's typical ones (the vocabulary's genre
  // "time_signatures"; house in 4/4, a waltz-time folk song in 3/4), balanced among those. 0 (the default): the
  // time signature is balanced against the genre like every other pair, so house comes in 7/8 as often as in 4/4.
  double genre_meters = 0.0;
  // Share of clips whose ensemble is one of their genre's (the vocabulary's genre "ensembles"; techno, house or
  // drum and bass from a duo up, as the beat is what makes them), balanced among those. 0 (the default): the
  // ensemble is balanced against the genre, so a fifth of the techno clips are one unaccompanied instrument.
  double genre_ensembles = 0.0;
};

// Draws clip specs in sequence. Values are chosen greedily to balance single-value and pair counts
// (ties broken by the seeded generator), so every value of every attribute appears within the first
// few dozen clips and pairs stay balanced. Clips holding a held-out pair get split "heldout" and
// never "train".
class Sampler {
 public:
  Sampler(const Vocabulary& vocab, SamplerOptions options);
  ~Sampler();
  ClipSpec next();
  // The first n specs (deterministic; a prefix of any longer run with the same seed).
  std::vector<ClipSpec> take(int64_t n);
  const std::vector<std::pair<std::string, std::string>>& heldout_pairs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Captions
// ---------------------------------------------------------------------------------------------

struct CaptionOptions {
  int per_clip = 5;          // captions per clip (distinct where the grammar allows)
  double drop_prob = 0.35;   // chance to leave an optional attribute out
};

// Keyword-to-caption augmentation without a neural model: many sentence templates, synonyms,
// varied order, optional attributes left out. Deterministic for spec.seed. Captions are de-biased.
std::vector<std::string> make_captions(const ClipSpec& spec, const Vocabulary& vocab,
                                       const CaptionOptions& options = {});

// Replaces gendered words (man/woman, he/she, his/her, boy/girl, male/female ...) by neutral ones,
// keeping capitalisation, as LAION-CLAP did for its captions. `extra` words are removed outright.
std::string debias_gendered(const std::string& text, const std::vector<std::string>& extra = {});

// ---------------------------------------------------------------------------------------------
// The composer
// ---------------------------------------------------------------------------------------------

struct NoteEvent {
  double start = 0, duration = 0;  // seconds
  int channel = 0, key = 60, velocity = 90;
};

struct Track {
  std::string instrument, role;
  int channel = 0, program = 0, bank = 0;
  bool drums = false;
  int volume = 100, pan = 64;      // CC7, CC10
};

struct Score {
  double seconds = 10.0;
  int bpm = 120;
  std::vector<Track> tracks;
  std::vector<NoteEvent> notes;    // sorted by start
  double reverb = 0.3, room = 0.5, chorus = 0.2, gain = 0.7;
  std::string effects;             // augmentation chain applied after rendering ("" = none)
};

// Writes the music of a clip: chord progressions by genre and mode, a melody, a bass line, drums by
// genre and time signature, tempo, dynamics, an arrangement giving each instrument its role, and
// humanised timing and velocity. Deterministic for spec.seed.
Score compose(const ClipSpec& spec, const Vocabulary& vocab);

// ---------------------------------------------------------------------------------------------
// Rendering (FluidSynth, offline)
// ---------------------------------------------------------------------------------------------

std::string default_soundfont();  // $SYNCLAP_SOUNDFONT or /usr/share/sounds/sf2/FluidR3_GM.sf2

// One FluidSynth instance with the soundfont loaded (loading takes a while: keep one per thread).
class FluidSynthRenderer {
 public:
  explicit FluidSynthRenderer(const std::string& soundfont = default_soundfont(), int sample_rate = 48000);
  ~FluidSynthRenderer();
  FluidSynthRenderer(const FluidSynthRenderer&) = delete;
  FluidSynthRenderer& operator=(const FluidSynthRenderer&) = delete;
  // Renders the score to mono at the renderer's rate, exactly score.seconds long, peak-normalised to
  // score.gain, then applies score.effects (seeded by `seed`). The same score gives the same samples.
  Waveform render(const Score& score, uint64_t seed = 0);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// compose + render with a renderer cached per thread for the default soundfont.
Waveform render_clip(const ClipSpec& spec, const Vocabulary& vocab);

// ---------------------------------------------------------------------------------------------
// External programs (text-to-music generators, caption paraphrasers)
// ---------------------------------------------------------------------------------------------

// Puts s in single quotes for /bin/sh ('it'\''s').
std::string shell_quote(const std::string& s);
// Replaces {caption} {seconds} {wav} {seed} {out} (shell-quoted values) in a command template.
std::string fill_command(const std::string& templ, const std::map<std::string, std::string>& values);

struct CommandResult {
  int exit_code = -1;      // -1 when killed by the timeout or a signal
  bool timed_out = false;
  std::string output;      // stdout + stderr (last 64 KiB)
  double seconds = 0;
};
// Runs `command` with /bin/sh -c in its own process group; kills the group after timeout_s.
CommandResult run_command(const std::string& command, double timeout_s);

struct ExternalGenerator {
  std::string command_template;  // e.g. "musicgen --prompt {caption} --seconds {seconds} --out {wav}"
  double timeout_s = 600;
  int retries = 2;
  // Runs the command for one caption, expecting it to write {wav}; returns the decoded audio
  // (48 kHz mono, cut or zero-padded to `seconds`). Throws Error with the last failure's reason.
  Waveform generate(const std::string& caption, double seconds, uint64_t seed,
                    const std::string& scratch_dir) const;
};

// Runs `command_template` with {caption} for each caption; each non-empty stdout line is a
// paraphrase (de-biased). A failing command leaves the caption's list empty.
std::vector<std::vector<std::string>> paraphrase_captions(const std::vector<std::string>& captions,
                                                          const std::string& command_template,
                                                          double timeout_s = 60, int threads = 0);

// ---------------------------------------------------------------------------------------------
// A synthetic dataset on disk
// ---------------------------------------------------------------------------------------------
//
// DIR/dataset.json     how it was made (seed, seconds, generator, vocabulary hash, held-out pairs)
// DIR/manifest.jsonl   one record per clip, sorted by index: {"id", "index", "audio", "captions",
//                      "labels", "split", "seed", "duration", "sample_rate", "generator"}
// DIR/audio/NNNNNN.flac  48 kHz mono FLAC
// DIR/failures.jsonl   clips an external generator could not make (retried by the next run)
//
// Deterministic for a seed and resumable: a re-run with the same settings keeps the clips already in
// the manifest and makes the rest; every file is written to a temporary name and renamed, manifest
// lines are appended whole, and the manifest is rewritten sorted (atomically) at the end, so an
// interrupted run followed by a re-run gives the same directory as one uninterrupted run.

struct SynthRunOptions {
  std::string out_dir;
  int64_t count = 0;
  uint64_t seed = 0;
  double seconds = 10.0;
  std::string vocab_path;             // "" = Vocabulary::builtin()
  std::string generator = "builtin";  // or "cmd:PROGRAM --prompt {caption} --seconds {seconds} --out {wav}"
  double timeout_s = 600;
  int retries = 2;
  int threads = 0;                    // 0 = all cores
  int captions_per_clip = 5;
  double val_fraction = 0.05, test_fraction = 0.05;  // split shares (SamplerOptions)
  double genre_instruments = 0.0;                     // SamplerOptions::genre_instruments
  double genre_meters = 0.0;                          // SamplerOptions::genre_meters
  double genre_ensembles = 0.0;                       // SamplerOptions::genre_ensembles
  std::string paraphrase_command;     // optional: "{caption}" -> paraphrases, one per stdout line
  bool progress = true;
  int64_t stop_after = -1;            // tests: stop (as if killed) after this many new clips
};

struct SynthRunResult {
  int64_t made = 0, kept = 0, failed = 0;  // new clips, clips already there, failures
  double seconds = 0;                      // wall time
  double audio_seconds = 0;                // audio made in this run
};

SynthRunResult run_synth(const SynthRunOptions& options);

// ---------------------------------------------------------------------------------------------
// Real data in the same layout, statistics, webdataset shards
// ---------------------------------------------------------------------------------------------

struct ImportOptions {
  std::string out_dir;
  std::string audio_dir;       // folder the captions file's paths are relative to
  std::string captions_file;   // CSV (header: file|path|audio, caption*|text, other columns = labels) or JSONL
  std::vector<std::string> tars;  // webdataset shards (LAION-Audio-630K: NNNNNN.flac + NNNNNN.json {"text": ...})
  uint64_t seed = 0;           // for the train/val/test split of records that do not name one
  bool debias = true;          // de-gender captions as LAION-CLAP did
  int threads = 0;
  bool progress = true;
};
struct ImportResult {
  int64_t imported = 0, kept = 0, failed = 0;
  std::vector<std::string> errors;  // "source: reason", one per failed item
};
// Decodes each item to 48 kHz mono FLAC under out_dir/audio and writes manifest.jsonl records
// {"id", "index", "audio", "captions", "labels", "split", "source", "duration", "sample_rate",
// "generator": "import"}. Resumable like run_synth (items already in the manifest are kept).
ImportResult import_dataset(const ImportOptions& options);

// Coverage of every label of a dataset directory: {"clips", "splits": {...}, "labels": {attribute:
// {value: count}}, "missing": {attribute: [vocabulary values never seen]}} (missing only with a vocabulary).
std::string dataset_stats_json(const std::string& dir, const Vocabulary* vocab = nullptr);

// Writes the dataset as webdataset tar shards (NNNNNN.flac + NNNNNN.json with "text", "labels",
// "split"), `per_shard` clips each: out_dir/shard-000000.tar, ... Returns the shard paths.
std::vector<std::string> write_webdataset(const std::string& dataset_dir, const std::string& out_dir, int per_shard = 1000);

}  // namespace synclap
