// A minimal parallel loop: dynamic scheduling over an atomic counter.
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#include "synclap/util.h"

namespace synclap {

int default_threads() {
  if (const char* v = std::getenv("SYNCLAP_THREADS")) {
    const int n = std::atoi(v);
    if (n > 0) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw ? int(hw) : 1;
}

void parallel_for(int64_t n, const std::function<void(int64_t)>& fn, int threads) {
  if (n <= 0) return;
  if (threads <= 0) threads = default_threads();
  if (threads > n) threads = int(n);
  if (threads <= 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr first;
  std::mutex mu;
  auto work = [&]() {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= n || failed.load()) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!first) first = std::current_exception();
        failed = true;
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& th : pool) th.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace synclap
