// bench_search: the vector index at scale. N random unit vectors (Gaussian, normalised; seeded),
// random unit queries; build time of the index, then for each search breadth (IVF nprobe, HNSW
// efSearch; once for exact Flat): p50 / p99 single-query latency and recall@10 against exact search
// (ground truth by faiss's blocked exact inner-product search over the same vectors). Latency is given
// as wall time and as the querying thread's CPU time (on a busy machine the wall time includes waiting
// for a core).
//
//   bench_search                 1,000,000 x 512 (needs ~2.5 GB RAM and minutes of CPU)
//   bench_search --quick         100,000 x 512
//   bench_search --clustered     vectors (and queries) from a mixture of 1000 Gaussian clusters around
//                                random unit centres (noise 0.8 x the centre norm): closer to real
//                                embeddings than uniform random vectors, which have no neighbourhood
//                                structure at all (the hardest case for any approximate index)
//   options: --n N --dim D --queries Q --kind auto|Flat|HNSW32|IVF4096,Flat|... --seed S
//            --ef 64,128,256 (HNSW)  --nprobe 0,16,64,256 (IVF; 0 = the automatic choice)
//            --first R (rows of the first add, on which an explicit IVF/PQ kind is trained; default
//            max(50 000, 64 x nlist); "auto" grows from exact search through its retrained IVF sizes)
//            --threads T (OpenMP threads for building; queries run one at a time) --json FILE
#include <faiss/utils/distances.h>
#include <faiss/utils/Heap.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "search/vector_index.h"
#include "synclap/util.h"

using namespace synclap;
using namespace synclap::search;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
// CPU time of this thread: on a busy shared machine a query's wall time includes waiting for a core.
double thread_cpu() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

std::vector<float> g_centres;  // clustered mode: [centres x dim]
int g_num_centres = 0;

// Chunk c of the data set: rows [c * chunk, ...), generated from its own seed so it can be regenerated.
void make_chunk(std::vector<float>& out, int64_t rows, int dim, uint64_t seed) {
  out.resize(size_t(rows) * size_t(dim));
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g;
  for (auto& x : out) x = g(rng);
  if (g_num_centres > 0) {
    const float noise = 0.8f / std::sqrt(float(dim));
    for (int64_t i = 0; i < rows; ++i) {
      const float* c = g_centres.data() + size_t(rng() % uint64_t(g_num_centres)) * size_t(dim);
      float* x = out.data() + size_t(i) * size_t(dim);
      for (int j = 0; j < dim; ++j) x[j] = c[j] + noise * x[j];
    }
  }
  for (int64_t i = 0; i < rows; ++i) normalize(out.data() + size_t(i) * size_t(dim), dim);
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5));
  return v[i];
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    out.push_back(std::atoi(s.substr(start, end - start).c_str()));
    start = end + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 1000000;
  int dim = 512, nq = 1000, k = 10, threads = 0;
  uint64_t seed = 1234;
  std::string kind = "auto", efs = "32,64,128,256,512", nprobes = "0,8,16,32,64,128,256", json_path;
  int64_t first = 0;
  bool clustered = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value for %s\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--quick") n = 100000, nq = 500;
    else if (a == "--clustered") clustered = true;
    else if (a == "--n") n = std::atoll(next().c_str());
    else if (a == "--dim") dim = std::atoi(next().c_str());
    else if (a == "--queries") nq = std::atoi(next().c_str());
    else if (a == "--kind") kind = next();
    else if (a == "--ef") efs = next();
    else if (a == "--nprobe") nprobes = next();
    else if (a == "--first") first = std::atoll(next().c_str());
    else if (a == "--seed") seed = std::strtoull(next().c_str(), nullptr, 10);
    else if (a == "--threads") threads = std::atoi(next().c_str());
    else if (a == "--json") json_path = next();
    else {
      std::fprintf(stderr, "unknown option %s (see the comment at the top of bench/bench_search.cpp)\n", a.c_str());
      return 2;
    }
  }
  if (threads > 0) omp_set_num_threads(threads);
  const int64_t chunk = 50000;
  if (clustered) {
    g_num_centres = 0;
    make_chunk(g_centres, 1000, dim, seed * 31 + 7);  // unit centres
    g_num_centres = 1000;
  }
  std::printf("bench_search: %lld x %d %s unit vectors, %d queries, kind %s, %d OpenMP threads\n", (long long)n, dim,
              clustered ? "clustered (1000 centres)" : "uniform random", nq, kind.c_str(), omp_get_max_threads());
  std::fflush(stdout);

  std::vector<float> queries;
  make_chunk(queries, nq, dim, seed ^ 0x9e3779b97f4a7c15ULL);

  // Build (data generated chunk by chunk; generation time not counted).
  VectorIndex index(dim, kind);
  std::vector<float> buf;
  std::vector<int64_t> ids;
  double build_s = 0;
  // Exact top-k of every query over all chunks (ground truth), merged chunk by chunk.
  std::vector<float> gt_d(size_t(nq) * k, -1e30f);
  std::vector<int64_t> gt_i(size_t(nq) * k, -1);
  double exact_s = 0;
  if (first <= 0) {
    first = chunk;
    const size_t ivf = kind.rfind("IVF", 0) == 0 ? 3 : std::string::npos;
    if (ivf != std::string::npos) first = std::max<int64_t>(chunk, 64 * std::atoll(kind.c_str() + 3));
  }
  first = (first + chunk - 1) / chunk * chunk;
  for (int64_t start = 0; start < n;) {
    const int64_t rows = std::min(start == 0 ? first : chunk, n - start);
    // The same vectors whatever --first is: generated in blocks of `chunk` rows, each from its own seed.
    buf.resize(size_t(rows) * size_t(dim));
    for (int64_t b = 0; b < rows; b += chunk) {
      std::vector<float> block;
      make_chunk(block, std::min(chunk, rows - b), dim, seed + uint64_t(start + b));
      std::copy(block.begin(), block.end(), buf.begin() + b * dim);
    }
    ids.resize(size_t(rows));
    for (int64_t i = 0; i < rows; ++i) ids[size_t(i)] = start + i;
    double t0 = now();
    index.add(buf.data(), rows, ids.data());
    build_s += now() - t0;
    t0 = now();
    std::vector<float> d(size_t(nq) * k);
    std::vector<int64_t> l(size_t(nq) * k);
    faiss::float_minheap_array_t res = {size_t(nq), size_t(k), l.data(), d.data()};
    faiss::knn_inner_product(queries.data(), buf.data(), size_t(dim), size_t(nq), size_t(rows), &res);
    for (int q = 0; q < nq; ++q) {
      std::vector<std::pair<float, int64_t>> m;
      for (int j = 0; j < k; ++j) {
        m.push_back({gt_d[size_t(q) * k + j], gt_i[size_t(q) * k + j]});
        if (l[size_t(q) * k + j] >= 0) m.push_back({d[size_t(q) * k + j], l[size_t(q) * k + j] + start});
      }
      std::sort(m.begin(), m.end(), [](auto& a, auto& b) { return a.first > b.first; });
      for (int j = 0; j < k; ++j) {
        gt_d[size_t(q) * k + j] = m[size_t(j)].first;
        gt_i[size_t(q) * k + j] = m[size_t(j)].second;
      }
    }
    exact_s += now() - t0;
    std::fprintf(stderr, "\r  built %lld / %lld (%.0f s)", (long long)(start + rows), (long long)n, build_s);
    start += rows;
  }
  std::fprintf(stderr, "\n");
  std::printf("index: %s, build %.1f s (%.0f vectors/s), peak RSS %.2f GB; exact ground truth %.1f s (%.1f ms/query, batched)\n",
              index.structure().c_str(), build_s, double(n) / build_s, double(peak_rss_bytes()) / 1e9, exact_s,
              1000 * exact_s / nq);

  nlohmann::json out = {{"n", n},           {"dim", dim},           {"queries", nq},
                        {"k", k},           {"kind", kind},         {"clustered", clustered},         {"structure", index.structure()},
                        {"build_s", build_s}, {"threads", omp_get_max_threads()}, {"runs", nlohmann::json::array()}};
  const bool ivf = index.structure().rfind("IVF", 0) == 0;
  std::printf("%8s  %10s  %10s  %10s  %10s  %10s\n", ivf ? "nprobe" : "efSearch", "p50 ms", "p99 ms", "recall@10",
              "cpu p50", "cpu p99");
  for (int ef : parse_list(ivf ? nprobes : efs)) {
    VectorSearchOptions o;
    if (ivf)
      o.nprobe = ef;
    else
      o.ef_search = ef;
    std::vector<double> lat, cpu;
    int64_t found = 0;
    for (int q = 0; q < nq; ++q) {
      const double t0 = now(), c0 = thread_cpu();
      auto hits = index.search(queries.data() + size_t(q) * dim, k, nullptr, o);
      cpu.push_back(1000 * (thread_cpu() - c0));
      lat.push_back(1000 * (now() - t0));
      for (const auto& h : hits)
        for (int j = 0; j < k; ++j) found += h.id == gt_i[size_t(q) * k + j];
    }
    const double recall = double(found) / double(nq * k);
    const double p50 = percentile(lat, 0.5), p99 = percentile(lat, 0.99);
    std::string label = std::to_string(ef);
    if (ivf && ef == 0)
      label = "auto " + std::to_string(VectorIndex::auto_nprobe(std::atoi(index.structure().c_str() + 3)));
    const double cpu50 = percentile(cpu, 0.5), cpu99 = percentile(cpu, 0.99);
    std::printf("%8s  %10.3f  %10.3f  %10.4f  %10.3f  %10.3f\n", label.c_str(), p50, p99, recall, cpu50, cpu99);
    std::fflush(stdout);
    out["runs"].push_back({{ivf ? "nprobe" : "ef_search", ef}, {"p50_ms", p50}, {"p99_ms", p99}, {"recall_at_10", recall},
                          {"cpu_p50_ms", cpu50}, {"cpu_p99_ms", cpu99}});
    if (index.structure() == "Flat") break;  // exact: efSearch does not apply
  }
  out["peak_rss_bytes"] = peak_rss_bytes();
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
