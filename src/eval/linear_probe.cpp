// Linear probe: multinomial logistic regression on frozen embeddings, trained with LibTorch
// (full-batch L-BFGS with strong-Wolfe line search, or Adam), L2 penalty on the weights, seeded init.
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

#include "synclap/error.h"
#include "synclap/eval.h"

namespace synclap {
namespace {

torch::Tensor as_tensor(const std::vector<float>& x, int64_t n, int64_t dim) {
  return torch::from_blob(const_cast<float*>(x.data()), {n, dim}, torch::kFloat32).to(torch::kFloat64).clone();
}

torch::Tensor as_labels(const std::vector<int64_t>& y, int64_t classes, const char* split) {
  for (int64_t v : y)
    if (v < 0 || v >= classes)
      throw Error(std::string("linear probe: ") + split + " label " + std::to_string(v) + " out of range [0, " +
                  std::to_string(classes) + ")");
  return torch::from_blob(const_cast<int64_t*>(y.data()), {int64_t(y.size())}, torch::kInt64).clone();
}

}  // namespace

ProbeResult linear_probe(const std::vector<float>& train_x, const std::vector<int64_t>& train_y,
                         const std::vector<float>& test_x, const std::vector<int64_t>& test_y, int64_t dim,
                         int64_t classes, const ProbeOptions& opt) {
  if (dim <= 0 || classes < 2) throw Error("linear probe: need dim > 0 and at least two classes");
  const int64_t n_train = int64_t(train_y.size()), n_test = int64_t(test_y.size());
  if (n_train == 0) throw Error("linear probe: empty training split");
  if (int64_t(train_x.size()) != n_train * dim || int64_t(test_x.size()) != n_test * dim)
    throw Error("linear probe: feature and label counts do not match");
  for (float v : train_x)
    if (!std::isfinite(v)) throw Error("linear probe: non-finite training feature");

  torch::NoGradGuard outer_ng;
  torch::Tensor X = as_tensor(train_x, n_train, dim);
  torch::Tensor Xt = n_test ? as_tensor(test_x, n_test, dim) : torch::zeros({0, dim}, torch::kFloat64);
  torch::Tensor y = as_labels(train_y, classes, "training");
  torch::Tensor yt = as_labels(test_y, classes, "test");
  if (opt.standardize) {
    torch::Tensor mu = X.mean(0, true);
    torch::Tensor sd = X.std(0, /*unbiased=*/false, true).clamp_min(1e-8);
    X = (X - mu) / sd;
    Xt = (Xt - mu) / sd;
  }

  // Seeded initialisation from our own generator state (torch's global generator is left alone).
  auto gen = at::make_generator<at::CPUGeneratorImpl>(opt.seed);
  torch::Tensor W = at::normal(0.0, 0.01, {dim, classes}, gen, torch::TensorOptions().dtype(torch::kFloat64));
  torch::Tensor b = torch::zeros({classes}, torch::kFloat64);
  W.set_requires_grad(true);
  b.set_requires_grad(true);

  auto objective = [&]() {
    torch::Tensor logits = torch::matmul(X, W) + b;
    return torch::nn::functional::cross_entropy(logits, y) + 0.5 * opt.l2 * W.pow(2).sum();
  };

  ProbeResult r;
  r.classes = classes;
  r.dim = dim;
  r.train_items = n_train;
  r.test_items = n_test;
  {
    torch::AutoGradMode grad_on(true);
    if (opt.optimizer == "lbfgs") {
      torch::optim::LBFGS lbfgs({W, b}, torch::optim::LBFGSOptions(1.0)
                                            .max_iter(opt.max_iter)
                                            .history_size(20)
                                            .tolerance_grad(1e-9)
                                            .tolerance_change(1e-12)
                                            .line_search_fn("strong_wolfe"));
      int calls = 0;
      lbfgs.step([&]() {
        lbfgs.zero_grad();
        torch::Tensor loss = objective();
        loss.backward();
        ++calls;
        return loss;
      });
      r.iterations = calls;
    } else if (opt.optimizer == "adam") {
      torch::optim::Adam adam({W, b}, torch::optim::AdamOptions(opt.lr));
      for (int it = 0; it < opt.max_iter; ++it) {
        adam.zero_grad();
        torch::Tensor loss = objective();
        loss.backward();
        adam.step();
      }
      r.iterations = opt.max_iter;
    } else {
      throw Error("linear probe: unknown optimizer '" + opt.optimizer + "' (lbfgs, adam)");
    }
  }
  r.final_loss = objective().item<double>();
  if (!std::isfinite(r.final_loss)) throw Error("linear probe: training diverged (non-finite loss)");

  const torch::Tensor pred_train = (torch::matmul(X, W) + b).argmax(1);
  r.train_accuracy = pred_train.eq(y).to(torch::kFloat64).mean().item<double>();
  r.confusion.assign(size_t(classes * classes), 0);
  if (n_test) {
    const torch::Tensor pred = (torch::matmul(Xt, W) + b).argmax(1).contiguous();
    r.test_predictions.assign(pred.data_ptr<int64_t>(), pred.data_ptr<int64_t>() + n_test);
    int64_t hits = 0;
    for (int64_t i = 0; i < n_test; ++i) {
      hits += r.test_predictions[size_t(i)] == test_y[size_t(i)];
      r.confusion[size_t(test_y[size_t(i)] * classes + r.test_predictions[size_t(i)])]++;
    }
    r.test_accuracy = double(hits) / double(n_test);
  }
  return r;
}

}  // namespace synclap
