// Data-parallel collectives over c10d Gloo: two ranks as two threads of this process, rendezvous through a
// FileStore. The key property: per-rank contrastive losses on each rank's rows of the global logits, with
// embeddings gathered with gradient, give per-rank gradients that SUM to the single-process gradient.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fcntl.h>

#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "synclap/error.h"
#include "test_support.h"
#include "train/distributed.h"

using namespace synclap;

namespace {

// Runs fn(rank) for each rank on its own thread; returns the exception messages ("" = ok).
std::vector<std::string> run_ranks(int world, const std::function<void(int)>& fn) {
  std::vector<std::string> errors(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        fn(r);
      } catch (const std::exception& e) {
        errors[r] = e.what();
        if (errors[r].empty()) errors[r] = "exception";
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

DistOptions options(int rank, int world, const std::string& dir) {
  DistOptions o;
  o.rank = rank;
  o.world_size = world;
  o.init = "file://" + dir + "/store";
  o.backend = "gloo";
  o.timeout_s = 60;
  return o;
}

// The little two-tower model: linear encoders, L2-normalised, scaled cosine logits.
struct Towers {
  torch::nn::Linear audio{nullptr}, text{nullptr};
  torch::Tensor log_scale;
  explicit Towers(uint64_t seed) {
    torch::manual_seed(seed);
    audio = torch::nn::Linear(6, 4);
    text = torch::nn::Linear(5, 4);
    log_scale = torch::full({1}, 2.0).set_requires_grad(true);
  }
  std::vector<torch::Tensor> params() const {
    return {audio->weight, audio->bias, text->weight, text->bias, log_scale};
  }
};

torch::Tensor l2norm(const torch::Tensor& x) { return x / x.norm(2, -1, true); }

// Sum over `rows` (their global indices first_row..) of both cross-entropies, divided by 2 * global batch.
torch::Tensor contrastive_rows(const torch::Tensor& a_all, const torch::Tensor& t_all, const torch::Tensor& scale,
                               int64_t first_row, int64_t rows) {
  const int64_t n = a_all.size(0);
  auto la = (scale.exp() * a_all.mm(t_all.t())).narrow(0, first_row, rows);
  auto lt = (scale.exp() * t_all.mm(a_all.t())).narrow(0, first_row, rows);
  auto labels = torch::arange(first_row, first_row + rows, torch::kLong);
  auto opts = torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum);
  return (torch::nn::functional::cross_entropy(la, labels, opts) +
          torch::nn::functional::cross_entropy(lt, labels, opts)) /
         double(2 * n);
}

}  // namespace

TEST(Distributed, BadOptionsThrow) {
  DistOptions o;
  o.init = "file:///tmp/never";
  o.rank = 2;
  o.world_size = 2;
  EXPECT_THROW(Distributed{o}, Error);
  if (!distributed_available()) {
    o.rank = 0;
    EXPECT_THROW(Distributed{o}, Error);  // no backend in this build
    GTEST_SKIP() << "built without c10d Gloo";
  }
  o.rank = 0;
  o.init = "udp://host:1";
  EXPECT_THROW(Distributed{o}, Error);
  o.init = "tcp://localhost";
  EXPECT_THROW(Distributed{o}, Error);
  o.init = "file:///tmp/never";
  o.backend = "mpi";
  EXPECT_THROW(Distributed{o}, Error);
}

TEST(Distributed, SingleRankIsIdentity) {
  if (!distributed_available()) GTEST_SKIP() << "built without c10d Gloo";
  const std::string dir = test::temp_dir("dist_single");
  Distributed d(options(0, 1, dir));
  EXPECT_EQ(d.rank(), 0);
  EXPECT_EQ(d.world_size(), 1);
  auto t = torch::arange(4).to(torch::kFloat);
  d.all_reduce_sum({t});
  EXPECT_TRUE(torch::equal(t, torch::arange(4).to(torch::kFloat)));
  EXPECT_DOUBLE_EQ(d.all_reduce_sum(2.5), 2.5);
  d.barrier();
}

TEST(Distributed, AllReduceBroadcastBarrier) {
  if (!distributed_available()) GTEST_SKIP() << "built without c10d Gloo";
  const std::string dir = test::temp_dir("dist_collectives");
  std::vector<std::vector<torch::Tensor>> got(2);
  std::vector<double> sums(2);
  auto errors = run_ranks(2, [&](int rank) {
    Distributed d(options(rank, 2, dir));
    if (d.rank() != rank || d.world_size() != 2) throw Error("rank/world");
    const double k = rank + 1;
    auto a = torch::full({3, 4}, k);
    auto b = torch::arange(5, torch::kDouble) * k;          // other dtype: its own bucket
    auto c = (torch::arange(6, torch::kFloat) * k).view({2, 3}).t();  // not contiguous
    torch::Tensor undefined;
    auto i = torch::full({2}, int64_t(10 * k), torch::kLong);
    d.all_reduce_sum({a, undefined, b, c, i});
    sums[rank] = d.all_reduce_sum(0.25 + rank);
    auto x = torch::full({4}, 10.0 * rank + 1);
    auto y = torch::arange(3, torch::kFloat) + 100 * rank;
    d.broadcast({x, y}, 1);
    d.barrier();
    got[rank] = {a, b, c, i, x, y};
  });
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(errors[r], "") << "rank " << r;
    const auto& g = got[r];
    EXPECT_TRUE(torch::equal(g[0], torch::full({3, 4}, 3.0)));
    EXPECT_TRUE(torch::equal(g[1], torch::arange(5, torch::kDouble) * 3));
    EXPECT_TRUE(torch::equal(g[2], (torch::arange(6, torch::kFloat) * 3).view({2, 3}).t()));
    EXPECT_TRUE(torch::equal(g[3], torch::full({2}, int64_t(30), torch::kLong)));
    EXPECT_DOUBLE_EQ(sums[r], 1.5);
    EXPECT_TRUE(torch::equal(g[4], torch::full({4}, 11.0)));
    EXPECT_TRUE(torch::equal(g[5], torch::arange(3, torch::kFloat) + 100));
  }
}

TEST(Distributed, GatheredContrastiveGradientsSumToSingleProcess) {
  if (!distributed_available()) GTEST_SKIP() << "built without c10d Gloo";
  const int world = 2;
  const int64_t per_rank = 3, n = world * per_rank;
  torch::manual_seed(3);
  auto xa = torch::randn({n, 6}), xt = torch::randn({n, 5});

  // Single process on the concatenated batch.
  Towers ref(11);
  auto a_all = l2norm(ref.audio->forward(xa)), t_all = l2norm(ref.text->forward(xt));
  auto loss = contrastive_rows(a_all, t_all, ref.log_scale, 0, n);
  loss.backward();
  std::vector<torch::Tensor> ref_grads;
  for (const auto& p : ref.params()) ref_grads.push_back(p.grad().clone());

  const std::string dir = test::temp_dir("dist_gather");
  std::vector<std::vector<torch::Tensor>> grads(world), local_grads(world), gathered(world);
  std::vector<double> losses(world);
  // Each rank builds its towers from its own seed; broadcasting rank 0's parameters must make them equal.
  std::vector<Towers> towers;
  for (int r = 0; r < world; ++r) towers.emplace_back(r == 0 ? 11 : 99);
  auto errors = run_ranks(world, [&](int rank) {
    Distributed d(options(rank, world, dir));
    Towers& m = towers[rank];
    {
      torch::NoGradGuard ng;
      d.broadcast(m.params(), 0);
    }
    auto xa_r = xa.narrow(0, rank * per_rank, per_rank), xt_r = xt.narrow(0, rank * per_rank, per_rank);
    auto a = d.all_gather_with_grad(l2norm(m.audio->forward(xa_r)));
    auto t = d.all_gather_with_grad(l2norm(m.text->forward(xt_r)));
    gathered[rank] = {a.detach().clone(), t.detach().clone()};
    auto l = contrastive_rows(a, t, m.log_scale, rank * per_rank, per_rank);
    l.backward();
    for (const auto& p : m.params()) local_grads[rank].push_back(p.grad().clone());
    // A parameter with no gradient on one rank only: all_reduce_gradients zero-fills it on that rank.
    auto extra = torch::full({3}, 1.0 + rank).set_requires_grad(true);
    if (rank == 0) extra.mutable_grad() = torch::full({3}, 5.0);
    auto params = m.params();
    params.push_back(extra);
    d.all_reduce_gradients(params);
    std::vector<torch::Tensor> g;
    for (const auto& p : params) g.push_back(p.grad());
    grads[rank] = g;
    losses[rank] = d.all_reduce_sum(l.item<double>());
  });
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  for (int r = 0; r < world; ++r) {
    EXPECT_TRUE(torch::allclose(gathered[r][0], a_all.detach(), 1e-6, 1e-6)) << "rank " << r;
    EXPECT_TRUE(torch::allclose(gathered[r][1], t_all.detach(), 1e-6, 1e-6)) << "rank " << r;
    EXPECT_NEAR(losses[r], loss.item<double>(), 1e-5);
    ASSERT_EQ(grads[r].size(), ref_grads.size() + 1);
    EXPECT_TRUE(torch::equal(grads[r].back(), torch::full({3}, 5.0))) << "rank " << r;
    for (size_t i = 0; i < ref_grads.size(); ++i) {
      const double diff = (grads[r][i] - ref_grads[i]).abs().max().item<double>();
      EXPECT_LT(diff, 1e-5) << "rank " << r << " parameter " << i;
      EXPECT_GT(ref_grads[i].abs().max().item<double>(), 1e-4) << "parameter " << i;  // not trivially zero
    }
  }
  // Each rank alone holds only part of the gradient (the sum is what matches).
  double partial = 0;
  for (size_t i = 0; i < ref_grads.size(); ++i)
    partial = std::max(partial, (local_grads[0][i] - ref_grads[i]).abs().max().item<double>());
  EXPECT_GT(partial, 1e-4);
}

namespace {
// Runs fn with this process's stdout and stderr sent to files; returns their contents.
std::pair<std::string, std::string> capture(const std::string& dir, const std::function<void()>& fn) {
  const std::string out = dir + "/stdout.txt", err = dir + "/stderr.txt";
  std::fflush(stdout);
  std::fflush(stderr);
  const int saved_out = dup(1), saved_err = dup(2);
  const int fo = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int fe = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dup2(fo, 1);
  dup2(fe, 2);
  close(fo);
  close(fe);
  try {
    fn();
  } catch (...) {
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    throw;
  }
  std::fflush(stdout);
  std::fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  auto slurp = [](const std::string& p) {
    std::ifstream f(p);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  };
  return {slurp(out), slurp(err)};
}
}  // namespace

TEST(Distributed, LaunchLocalWorkersPrefixesAndReportsFailure) {
  const std::string dir = test::temp_dir("dist_launch");
  const std::string store = dir + "/store";
  // sh -c SCRIPT sh --rank I --world-size N --dist-init file://STORE  ->  $2 = I, $4 = N, $6 = init
  int rc = -1;
  auto [out, err] = capture(dir, [&] {
    rc = launch_local_workers(
        {"/bin/sh", "-c", "echo \"out $2 of $4 $6\"; printf 'partial'; echo \"err $2\" >&2", "sh"}, 3, store);
  });
  EXPECT_EQ(rc, 0);
  EXPECT_NE(out.find("out 0 of 3 file://" + store + "\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("[rank 0]"), std::string::npos) << out;
  EXPECT_NE(out.find("[rank 1] out 1 of 3 file://" + store + "\n"), std::string::npos) << out;
  EXPECT_NE(out.find("[rank 2] out 2 of 3"), std::string::npos) << out;
  EXPECT_NE(out.find("[rank 2] partial\n"), std::string::npos) << out;  // an unterminated last line
  EXPECT_NE(err.find("[rank 1] err 1\n"), std::string::npos) << err;
  EXPECT_NE(err.find("err 0\n"), std::string::npos) << err;
  EXPECT_EQ(err.find("out"), std::string::npos) << err;

  // Rank 1 fails with 3: the launcher returns 3 and terminates rank 0 (which would otherwise sleep on).
  auto res = capture(dir, [&] {
    rc = launch_local_workers({"/bin/sh", "-c", "if [ $2 = 0 ]; then exec sleep 60; else exit 3; fi", "sh"}, 2,
                              store);
  });
  EXPECT_EQ(rc, 3) << res.second;
  // A program that cannot be started exits 127.
  res = capture(dir, [&] { rc = launch_local_workers({"/nonexistent/synclap"}, 2, store); });
  EXPECT_EQ(rc, 127);
  EXPECT_NE(res.second.find("cannot run /nonexistent/synclap"), std::string::npos) << res.second;
  EXPECT_THROW(launch_local_workers({}, 2, store), Error);
}
