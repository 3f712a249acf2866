// descramble_raw: the closed-form descrambler of a linear layer, from C++
// only (no Python): streams a raw float32 data file through the core's file
// reader into an Autocorrelation, reads the layer's weights, and descrambles
// the layer with Fourier smoothness (docs/math.md §3, §4).
//
//   descramble_raw DATA.f32 N_FEATURES WEIGHTS M [--order P]
//   descramble_raw --demo
//
// DATA.f32: raw float32, row-major, N x N_FEATURES (N from the file size).
// WEIGHTS:  raw float64 or float32 (told apart by the file size), row-major,
//           M x N_FEATURES.
// --demo writes random data and weights to temporary files, runs on them and
// exits 0 only if the loss equals the bound to 1e-9 (relative).
// Exit codes: 0 success, 1 failure, 2 bad arguments or input files.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <descramble/autocorrelation.hpp>
#include <descramble/descrambler.hpp>
#include <descramble/file_stream.hpp>

namespace fs = std::filesystem;
using descramble::Index;

namespace {

constexpr const char* kUsage =
    "usage: descramble_raw DATA.f32 N_FEATURES WEIGHTS M [--order P]\n"
    "       descramble_raw --demo\n"
    "\n"
    "  DATA.f32    raw float32 samples, row-major, N x N_FEATURES\n"
    "  N_FEATURES  number of inputs n of the layer\n"
    "  WEIGHTS     raw float64 or float32 weights, row-major, M x N_FEATURES\n"
    "  M           number of hidden units of the layer\n"
    "  --order P   derivative order of the Fourier smoothness (default 2)\n"
    "  --demo      run on random data written to temporary files; exit 0 only\n"
    "              if loss == bound to 1e-9 (relative)\n";

struct UsageError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

Index positive(const std::string& text, const char* name) {
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < 1) {
    throw UsageError(std::string(name) + ": expected a positive integer, got '" + text + "'");
  }
  return static_cast<Index>(value);
}

std::uintmax_t file_size(const std::string& path, const char* what) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) throw std::invalid_argument(std::string(what) + ": cannot read '" + path + "': " + ec.message());
  return size;
}

// m x n weights, row-major on disk, float64 or float32 by the file size.
Eigen::MatrixXd read_weights(const std::string& path, Index m, Index n) {
  const auto size = file_size(path, "WEIGHTS");
  const auto count = static_cast<std::uintmax_t>(m) * static_cast<std::uintmax_t>(n);
  std::ifstream in(path, std::ios::binary);
  Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> w(m, n);
  if (size == count * sizeof(double)) {
    in.read(reinterpret_cast<char*>(w.data()), static_cast<std::streamsize>(count * sizeof(double)));
  } else if (size == count * sizeof(float)) {
    std::vector<float> buffer(count);
    in.read(reinterpret_cast<char*>(buffer.data()), static_cast<std::streamsize>(count * sizeof(float)));
    for (std::size_t i = 0; i < buffer.size(); ++i) w.data()[i] = buffer[i];
  } else {
    throw std::invalid_argument("WEIGHTS: '" + path + "' has " + std::to_string(size) + " bytes; expected " +
                                std::to_string(m) + " x " + std::to_string(n) + " float64 (" +
                                std::to_string(count * 8) + " bytes) or float32 (" + std::to_string(count * 4) +
                                " bytes)");
  }
  if (!in) throw std::runtime_error("WEIGHTS: reading '" + path + "' failed");
  return w;
}

struct Result {
  Index n = 0;
  Index rows = 0;
  descramble::ClosedForm form;
};

Result run(const std::string& data, Index n, const std::string& weights, Index m, int order) {
  const auto size = file_size(data, "DATA");
  const auto row_bytes = static_cast<std::uintmax_t>(n) * sizeof(float);
  if (size == 0 || size % row_bytes != 0) {
    throw std::invalid_argument("DATA: '" + data + "' has " + std::to_string(size) +
                                " bytes, not a positive multiple of N_FEATURES x 4 = " + std::to_string(row_bytes));
  }
  const Eigen::MatrixXd W = read_weights(weights, m, n);

  descramble::FileLayout layout;
  layout.path = data;
  layout.type = descramble::ScalarType::float32;
  layout.rows = static_cast<Index>(size / row_bytes);
  layout.cols = n;
  descramble::check_file(layout);
  descramble::Autocorrelation acc(n);
  Result r;
  r.n = n;
  r.rows = descramble::stream_file(acc, layout);
  r.form = descramble::descramble_layer(W, acc, descramble::fourier_smoothness(m, order));
  return r;
}

void print(const Result& r, Index m, int order) {
  const auto& f = r.form;
  std::printf("n = %lld features, N = %lld samples, m = %lld hidden units, fourier(order=%d)\n",
              static_cast<long long>(r.n), static_cast<long long>(r.rows), static_cast<long long>(m), order);
  std::printf("loss  = %.12g\n", f.loss);
  std::printf("bound = %.12g\n", f.bound);
  std::printf("|loss - bound| / |bound| = %.3g\n", std::abs(f.loss - f.bound) / std::max(std::abs(f.bound), 1e-300));
  std::printf("degenerate groups: %zu\n", f.degenerate.size());
}

template <class T>
void write_raw(const fs::path& path, const std::vector<T>& values) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(values.size() * sizeof(T)));
  if (!out) throw std::runtime_error("cannot write '" + path.string() + "'");
}

int demo() {
  const Index n = 16, m = 8, rows = 20000;
  const int order = 2;
  std::mt19937_64 rng(20210129);
  std::normal_distribution<double> normal;
  // Correlated inputs x = z B (z standard normal) and random weights.
  std::vector<double> mix(static_cast<std::size_t>(n * n));
  for (auto& v : mix) v = normal(rng);
  std::vector<float> data(static_cast<std::size_t>(rows * n));
  std::vector<double> z(static_cast<std::size_t>(n));
  for (Index i = 0; i < rows; ++i) {
    for (auto& v : z) v = normal(rng);
    for (Index j = 0; j < n; ++j) {
      double x = 0.0;
      for (Index k = 0; k < n; ++k) x += z[std::size_t(k)] * mix[std::size_t(k * n + j)];
      data[std::size_t(i * n + j)] = static_cast<float>(x);
    }
  }
  std::vector<float> weights(static_cast<std::size_t>(m * n));
  for (auto& v : weights) v = static_cast<float>(normal(rng));

  const fs::path dir = fs::temp_directory_path();
  const std::string tag = "descramble_demo_" + std::to_string(std::random_device{}());
  const fs::path data_path = dir / (tag + "_data.f32");
  const fs::path weights_path = dir / (tag + "_weights.f32");
  struct Cleanup {
    fs::path a, b;
    ~Cleanup() {
      std::error_code ec;
      fs::remove(a, ec);
      fs::remove(b, ec);
    }
  } cleanup{data_path, weights_path};
  write_raw(data_path, data);
  write_raw(weights_path, weights);
  std::printf("demo: %s (%lld x %lld float32), %s (%lld x %lld float32)\n", data_path.string().c_str(),
              static_cast<long long>(rows), static_cast<long long>(n), weights_path.string().c_str(),
              static_cast<long long>(m), static_cast<long long>(n));

  const Result r = run(data_path.string(), n, weights_path.string(), m, order);
  print(r, m, order);
  const bool ok = r.rows == rows && std::abs(r.form.loss - r.form.bound) <= 1e-9 * std::abs(r.form.bound);
  std::printf("%s\n", ok ? "OK: loss == bound" : "FAILED: loss != bound");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 1 && (args[0] == "-h" || args[0] == "--help")) {
      std::cout << kUsage;
      return 0;
    }
    if (args.size() == 1 && args[0] == "--demo") return demo();
    std::vector<std::string> positional;
    int order = 2;
    for (std::size_t i = 0; i < args.size(); ++i) {
      if (args[i] == "--order") {
        if (i + 1 == args.size()) throw UsageError("--order: expected a value");
        const Index p = positive(args[++i], "--order");
        if (p > std::numeric_limits<int>::max()) {  // was truncated to int (4294967298 ran order 2)
          throw UsageError("--order: expected at most " + std::to_string(std::numeric_limits<int>::max()) + ", got " +
                           args[i]);
        }
        order = static_cast<int>(p);
      } else if (args[i].rfind("--", 0) == 0) {
        throw UsageError("unknown option '" + args[i] + "'");
      } else {
        positional.push_back(args[i]);
      }
    }
    if (positional.size() != 4) {
      throw UsageError("expected 4 arguments (DATA.f32 N_FEATURES WEIGHTS M), got " +
                       std::to_string(positional.size()));
    }
    const Index n = positive(positional[1], "N_FEATURES");
    const Index m = positive(positional[3], "M");
    const Result r = run(positional[0], n, positional[2], m, order);
    print(r, m, order);
    return 0;
  } catch (const UsageError& e) {
    std::cerr << "descramble_raw: " << e.what() << "\n\n" << kUsage;
    return 2;
  } catch (const std::invalid_argument& e) {
    std::cerr << "descramble_raw: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "descramble_raw: error: " << e.what() << "\n";
    return 1;
  }
}
