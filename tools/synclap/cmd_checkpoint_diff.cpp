// synclap checkpoint-diff A B [--tolerance X]: compares two checkpoints tensor by tensor (same model shape
// required) and prints the largest absolute difference per parameter group (audio tower, text tower, heads)
// and overall. Exit status 0 when every difference is within the tolerance, 2 when not.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>

#include "command.h"
#include "io/torch/checkpoint.h"
#include "synclap/error.h"

namespace synclap::cli {
namespace {

std::string group_of(const std::string& name) {
  if (name.rfind("audio_model.", 0) == 0) return "audio";
  if (name.rfind("text_model.", 0) == 0) return "text";
  return "heads";
}

static Command reg("checkpoint-diff", "Compare two checkpoints tensor by tensor (largest absolute difference)",
                   [](CLI::App& sub, Context& ctx) {
                     auto a = std::make_shared<std::string>(), b = std::make_shared<std::string>();
                     auto tol = std::make_shared<double>(-1);
                     sub.add_option("a", *a, "First checkpoint")->required();
                     sub.add_option("b", *b, "Second checkpoint")->required();
                     sub.add_option("--tolerance", *tol, "Exit with status 2 if any difference is larger");
                     return [a, b, tol, &ctx]() -> int {
                       LoadedModel ma = load_checkpoint(*a), mb = load_checkpoint(*b);
                       auto ta = ma.model->state_tensors(), tb = mb.model->state_tensors();
                       if (ta.size() != tb.size()) throw Error("the checkpoints hold different models (" +
                                                               std::to_string(ta.size()) + " vs " +
                                                               std::to_string(tb.size()) + " tensors)");
                       std::map<std::string, double> worst;
                       std::string worst_name;
                       double overall = 0;
                       for (size_t i = 0; i < ta.size(); ++i) {
                         if (ta[i].first != tb[i].first || ta[i].second.sizes() != tb[i].second.sizes())
                           throw Error("the checkpoints hold different models (" + ta[i].first + " vs " + tb[i].first + ")");
                         if (!ta[i].second.is_floating_point()) continue;
                         const double d = (ta[i].second.to(torch::kDouble) - tb[i].second.to(torch::kDouble))
                                              .abs().max().item<double>();
                         auto& w = worst[group_of(ta[i].first)];
                         w = std::max(w, d);
                         if (!(d <= overall)) {
                           overall = d;
                           worst_name = ta[i].first;
                         }
                       }
                       const bool ok = *tol < 0 || overall <= *tol;
                       if (ctx.json) {
                         nlohmann::json j{{"max_abs_diff", overall}, {"worst_tensor", worst_name}, {"groups", worst},
                                          {"within_tolerance", ok}};
                         std::cout << j.dump(2) << std::endl;
                       } else {
                         for (const auto& [g, d] : worst) std::printf("%-6s max |a-b| = %.3g\n", g.c_str(), d);
                         std::printf("all    max |a-b| = %.3g (%s)%s\n", overall, worst_name.c_str(),
                                     *tol < 0 ? "" : ok ? "  within tolerance" : "  ABOVE TOLERANCE");
                       }
                       return ok ? 0 : 2;
                     };
                   });

}  // namespace
}  // namespace synclap::cli
