// Hostile inputs and extremes (issue 11): none may crash, wrap, race or
// silently give a wrong result.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <thread>
#include <vector>

#include "check.hpp"
#include "descramble/autocorrelation.hpp"
#include "descramble/forward.hpp"
#include "reference.hpp"

using namespace descramble;
using namespace descramble::testing;

TEST(bool_bytes_other_than_one_read_as_true) {
  // A legal NumPy bool array may hold any non-zero byte for True.
  const std::vector<std::uint8_t> bytes = {0, 2, 255, 1, 0, 7, 128, 0, 1, 0, 3, 9};
  const std::vector<std::uint8_t> ones = {0, 1, 1, 1, 0, 1, 1, 0, 1, 0, 1, 1};
  ChunkView hostile{bytes.data(), ScalarType::boolean, 6, 2, 2, 1};
  ChunkView clean{ones.data(), ScalarType::boolean, 6, 2, 2, 1};
  for (const Precision precision : {Precision::float64, Precision::mixed}) {
    ReduceOptions options;
    options.precision = precision;
    Autocorrelation a(2, options);
    Autocorrelation b(2, options);
    a.update(hostile);
    b.update(clean);
    CHECK(a.autocorrelation() == b.autocorrelation());
    CHECK(a.covariance() == b.covariance());
    CHECK(a.mean() == b.mean());
  }
  // Row reads (used by the forward pass and error reports) agree too.
  const Eigen::VectorXd row = read_row(hostile, 1);
  CHECK(row[0] == 1.0 && row[1] == 1.0);
  std::vector<double> out(12);
  copy_rows(hostile, 0, 6, out.data());
  for (std::size_t i = 0; i < out.size(); ++i) CHECK(out[i] == static_cast<double>(ones[i]));
}

TEST(self_merge_count_overflow_throws_and_keeps_state) {
  const RowMatrix x = random_matrix(3, 2, 5);
  Autocorrelation acc(2);
  acc.update(ChunkView::row_major(x.data(), 3, 2));
  int merges = 0;
  bool thrown = false;
  for (; merges < 70; ++merges) {
    const Moments before = acc.moments();
    try {
      acc.merge(acc);
    } catch (const std::overflow_error& e) {
      thrown = true;
      CHECK(std::string(e.what()).find("count") != std::string::npos);
      const Moments after = acc.moments();
      CHECK(after.count == before.count);
      CHECK(after.weight == before.weight);
      CHECK(after.scatter == before.scatter);
      break;
    }
    CHECK(acc.count() > 0);
  }
  CHECK(thrown);
  CHECK(merges == 61);  // 3 * 2^61 < 2^63 <= 3 * 2^62
  // The state is still a valid checkpoint.
  const Autocorrelation restored(acc.moments());
  CHECK(restored.count() == acc.count());
}

TEST(update_count_overflow_throws_and_keeps_state) {
  const RowMatrix x = random_matrix(4, 2, 6);
  Moments m(2);
  m.count = std::numeric_limits<std::int64_t>::max() - 2;
  m.weight = 1.0;
  Autocorrelation acc(m);
  CHECK_THROWS_WITH(acc.update(ChunkView::row_major(x.data(), 4, 2)), std::overflow_error, "count");
  CHECK(acc.count() == std::numeric_limits<std::int64_t>::max() - 2);
  acc.update(ChunkView::row_major(x.data(), 2, 2));
  CHECK(acc.count() == std::numeric_limits<std::int64_t>::max());
}

namespace {
// Relative max error of the mixed-precision scatter against float64 for data of magnitude `scale`.
double mixed_error(double scale, Parallelism parallelism) {
  RowMatrix x = random_matrix(3000, 5, 77);
  for (Index j = 0; j < x.cols(); ++j) x.col(j) *= (j + 1);
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> f = (x * scale).cast<float>();
  ReduceOptions mixed;
  mixed.precision = Precision::mixed;
  mixed.parallelism = parallelism;
  mixed.threads = 2;
  ReduceOptions exact = mixed;
  exact.precision = Precision::float64;
  Autocorrelation a(5, mixed);
  Autocorrelation b(5, exact);
  const ChunkView view = ChunkView::row_major(f.data(), f.rows(), f.cols());
  a.update(view);
  b.update(view);
  const Eigen::MatrixXd sa = a.scatter();
  const Eigen::MatrixXd sb = b.scatter();
  if (!sa.allFinite()) return INFINITY;
  return (sa - sb).cwiseAbs().maxCoeff() / sb.cwiseAbs().maxCoeff();
}
}  // namespace

TEST(mixed_precision_works_at_extreme_magnitudes) {
  for (const Parallelism p : {Parallelism::blocks, Parallelism::within_block}) {
    for (const double scale : {1.0, 1e18, 1e-18, 1e30, 1e-30}) {
      double error = INFINITY;
      try {
        error = mixed_error(scale, p);
      } catch (const std::exception& e) {
        std::cerr << "scale " << scale << ": " << e.what() << "\n";
      }
      if (!(error < 1e-6)) std::cerr << "scale " << scale << ": relative error " << error << "\n";
      CHECK(error < 1e-6);
    }
  }
  // float64 data beyond float32's range altogether.
  RowMatrix x = random_matrix(1000, 3, 78) * 1e100;  // squares of 1e200: float64 only
  ReduceOptions mixed;
  mixed.precision = Precision::mixed;
  Autocorrelation a(3, mixed);
  Autocorrelation b(3);
  a.update(ChunkView::row_major(x.data(), x.rows(), x.cols()));
  b.update(ChunkView::row_major(x.data(), x.rows(), x.cols()));
  CHECK((a.scatter() - b.scatter()).cwiseAbs().maxCoeff() <= 1e-6 * b.scatter().cwiseAbs().maxCoeff());
}

TEST(copy_and_assignment_race_no_set_options) {
  // Run under ThreadSanitizer: copies read the options under the source's lock.
  Autocorrelation source(3);
  Autocorrelation target(3);
  std::thread writer([&] {
    for (int i = 0; i < 2000; ++i) {
      ReduceOptions o;
      o.threads = 1 + i % 3;
      o.precision = i % 2 ? Precision::mixed : Precision::float64;
      source.set_options(o);
    }
  });
  std::thread reader([&] {
    for (int i = 0; i < 2000; ++i) {
      const Autocorrelation copy(source);
      CHECK(copy.options().threads >= 0);
      target = source;
      target = target;  // self-assignment: no deadlock
    }
  });
  writer.join();
  reader.join();
  // a = b and b = a concurrently: both locks taken deadlock-free.
  Autocorrelation a(3);
  Autocorrelation b(3);
  std::thread t1([&] { for (int i = 0; i < 2000; ++i) a = b; });
  std::thread t2([&] { for (int i = 0; i < 2000; ++i) b = a; });
  t1.join();
  t2.join();
  // The reader may finish before the writer's first set_options (default threads = 0) under a
  // loaded scheduler, so only the state after both threads have joined is checked exactly.
  target = source;
  CHECK(source.options().threads == 1 + 1999 % 3);
  CHECK(target.options().threads == source.options().threads);
  CHECK(target.options().precision == Precision::mixed);
}

TEST(subnormal_weights_are_refused) {
  const RowMatrix x = random_matrix(4, 2, 9);
  for (const double w : {5e-324, DBL_MIN / 2.0, DBL_MIN * (1.0 - DBL_EPSILON)}) {
    const std::vector<double> weights = {1.0, 0.0, w, 2.0};
    Autocorrelation acc(2);
    try {
      acc.update(ChunkView::row_major(x.data(), 4, 2), weights.data());
      CHECK(!"a subnormal weight was accepted");
    } catch (const InvalidWeightError& e) {
      CHECK(e.index() == 2);
      CHECK(e.value() == w);
      CHECK(std::string(e.what()).find("subnormal") != std::string::npos);
    }
    CHECK(acc.count() == 0);
  }
  // The smallest normal weight and zero are fine.
  const std::vector<double> weights = {1.0, 0.0, DBL_MIN, 2.0};
  Autocorrelation acc(2);
  acc.update(ChunkView::row_major(x.data(), 4, 2), weights.data());
  CHECK(acc.count() == 4);
}

TEST(impossible_feature_counts_are_refused_before_allocating) {
  const Index huge = Index{1} << 40;
  CHECK_THROWS_WITH(Autocorrelation{huge}, std::invalid_argument, "n_features: 1099511627776 features need");
  CHECK_THROWS_WITH(Moments{huge}, std::invalid_argument, "n_features");
  CHECK_THROWS_WITH(Autocorrelation{std::numeric_limits<Index>::max()}, std::invalid_argument, "GiB");
  // sqrt(physical memory / 8) features and below are allowed (not allocated here).
  CHECK(check_feature_count(1000) == 1000);
  const double limit = physical_memory_bytes();
  CHECK(limit > 0.0);
  const auto largest = static_cast<Index>(std::sqrt(limit / 8.0));
  CHECK(check_feature_count(largest) == largest);
  CHECK_THROWS_WITH(check_feature_count(largest + 2), std::invalid_argument, "physical memory");
}
