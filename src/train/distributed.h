// synclap: data-parallel training across processes with torch's c10d (ProcessGroupGloo on CPU; NCCL
// when built with CUDA and running on GPUs).
//
// Rendezvous: "file:///shared/path" (c10d FileStore; also works across machines on a shared file system)
// or "tcp://HOST:PORT" (c10d TCPStore; rank 0 listens). Every rank must pass the same init and world size.
//
// Gradients: the trainer's loss on each rank covers only that rank's rows of the global similarity matrix,
// and the embeddings are gathered *with* gradient (backward = sum over ranks of the gathered gradient,
// sliced), so the per-rank gradients SUM to the gradient of the single-process loss on the global batch:
// all_reduce_sum() of the gradients, with no division, reproduces one process exactly.
// Internal header (LibTorch types).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace synclap {

struct DistOptions {
  int rank = 0;
  int world_size = 1;
  std::string init;          // "file://PATH" or "tcp://HOST:PORT"
  std::string backend = "auto";  // auto | gloo | nccl
  double timeout_s = 600;
};

// True when this build has c10d Gloo (SYNCLAP_HAVE_GLOO).
bool distributed_available();

class Distributed {
 public:
  // Joins the group (blocks until every rank has joined or the timeout passes). Throws Error when the
  // build has no c10d backend or the rendezvous fails (naming the init address).
  explicit Distributed(const DistOptions& options);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const;
  int world_size() const;

  // In-place sum over ranks (e.g. every parameter's gradient; undefined tensors are skipped, the defined
  // ones flattened into a few large buffers).
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors);
  double all_reduce_sum(double value);
  // Sums the gradients of `params` over ranks (no division). A parameter that requires grad but got no
  // gradient on this rank (e.g. a branch this rank's batch never used) gets a zero gradient first, so every
  // rank reduces the same buffers. Parameters that do not require grad are skipped.
  void all_reduce_gradients(const std::vector<torch::Tensor>& params);
  // [world_size * B, ...] = the ranks' `local` tensors concatenated in rank order. Differentiable:
  // the backward pass sums the incoming gradient over ranks and returns this rank's slice. Every rank
  // must pass the same shape.
  torch::Tensor all_gather_with_grad(const torch::Tensor& local);
  // Copies rank `root`'s values into every rank's tensors (in place).
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  void barrier();

  struct Impl;  // opaque (public only so that the autograd function in the .cpp can reach it)

 private:
  std::unique_ptr<Impl> impl_;
};

// Runs `argv` (a synclap command line) as `nproc` local worker processes, appending
// "--rank I --world-size N --dist-init file://<store>" to each; forwards SIGINT/SIGTERM to them; waits and
// returns the first non-zero exit status (0 when all succeed). Output of rank > 0 is prefixed "[rank I] ".
// Details: argv[0] is the program (execv when it contains '/', else searched in PATH; "/proc/self/exe"
// re-runs the current binary). Rank 0 inherits stdout/stderr; ranks > 0 write into pipes that a reader
// thread copies line by line, prefixed, to this process's stdout/stderr respectively. `store_path` is
// removed before the start (a stale FileStore breaks the rendezvous) and after the end. Workers run in their
// own process groups (a terminal's Ctrl-C reaches only the launcher, which forwards it once) and get SIGTERM
// if the launching thread dies (PR_SET_PDEATHSIG: call this from the main thread). The first worker that
// fails makes the launcher SIGTERM the others (they would otherwise block in collectives until the timeout).
// The status of a worker killed by a signal is 128 + signal; one that cannot be executed exits 127.
// Throws Error for an empty argv, nproc < 1, or when fork/pipe fails.
int launch_local_workers(const std::vector<std::string>& argv, int nproc, const std::string& store_path);

}  // namespace synclap
