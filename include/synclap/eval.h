// synclap: evaluation metrics for CLAP models and for generated audio. Everything here works on plain
// arrays (similarity matrices, row-major embeddings), so each metric can be tested on values made by hand;
// the `synclap eval / score / fad` commands feed them with model embeddings.
//
//   Retrieval    retrieval_metrics(sim, texts, clips, text_clip)    R@1/5/10, mAP@10, median/mean rank
//   Zero-shot    class_embeddings() + zero_shot()                   top-1/top-5, per-class, confusion
//   Probe        linear_probe()                                      logistic regression on frozen embeddings
//   CLAP score   clap_scores()                                       cosine of each clip and its prompt
//   FAD          fit_gaussian() + frechet_distance() / fad()         stable sqrt, per-item, FAD-infinity
//   Spectrogram  spectrogram_mse()                                   paired clips
//   Provenance   Provenance                                          what produced a result
//   Pictures     confusion_svg(), histogram_svg(), bars_svg(), write_png_rgb(), heatmap_rgb()
#pragma once
#include "synclap/image.h"
#include <cstdint>
#include <string>
#include <vector>

#include "synclap/model.h"  // Embeddings

namespace synclap {

// ---------------------------------------------------------------------------------------------
// Retrieval (Clotho / AudioCaps protocol, as LAION-CLAP's evaluation computes it)
// ---------------------------------------------------------------------------------------------

// Metrics of one direction. Ranks are 1-based (1 = the correct item came first).
struct RetrievalMetrics {
  int64_t queries = 0;
  double r1 = 0, r5 = 0, r10 = 0;  // fraction of queries whose (best) correct item ranks within k
  double map10 = 0;                // mean average precision at 10 (see retrieval_metrics)
  double median_rank = 0;          // floor(median of 0-based best ranks) + 1, as LAION-CLAP
  double mean_rank = 0;            // mean of 1-based best ranks
};

struct RetrievalResult {
  int64_t texts = 0, clips = 0;
  RetrievalMetrics text_to_audio, audio_to_text;
  std::vector<int64_t> text_ranks;       // per text: 1-based rank of its clip among all clips
  std::vector<int64_t> clip_best_ranks;  // per clip: 1-based rank of its best caption among all texts (0: none)
};

// `sim` is [texts x clips] row-major (any score where higher = more similar, e.g. cosine or logits);
// text_clip[t] is the clip that text t describes (several texts may share a clip).
//  - text->audio: each text is a query over all clips; its rank is its clip's position. R@k = share of
//    texts with rank <= k; mAP@10 = mean over texts of (rank <= 10 ? 1/rank : 0) (one relevant item).
//  - audio->text: each clip is a query over all texts. R@k counts a hit when ANY of its captions ranks
//    within k (best rank). mAP@10 = (1/C) * sum over its captions ranked within 10, in rank order j = 1.., of
//    j / rank_j, where C is the clip's number of captions (AP truncated at 10 with C relevant items; equal to
//    LAION-CLAP's "/ 5" for five captions). Clips without captions are not queries.
//    The captions' ranks are taken in rank order, as the protocol (Mei et al.'s audio-text_retrieval
//    tools/utils.py, cited by LAION-CLAP's evaluate_clotho_audiocaps docstring) describes. LAION-CLAP's code
//    as written takes them in caption order (torch.where over the caption rows), which can over-count (even
//    exceed 1) when a later caption outranks an earlier one; the two agree whenever caption order = rank order.
// Ties are broken against the query: an item scoring the same as the correct one is ranked before it
// (so a constant matrix scores as badly as possible); ties among a clip's own captions do not matter.
// Throws Error on NaN scores, a text_clip entry out of range, or mismatched sizes.
RetrievalResult retrieval_metrics(const float* sim, int64_t texts, int64_t clips,
                                  const std::vector<int64_t>& text_clip);
inline RetrievalResult retrieval_metrics(const std::vector<float>& sim, int64_t texts, int64_t clips,
                                         const std::vector<int64_t>& text_clip) {
  return retrieval_metrics(sim.data(), texts, clips, text_clip);
}
// Cosine similarity matrix [a.rows x b.rows] of two embedding sets (rows re-normalised, so any rows work).
std::vector<float> cosine_matrix(const Embeddings& a, const Embeddings& b);

// ---------------------------------------------------------------------------------------------
// Zero-shot classification
// ---------------------------------------------------------------------------------------------

// The prompt of one class from one template: every "{}" or "{label}" is replaced by the class name
// (a template without a placeholder gets " <name>" appended).
std::string fill_template(const std::string& templ, const std::string& class_name);
// All prompts, class-major: prompts[c * templates.size() + t].
std::vector<std::string> make_prompts(const std::vector<std::string>& templates,
                                      const std::vector<std::string>& classes);
// Template ensemble: the text embeddings of make_prompts() (rows class-major, `templates_per_class` per class)
// are L2-normalised, averaged per class in embedding space, and the means re-normalised.
Embeddings class_embeddings(const Embeddings& prompt_embeddings, int64_t classes, int64_t templates_per_class);

struct ZeroShotResult {
  std::vector<std::string> classes;
  int64_t items = 0;
  double top1 = 0, top5 = 0;              // top-5 = top-min(5, classes)
  double balanced_accuracy = 0;           // mean of per-class accuracies over classes with items
  std::vector<double> per_class_accuracy; // NaN-free: 0 for a class without items (see per_class_count)
  std::vector<int64_t> per_class_count;
  std::vector<int64_t> confusion;         // [classes x classes] row = true class, column = predicted
  std::vector<int64_t> predictions;       // per item
  std::vector<float> scores;              // [items x classes] cosine similarities
};
// Classifies each audio embedding by its most similar class embedding; labels[i] in [0, classes).
// Ties go to the lower class index.
ZeroShotResult zero_shot(const Embeddings& audio, const Embeddings& class_emb, const std::vector<int64_t>& labels,
                         const std::vector<std::string>& classes);
// The same from a precomputed [items x classes] score matrix.
ZeroShotResult zero_shot_from_scores(const std::vector<float>& scores, int64_t items,
                                     const std::vector<int64_t>& labels, const std::vector<std::string>& classes);

// ---------------------------------------------------------------------------------------------
// Linear probe (multinomial logistic regression with LibTorch)
// ---------------------------------------------------------------------------------------------

struct ProbeOptions {
  std::string optimizer = "lbfgs";  // "lbfgs" (full batch, strong Wolfe) or "adam" (full batch)
  double l2 = 1e-4;                 // penalty l2/2 * ||W||^2 (bias not penalised), added to the mean CE loss
  int max_iter = 300;               // L-BFGS iterations / Adam steps
  double lr = 0.05;                 // Adam learning rate (L-BFGS uses 1 with line search)
  bool standardize = true;          // z-score features with the training split's mean/std
  uint64_t seed = 0;                // initial weights (small normal) and nothing else
};

struct ProbeResult {
  int64_t classes = 0, dim = 0, train_items = 0, test_items = 0;
  double train_accuracy = 0, test_accuracy = 0;
  double final_loss = 0;  // training objective at the end
  int iterations = 0;
  std::vector<int64_t> test_predictions;
  std::vector<int64_t> confusion;  // [classes x classes] on the test split, row = true
};
// x: row-major [n x dim] float features; y in [0, classes). Deterministic for a given seed and thread count.
ProbeResult linear_probe(const std::vector<float>& train_x, const std::vector<int64_t>& train_y,
                         const std::vector<float>& test_x, const std::vector<int64_t>& test_y, int64_t dim,
                         int64_t classes, const ProbeOptions& options = {});

// ---------------------------------------------------------------------------------------------
// CLAP score
// ---------------------------------------------------------------------------------------------

// Cosine of audio row i and text row i (rows re-normalised; a zero row scores 0). Sizes must match.
std::vector<double> clap_scores(const Embeddings& audio, const Embeddings& text);

// ---------------------------------------------------------------------------------------------
// Fréchet distance (FAD) and spectrogram MSE
// ---------------------------------------------------------------------------------------------

// Covariances are unbiased (divided by n - 1), as numpy.cov in the reference FAD tools.
struct Gaussian {
  int64_t n = 0, dim = 0;
  std::vector<double> mean;  // dim
  std::vector<double> cov;   // dim x dim, unbiased (n - 1), row-major
};
// Mean and covariance of n rows of dim floats (float64 accumulation). Needs n >= 2.
Gaussian fit_gaussian(const float* x, int64_t n, int64_t dim);

struct FrechetTerms {
  double distance = 0;     // mean_term + trace_term, never negative
  double mean_term = 0;    // |mu1 - mu2|^2
  double trace_term = 0;   // tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2), clamped at 0
  double clamped_eigenvalues = 0;  // how many negative eigenvalues (float noise) were clamped to 0
};
// Fréchet distance between two Gaussians. The matrix square root is taken in the symmetric form
// sqrt(S1^1/2 S2 S1^1/2): both roots come from symmetric eigendecompositions in float64 with eigenvalues
// clamped at 0, so the result is real and >= 0 even for singular or near-singular covariances
// (fewer items than dimensions), where scipy.linalg.sqrtm gives complex or negative values.
FrechetTerms frechet_distance(const Gaussian& a, const Gaussian& b);

struct FadOptions {
  bool per_item = false;       // leave-one-out contribution of each generated item (one eigh per item)
  bool infinity = false;       // FAD-infinity extrapolation
  std::vector<int64_t> infinity_sizes;  // subset sizes of the generated set (default: 5 sizes from n/4 to n)
  int infinity_repeats = 3;    // random subsets per size (averaged)
  uint64_t seed = 0;           // subsets for FAD-infinity
};

struct FadResult {
  int64_t n_ref = 0, n_gen = 0, dim = 0;
  FrechetTerms terms;
  double fad = 0;
  // Per generated item i: FAD(ref, gen) - FAD(ref, gen without i). Positive: the item pulls the generated
  // distribution away from the reference (removing it lowers FAD); negative: it helps. Needs n_gen >= 4.
  std::vector<double> per_item;
  // FAD-infinity: FAD at subset sizes N of the generated set, fitted by least squares as FAD(N) = a + b / N;
  // fad_infinity = a (the value for an infinitely large generated set, free of the 1/N bias).
  double fad_infinity = 0, fad_infinity_slope = 0;
  std::vector<int64_t> infinity_sizes;
  std::vector<double> infinity_values;
};
// ref/gen: row-major [n x dim] embeddings.
FadResult fad(const std::vector<float>& ref, int64_t n_ref, const std::vector<float>& gen, int64_t n_gen,
              int64_t dim, const FadOptions& options = {});

// Mean squared difference of two spectrograms [frames x bins] (e.g. log-mel dB) over the first
// min(frames_a, frames_b) frames; clips of different length are compared on their common start.
double spectrogram_mse(const float* a, int64_t frames_a, const float* b, int64_t frames_b, int64_t bins);

// ---------------------------------------------------------------------------------------------
// Provenance
// ---------------------------------------------------------------------------------------------

// What produced a result; every result file written by synclap carries it under "provenance".
struct Provenance {
  std::string task;                  // "retrieval", "zeroshot", "probe", "score", "fad", ...
  std::string checkpoint;            // path as given
  std::string checkpoint_sha256;     // see checkpoint_sha256()
  std::string preprocess_json;       // the model's PreprocessContract::to_json() ("" without a model)
  std::string long_audio_policy;     // truncation / padding / window policy in words
  std::vector<std::string> templates;
  std::string dataset;               // path of the data directory or inputs
  std::string dataset_sha256;        // of the manifest / inputs where known
  uint64_t seed = 0;
  std::string synclap_version = SYNCLAP_VERSION;
  std::string created_utc;           // ISO 8601, filled by to_json() when empty
  std::string command_line;
  std::string to_json() const;       // a JSON object (text)
};
// sha256 of a checkpoint: of the file itself, or for a directory, of the sorted lines
// "<relative path> <sha256 of the file>\n" over its regular files (sub-directories included).
std::string checkpoint_sha256(const std::string& path);
// "truncation=middle padding=repeatpad max_seconds=10 ..." from a contract.
std::string long_audio_policy(const PreprocessContract& c);

// ---------------------------------------------------------------------------------------------
// Pictures
// ---------------------------------------------------------------------------------------------

// Text made safe inside HTML/SVG/XML elements and attribute values (< > & " escaped).
std::string xml_escape(const std::string& s);
// A confusion matrix as an SVG heat map (row-normalised colours, counts printed in the cells).
std::string confusion_svg(const std::vector<int64_t>& confusion, const std::vector<std::string>& classes,
                          const std::string& title = "");
// The same as an RGB image (cell_px pixels per cell, no text), row-major, 3 bytes per pixel.
std::vector<uint8_t> confusion_rgb(const std::vector<int64_t>& confusion, int64_t classes, int cell_px,
                                   int* width, int* height);
// Equal-width bins between the smallest and largest finite value (non-finite values are left out).
struct HistogramCounts {
  double lo = 0, hi = 0;
  std::vector<int64_t> counts;
  int64_t n = 0;      // finite values counted
  double mean = 0;    // their mean (0 when n == 0)
};
HistogramCounts histogram_counts(const std::vector<double>& values, int bins);
// That histogram as SVG (one <rect class="bin"> per bin, the mean marked), e.g. per-item CLAP scores.
std::string histogram_svg(const std::vector<double>& values, int bins, const std::string& title = "",
                          const std::string& xlabel = "");
// Signed horizontal bars, one row per label (one <rect class="bar"> each; positive red, negative blue),
// e.g. the items that most worsen or improve a FAD.
std::string bars_svg(const std::vector<std::string>& labels, const std::vector<double>& values,
                     const std::string& title = "", const std::string& xlabel = "");
// Writes an 8-bit RGB PNG (no zlib needed: stored deflate blocks), atomically.
// write_png_rgb() and png_rgb_bytes() are in synclap/image.h.

}  // namespace synclap
