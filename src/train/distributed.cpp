#include "train/distributed.h"

#include <torch/version.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <utility>

#ifdef SYNCLAP_HAVE_GLOO
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if defined(SYNCLAP_CUDA) && defined(USE_C10D_NCCL)
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define SYNCLAP_HAVE_NCCL 1
#endif
#endif

#include "synclap/error.h"

namespace synclap {

bool distributed_available() {
#ifdef SYNCLAP_HAVE_GLOO
  return true;
#else
  return false;
#endif
}

#ifdef SYNCLAP_HAVE_GLOO

namespace {
// LibTorch 2.x split the collective implementations (Backend) from the ProcessGroup front end; the
// Gloo/NCCL classes derive from whichever base this version has, and the collectives we call exist on both.
#if TORCH_VERSION_MAJOR >= 2
using PgBase = c10d::Backend;
#else
using PgBase = c10d::ProcessGroup;
#endif

// Total elements per all-reduce bucket (float32: 64 MiB).
constexpr int64_t kBucketElements = int64_t(16) << 20;

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
}  // namespace

struct Distributed::Impl {
  int rank = 0, world = 1;
  std::string init;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<PgBase> pg;
  bool nccl = false;

  template <typename W>
  void wait(const W& work, const char* what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      throw Error(std::string("distributed ") + what + " failed (rank " + std::to_string(rank) + " of " +
                  std::to_string(world) + ", " + init + "): " + e.what());
    }
  }

  void allreduce(torch::Tensor& t) {
    std::vector<at::Tensor> v{t};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    wait(pg->allreduce(v, opts), "all-reduce");
  }

  // A scalar tensor on the device the backend works on.
  torch::Device device() const {
#ifdef SYNCLAP_HAVE_NCCL
    if (nccl) return torch::Device(torch::kCUDA, c10::cuda::current_device());
#endif
    return torch::kCPU;
  }
};

Distributed::Distributed(const DistOptions& o) : impl_(std::make_unique<Impl>()) {
  if (o.world_size < 1) throw Error("distributed: world size must be at least 1");
  if (o.rank < 0 || o.rank >= o.world_size)
    throw Error("distributed: rank " + std::to_string(o.rank) + " is outside world size " +
                std::to_string(o.world_size));
  if (!(o.timeout_s > 0)) throw Error("distributed: timeout must be positive");
  auto& im = *impl_;
  im.rank = o.rank;
  im.world = o.world_size;
  im.init = o.init;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000.0));

  std::string backend = o.backend;
  if (backend == "auto") {
    backend = "gloo";
#ifdef SYNCLAP_HAVE_NCCL
    if (torch::cuda::is_available()) backend = "nccl";
#endif
  }
  if (backend == "nccl") {
#ifndef SYNCLAP_HAVE_NCCL
    throw Error("distributed: this build has no NCCL backend (needs a CUDA LibTorch with c10d NCCL); use gloo");
#endif
  } else if (backend != "gloo") {
    throw Error("distributed: unknown backend '" + o.backend + "' (expected auto, gloo or nccl)");
  }

  const std::string where = " (rank " + std::to_string(o.rank) + " of " + std::to_string(o.world_size) + ", " +
                            o.init + ")";
  try {
    if (starts_with(o.init, "file://")) {
      const std::string path = o.init.substr(7);
      if (path.empty()) throw Error("empty file path");
      im.store = c10::make_intrusive<c10d::FileStore>(path, o.world_size);
    } else if (starts_with(o.init, "tcp://")) {
      const std::string hp = o.init.substr(6);
      const auto colon = hp.rfind(':');
      if (colon == std::string::npos || colon == 0 || colon + 1 == hp.size())
        throw Error("expected tcp://HOST:PORT");
      std::string host = hp.substr(0, colon);
      if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
      char* end = nullptr;
      const long port = std::strtol(hp.c_str() + colon + 1, &end, 10);
      if (*end != '\0' || port <= 0 || port > 65535) throw Error("bad port in tcp://HOST:PORT");
      c10d::TCPStoreOptions so;
      so.port = static_cast<std::uint16_t>(port);
      so.isServer = o.rank == 0;
      so.numWorkers = static_cast<std::size_t>(o.world_size);
      so.waitWorkers = true;
      so.timeout = timeout;
      im.store = c10::make_intrusive<c10d::TCPStore>(host, so);
    } else {
      throw Error("expected file://PATH or tcp://HOST:PORT");
    }
    im.store->setTimeout(timeout);

    if (backend == "nccl") {
#ifdef SYNCLAP_HAVE_NCCL
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = timeout;
      im.pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(im.store, o.rank, o.world_size, opts);
      im.nccl = true;
#endif
    } else {
      auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname)
        opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      im.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(im.store, o.rank, o.world_size, opts);
    }
  } catch (const Error& e) {
    throw Error(std::string("distributed: cannot join the group") + where + ": " + e.what());
  } catch (const std::exception& e) {
    throw Error(std::string("distributed: cannot join the group") + where + ": " + e.what());
  }
}

Distributed::~Distributed() = default;

int Distributed::rank() const { return impl_->rank; }
int Distributed::world_size() const { return impl_->world; }

void Distributed::all_reduce_sum(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  // Group the defined tensors by (device, dtype) in first-seen order; each group is reduced in buckets of at
  // most kBucketElements (a larger single tensor is its own bucket).
  std::vector<std::vector<size_t>> groups;
  std::vector<std::pair<torch::Device, torch::ScalarType>> keys;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& t = tensors[i];
    if (!t.defined() || t.numel() == 0) continue;
    std::pair<torch::Device, torch::ScalarType> k{t.device(), t.scalar_type()};
    size_t g = 0;
    while (g < keys.size() && keys[g] != k) ++g;
    if (g == keys.size()) {
      keys.push_back(k);
      groups.emplace_back();
    }
    groups[g].push_back(i);
  }
  for (const auto& group : groups) {
    size_t begin = 0;
    while (begin < group.size()) {
      size_t end = begin;
      int64_t n = 0;
      std::vector<torch::Tensor> flat;
      while (end < group.size() && (end == begin || n + tensors[group[end]].numel() <= kBucketElements)) {
        flat.push_back(tensors[group[end]].reshape({-1}));
        n += tensors[group[end]].numel();
        ++end;
      }
      torch::Tensor buf = flat.size() == 1 ? flat[0].clone() : torch::cat(flat);
      impl_->allreduce(buf);
      int64_t off = 0;
      for (size_t j = begin; j < end; ++j) {
        auto& t = const_cast<torch::Tensor&>(tensors[group[j]]);
        const int64_t m = t.numel();
        t.copy_(buf.narrow(0, off, m).view(t.sizes()));
        off += m;
      }
      begin = end;
    }
  }
}

double Distributed::all_reduce_sum(double value) {
  torch::NoGradGuard no_grad;
  auto t = torch::full({1}, value, torch::TensorOptions().dtype(torch::kDouble).device(impl_->device()));
  impl_->allreduce(t);
  return t.to(torch::kCPU).item<double>();
}

void Distributed::all_reduce_gradients(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> grads;
  for (const auto& p0 : params) {
    if (!p0.defined() || !p0.requires_grad()) continue;
    auto& p = const_cast<torch::Tensor&>(p0);
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  all_reduce_sum(grads);
}

namespace {

// forward: all-gather along dim 0; backward: the incoming gradient summed over ranks, this rank's rows.
struct GatherWithGrad : public torch::autograd::Function<GatherWithGrad> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& local, int64_t impl_ptr) {
    auto* im = reinterpret_cast<Distributed::Impl*>(impl_ptr);
    auto in = local.contiguous();
    std::vector<std::vector<at::Tensor>> out(1);
    for (int r = 0; r < im->world; ++r) out[0].push_back(torch::empty_like(in));
    std::vector<at::Tensor> inputs{in};
    im->wait(im->pg->allgather(out, inputs), "all-gather");
    ctx->saved_data["impl"] = impl_ptr;
    ctx->saved_data["rows"] = local.size(0);
    return torch::cat(out[0], 0);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    auto* im = reinterpret_cast<Distributed::Impl*>(ctx->saved_data["impl"].toInt());
    const int64_t rows = ctx->saved_data["rows"].toInt();
    auto g = grad_outputs[0].contiguous().clone();
    im->allreduce(g);
    return {g.narrow(0, im->rank * rows, rows), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor Distributed::all_gather_with_grad(const torch::Tensor& local) {
  if (!local.defined() || local.dim() < 1) throw Error("all_gather_with_grad: needs a tensor with a batch dimension");
  if (impl_->world == 1) return local;
  return GatherWithGrad::apply(local, static_cast<int64_t>(reinterpret_cast<intptr_t>(impl_.get())));
}

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  if (root < 0 || root >= impl_->world) throw Error("distributed broadcast: bad root rank " + std::to_string(root));
  torch::NoGradGuard no_grad;
  for (const auto& t0 : tensors) {
    if (!t0.defined() || t0.numel() == 0) continue;
    auto& t = const_cast<torch::Tensor&>(t0);
    torch::Tensor buf = t.is_contiguous() ? t : t.contiguous();
    std::vector<at::Tensor> v{buf};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    impl_->wait(impl_->pg->broadcast(v, opts), "broadcast");
    if (!buf.is_same(t)) t.copy_(buf);
  }
}

void Distributed::barrier() {
  c10d::BarrierOptions opts;
  impl_->wait(impl_->pg->barrier(opts), "barrier");
}

#else  // no c10d backend in this build

struct Distributed::Impl {};

Distributed::Distributed(const DistOptions&) {
  throw Error(
      "distributed training is not available: this synclap was built without c10d Gloo "
      "(install libgloo-dev and rebuild)");
}
Distributed::~Distributed() = default;
int Distributed::rank() const { return 0; }
int Distributed::world_size() const { return 1; }
void Distributed::all_reduce_sum(const std::vector<torch::Tensor>&) {}
double Distributed::all_reduce_sum(double value) { return value; }
void Distributed::all_reduce_gradients(const std::vector<torch::Tensor>&) {}
torch::Tensor Distributed::all_gather_with_grad(const torch::Tensor& local) { return local; }
void Distributed::broadcast(const std::vector<torch::Tensor>&, int) {}
void Distributed::barrier() {}

#endif

}  // namespace synclap
