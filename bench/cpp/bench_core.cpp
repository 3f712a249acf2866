// Times the core kernels without Python: Autocorrelation::update on in-memory
// data, float64 and float32 (float64 and mixed precision), C and Fortran order.
// Usage: descramble_bench [rows] [repeats] [threads (0: all)] [block_rows (0: auto)] [n ...]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "descramble/autocorrelation.hpp"

using descramble::Autocorrelation;
using descramble::ChunkView;
using descramble::Index;
using descramble::Precision;
using descramble::ReduceOptions;

namespace {

template <class F>
double median_seconds(F&& f, int repeats) {
  std::vector<double> times;
  f();  // warm-up
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
  return times[static_cast<std::size_t>(repeats / 2)];
}

int g_threads = 0;
Index g_block_rows = 0;
descramble::Parallelism g_parallelism = descramble::Parallelism::automatic;

template <class T>
void run(const char* label, Index rows, Index n, bool fortran, Precision precision, int repeats) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal;
  std::vector<T> data(static_cast<std::size_t>(rows * n));
  for (auto& v : data) v = static_cast<T>(normal(rng));
  const ChunkView view = fortran ? ChunkView::of(data.data(), rows, n, 1, rows)
                                 : ChunkView::row_major(data.data(), rows, n);
  ReduceOptions options;
  options.precision = precision;
  options.threads = g_threads;
  options.block_rows = g_block_rows;
  options.parallelism = g_parallelism;
  const double seconds = median_seconds(
      [&] {
        Autocorrelation acc(n, options);
        acc.update(view);
      },
      repeats);
  const double flops = static_cast<double>(rows) * static_cast<double>(n) * static_cast<double>(n + 1);
  std::printf("%-28s %9ld x %-5ld %9.4f s %8.1f GFlop/s %8.2f GB/s\n", label, static_cast<long>(rows),
              static_cast<long>(n), seconds, flops / seconds * 1e-9,
              static_cast<double>(data.size() * sizeof(T)) / seconds * 1e-9);
}

}  // namespace

int main(int argc, char** argv) {
  const Index rows = argc > 1 ? std::atol(argv[1]) : 200000;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
  g_threads = argc > 3 ? std::atoi(argv[3]) : 0;
  g_block_rows = argc > 4 ? std::atol(argv[4]) : 0;
  if (const char* p = std::getenv("DESCRAMBLE_PARALLELISM")) {  // blocks | within_block
    g_parallelism = std::string(p) == "blocks" ? descramble::Parallelism::blocks
                                               : descramble::Parallelism::within_block;
  }
  std::vector<Index> widths;
  for (int i = 5; i < argc; ++i) widths.push_back(std::atol(argv[i]));
  if (widths.empty()) widths = {64, 256, 1024};
  std::printf("backend: %s\n", descramble::product_backend());
  for (Index n : widths) {
    run<double>("float64 C order", rows, n, false, Precision::float64, repeats);
    run<double>("float64 Fortran order", rows, n, true, Precision::float64, repeats);
    run<float>("float32 -> float64", rows, n, false, Precision::float64, repeats);
    run<float>("float32 mixed", rows, n, false, Precision::mixed, repeats);
  }
  return 0;
}
