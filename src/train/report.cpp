// synclap: training curves as SVG line charts, and RUN/report.html built from RUN/metrics.jsonl.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "synclap/error.h"
#include "synclap/eval.h"
#include "synclap/util.h"
#include "train/train_internal.h"

namespace synclap {
namespace {

const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"};

std::string num(double v) {
  char buf[32];
  if (v != 0 && (std::fabs(v) < 1e-3 || std::fabs(v) >= 1e5)) std::snprintf(buf, sizeof buf, "%.2e", v);
  else std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}


}  // namespace

std::string line_chart_svg(const std::vector<ChartSeries>& series, const std::string& title, const std::string& x_label,
                           bool log_y, int width, int height) {
  const double left = 64, right = 16, top = 28, bottom = 40;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  auto ty = [&](double y) { return log_y ? std::log10(std::max(y, 1e-12)) : y; };
  for (const auto& s : series)
    for (const auto& p : s.points) {
      if (!std::isfinite(p.first) || !std::isfinite(p.second)) continue;
      x0 = std::min(x0, p.first);
      x1 = std::max(x1, p.first);
      y0 = std::min(y0, ty(p.second));
      y1 = std::max(y1, ty(p.second));
    }
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" viewBox=\"0 0 " << width << " " << height << "\" font-family=\"sans-serif\" font-size=\"11\">"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
    << "<text x=\"" << width / 2 << "\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">" << xml_escape(title) << "</text>";
  if (x0 > x1) {
    o << "<text x=\"" << width / 2 << "\" y=\"" << height / 2 << "\" text-anchor=\"middle\">no data yet</text></svg>";
    return o.str();
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) {
    y1 += 0.5 * std::max(1e-9, std::fabs(y1));
    y0 -= 0.5 * std::max(1e-9, std::fabs(y0));
  }
  const double pw = width - left - right, ph = height - top - bottom;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + (1.0 - (ty(y) - y0) / (y1 - y0)) * ph; };
  o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#888\"/>";
  for (int i = 0; i <= 4; ++i) {
    const double fy = y0 + (y1 - y0) * i / 4.0;
    const double yy = top + (1.0 - i / 4.0) * ph;
    const double label = log_y ? std::pow(10.0, fy) : fy;
    o << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << yy << "\" y2=\"" << yy
      << "\" stroke=\"#eee\"/><text x=\"" << left - 4 << "\" y=\"" << yy + 4 << "\" text-anchor=\"end\">" << num(label)
      << "</text>";
    const double fx = x0 + (x1 - x0) * i / 4.0;
    o << "<text x=\"" << px(fx) << "\" y=\"" << top + ph + 14 << "\" text-anchor=\"middle\">" << num(fx) << "</text>";
  }
  o << "<text x=\"" << left + pw / 2 << "\" y=\"" << height - 6 << "\" text-anchor=\"middle\">" << xml_escape(x_label)
    << "</text>";
  for (size_t si = 0; si < series.size(); ++si) {
    const auto& s = series[si];
    const char* colour = kColours[si % 8];
    std::ostringstream pts;
    int n = 0;
    for (const auto& p : s.points) {
      if (!std::isfinite(p.first) || !std::isfinite(p.second)) continue;
      pts << (n++ ? " " : "") << px(p.first) << "," << py(p.second);
    }
    if (n == 1)
      o << "<circle cx=\"" << px(s.points[0].first) << "\" cy=\"" << py(s.points[0].second) << "\" r=\"3\" fill=\""
        << colour << "\"/>";
    else if (n > 1)
      o << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"1.5\" points=\"" << pts.str() << "\"/>";
    o << "<text x=\"" << left + 8 << "\" y=\"" << top + 14 + 13 * si << "\" fill=\"" << colour << "\">"
      << xml_escape(s.name) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

void write_training_report(const std::string& run_dir) {
  const std::string metrics = run_dir + "/metrics.jsonl";
  std::ifstream in(metrics);
  if (!in) throw FileError(metrics, "cannot open training metrics");
  ChartSeries loss{"train loss", {}}, val_loss{"", {}}, temp_a{"temperature (audio->text)", {}},
      temp_t{"temperature (text->audio)", {}}, sps{"samples/s", {}};
  std::map<std::string, ChartSeries> lrs, recalls;
  std::string line, last_val_json;
  int64_t skipped = 0, last_step = 0;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (...) {
      continue;  // a line cut short by a crash
    }
    const std::string type = j.value("type", "train");
    const double step = j.value("step", 0.0);
    if (type == "train") {
      last_step = int64_t(step);
      if (j.contains("loss") && j["loss"].is_number()) loss.points.push_back({step, j["loss"].get<double>()});
      if (j.contains("temperature_a")) temp_a.points.push_back({step, j["temperature_a"].get<double>()});
      if (j.contains("temperature_t")) temp_t.points.push_back({step, j["temperature_t"].get<double>()});
      if (j.contains("samples_per_s")) sps.points.push_back({step, j["samples_per_s"].get<double>()});
      if (j.contains("lr") && j["lr"].is_object())
        for (auto it = j["lr"].begin(); it != j["lr"].end(); ++it) {
          auto& s = lrs[it.key()];
          s.name = "lr " + it.key();
          s.points.push_back({step, it->get<double>()});
        }
      skipped = j.value("skipped_steps", skipped);
    } else if (type == "val") {
      last_val_json = line;
      for (const char* k : {"t2a_r1", "t2a_r10", "a2t_r1", "a2t_r10", "t2a_map10"})
        if (j.contains(k)) {
          auto& s = recalls[k];
          s.name = k;
          s.points.push_back({step, j[k].get<double>()});
        }
    }
  }
  std::vector<ChartSeries> lr_series, recall_series;
  for (auto& kv : lrs) lr_series.push_back(kv.second);
  for (auto& kv : recalls) recall_series.push_back(kv.second);
  const std::string loss_svg = line_chart_svg({loss}, "Contrastive loss", "step");
  const std::string temp_svg = line_chart_svg({temp_a, temp_t}, "Temperature (1 / exp(logit scale))", "step", true);
  const std::string lr_svg = line_chart_svg(lr_series, "Learning rate by group", "step");
  const std::string recall_svg = line_chart_svg(recall_series, "Validation retrieval", "step");
  const std::string speed_svg = line_chart_svg({sps}, "Throughput", "step");
  std::ostringstream h;
  h << "<!doctype html><html><head><meta charset=\"utf-8\"><title>synclap training report</title>"
    << "<style>body{font-family:sans-serif;margin:24px;max-width:1400px}svg{margin:6px;border:1px solid #ddd}"
    << "pre{background:#f6f6f6;padding:8px;overflow:auto}</style></head><body>"
    << "<h1>synclap training report</h1><p>Run: " << xml_escape(run_dir) << " &middot; last step " << last_step
    << " &middot; skipped (non-finite) steps " << skipped << " &middot; written " << xml_escape(std::to_string(int64_t(now_seconds())))
    << " (unix time)</p>" << loss_svg << temp_svg << recall_svg << lr_svg << speed_svg;
  if (!last_val_json.empty()) h << "<h2>Last validation</h2><pre>" << xml_escape(last_val_json) << "</pre>";
  std::ifstream cfg(run_dir + "/config.json");
  if (cfg) {
    std::stringstream ss;
    ss << cfg.rdbuf();
    h << "<h2>Config</h2><pre>" << xml_escape(ss.str()) << "</pre>";
  }
  h << "</body></html>\n";
  write_file_atomic(run_dir + "/report.html", h.str());
  write_file_atomic(run_dir + "/loss.svg", loss_svg);
  write_file_atomic(run_dir + "/recall.svg", recall_svg);
}

}  // namespace synclap
