// synclap spectrogram FILE --out PNG: a log-mel picture of an audio file (CLAP's front end: 48 kHz,
// 64 mel bins, 10 ms hop), for docs and quick looks.
#include <cstdio>
#include <memory>

#include "command.h"
#include "synclap/audio.h"
#include "synclap/frontend.h"
#include "synclap/image.h"

namespace synclap::cli {
namespace {

struct SpecArgs {
  std::string file, out;
  int width = 0, height = 192;
  double range_db = 80;
};

Command reg("spectrogram", "Draw the log-mel spectrogram of an audio file as a PNG",
            [](CLI::App& sub, Context&) -> Runner {
              auto a = std::make_shared<SpecArgs>();
              sub.add_option("file", a->file, "Audio file")->required();
              sub.add_option("--out", a->out, "PNG to write")->required();
              sub.add_option("--width", a->width, "Image width (default: one column per 10 ms frame, at most 1000)");
              sub.add_option("--height", a->height, "Image height (default 192)");
              sub.add_option("--range", a->range_db, "Dynamic range in dB (default 80)");
              return [a]() {
                const Waveform w = load_audio(a->file, {});
                FeatureExtractor fx;
                const auto lm = fx.log_mel(w.samples.data(), w.samples.size());
                const int bins = fx.contract().n_mels, frames = int(lm.size() / size_t(bins));
                const int width = a->width > 0 ? a->width : std::min(frames, 1000);
                write_spectrogram_png(a->out, lm, frames, bins, width, a->height, a->range_db);
                return 0;
              };
            });

}  // namespace
}  // namespace synclap::cli
