// Times the core kernels without Python: Autocorrelation::update on in-memory
// data, float64 and float32 (float64 and mixed precision), C and Fortran order.
// Usage: descramble_bench [rows] [repeats] [threads (0: all)] [block_rows (0: auto)] [n ...]
//        descramble_bench roofline [repeats] [n ...]   (the roofline table of docs/benchmarks.md:
//        GFLOP/s = N n^2 / t, the fraction of min(peak, bandwidth x n / bytes per value), with
//        peak = the BLAS product (DESCRAMBLE_PRODUCT_KERNEL=blas) on 50,000 x 2048 and bandwidth =
//        a two-thread streaming sum over 200 MB, measured in the same run; "x blas" is the same
//        product with the narrow kernel switched off)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
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

// Best-of-`repeats` seconds of f(), after a warm-up call.
template <class F>
double best_seconds(F&& f, int repeats) {
  f();
  double best = 1e300;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// Best-of-`repeats` seconds of Autocorrelation::update over `data` (rows x n).
template <class T>
double update_seconds(const std::vector<T>& data, Index rows, Index n, Precision precision, int repeats) {
  const ChunkView view = ChunkView::row_major(data.data(), rows, n);
  ReduceOptions options;
  options.precision = precision;
  return best_seconds(
      [&] {
        Autocorrelation acc(n, options);
        acc.update(view);
      },
      repeats);
}

template <class T>
std::vector<T> normal_data(Index count) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal;
  std::vector<T> data(static_cast<std::size_t>(count));
  for (auto& v : data) v = static_cast<T>(1.0 + normal(rng));
  return data;
}

int roofline(int repeats, std::vector<Index> widths) {
  if (widths.empty()) widths = {16, 32, 64, 128, 256, 512, 1024};
  setenv("DESCRAMBLE_PRODUCT_KERNEL", "blas", 1);
  double peak = 0.0;
  {
    const Index rows = 50000, n = 2048;
    const auto big = normal_data<double>(rows * n);
    peak = static_cast<double>(rows) * n * n / update_seconds(big, rows, n, Precision::float64, repeats) * 1e-9;
  }
  double bandwidth = 0.0;
  {
    const auto flat = normal_data<double>(25000000);  // 200 MB
    double partial[2] = {0.0, 0.0};
    auto sum = [&](int t) {
      const std::size_t half = flat.size() / 2;
      double s = 0.0;
      for (std::size_t i = t * half; i < (t + 1) * half; ++i) s += flat[i];
      partial[t] = s;
    };
    const double best = best_seconds(
        [&] {
          std::thread other(sum, 1);
          sum(0);
          other.join();
        },
        std::max(repeats, 3));
    if (partial[0] + partial[1] == 0.123) std::printf(" ");  // keeps the sums
    bandwidth = 2e8 / best * 1e-9;
  }
  unsetenv("DESCRAMBLE_PRODUCT_KERNEL");
  std::printf("backend: %s\npeak %.1f GFLOP/s (BLAS product, 50,000 x 2048), bandwidth %.1f GB/s (200 MB sum)\n",
              descramble::product_backend(), peak, bandwidth);
  std::printf("%6s %8s %9s %8s %9s %8s %8s %7s\n", "n", "rows", "precision", "GFLOP/s", "roofline", "of roof",
              "x blas", "x f64");
  for (Index n : widths) {
    const Index rows = n < 512 ? 200000 : 100000;
    const auto x64 = normal_data<double>(rows * n);
    std::vector<float> x32(x64.begin(), x64.end());
    const double flops = static_cast<double>(rows) * n * n;
    double t[2][2];  // [blas, auto][float64, mixed], alternating
    for (auto& row : t) row[0] = row[1] = 1e300;
    for (int r = 0; r < repeats; ++r) {
      for (int k = 0; k < 2; ++k) {
        if (k == 0) setenv("DESCRAMBLE_PRODUCT_KERNEL", "blas", 1);
        else unsetenv("DESCRAMBLE_PRODUCT_KERNEL");
        t[k][0] = std::min(t[k][0], update_seconds(x64, rows, n, Precision::float64, 1));
        t[k][1] = std::min(t[k][1], update_seconds(x32, rows, n, Precision::mixed, 1));
      }
    }
    unsetenv("DESCRAMBLE_PRODUCT_KERNEL");
    for (int p = 0; p < 2; ++p) {
      const double rate = flops / t[1][p] * 1e-9;
      const double limit = std::min(p == 0 ? peak : 2 * peak, bandwidth * static_cast<double>(n) / (p == 0 ? 8 : 4));
      std::printf("%6ld %8ld %9s %8.1f %9.1f %7.0f%% %7.2fx %6.2fx\n", static_cast<long>(n), static_cast<long>(rows),
                  p == 0 ? "float64" : "mixed", rate, limit, 100 * rate / limit, t[0][p] / t[1][p], t[1][0] / t[1][p]);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  if (argc > 1 && std::string(argv[1]) == "roofline") {
    std::vector<Index> widths;
    for (int i = 3; i < argc; ++i) widths.push_back(std::atol(argv[i]));
    return roofline(argc > 2 ? std::atoi(argv[2]) : 3, widths);
  }
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
