#include <cstdint>
#include <thread>
#include <vector>

#include "check.hpp"
#include "descramble/autocorrelation.hpp"
#include "reference.hpp"

using namespace descramble;
using namespace descramble::testing;

namespace {
Eigen::MatrixXd second_moment(const RowMatrix& x) {
  return (x.transpose() * x) / static_cast<double>(x.rows());
}
}  // namespace

TEST(autocorrelation_and_covariance_of_one_chunk) {
  const RowMatrix x = random_matrix(300, 6, 21, 2.0);
  Autocorrelation acc(6);
  acc.update(ChunkView::row_major(x.data(), 300, 6));
  CHECK(acc.count() == 300);
  CHECK_CLOSE(acc.autocorrelation(), second_moment(x), 1e-12);
  CHECK_CLOSE(acc.covariance(1.0), reference_scatter(x) / 299.0, 1e-12);
  CHECK_CLOSE(acc.covariance(0.0), reference_scatter(x) / 300.0, 1e-12);
}

TEST(layouts_and_scalar_types_read_in_place) {
  const RowMatrix x = random_matrix(50, 4, 8);
  // Fortran order.
  const Eigen::MatrixXd f = x;
  Autocorrelation a(4);
  a.update(ChunkView::of(f.data(), 50, 4, 1, 50));
  CHECK_CLOSE(a.autocorrelation(), second_moment(x), 1e-12);
  // Every other row, reversed columns (negative stride).
  Autocorrelation b(4);
  b.update(ChunkView::of(x.data() + 3, 25, 4, 8, -1));
  RowMatrix expected(25, 4);
  for (Index i = 0; i < 25; ++i) expected.row(i) = x.row(2 * i).reverse();
  CHECK_CLOSE(b.autocorrelation(), second_moment(expected), 1e-12);
  // Integer and single-precision data convert exactly.
  std::vector<std::int16_t> ints(12);
  std::vector<float> floats(12);
  RowMatrix as_double(4, 3);
  for (int i = 0; i < 12; ++i) {
    ints[static_cast<std::size_t>(i)] = static_cast<std::int16_t>(i * i - 30);
    floats[static_cast<std::size_t>(i)] = static_cast<float>(i) * 0.25f;
  }
  Autocorrelation c(3), d(3);
  c.update(ChunkView::row_major(ints.data(), 4, 3));
  d.update(ChunkView::row_major(floats.data(), 4, 3));
  for (int i = 0; i < 12; ++i) as_double(i / 3, i % 3) = ints[static_cast<std::size_t>(i)];
  CHECK_CLOSE(c.autocorrelation(), second_moment(as_double), 1e-12);
  for (int i = 0; i < 12; ++i) as_double(i / 3, i % 3) = floats[static_cast<std::size_t>(i)];
  CHECK_CLOSE(d.autocorrelation(), second_moment(as_double), 1e-12);
}

TEST(rejected_chunks_leave_the_state_unchanged) {
  RowMatrix x = random_matrix(100, 3, 4);
  Autocorrelation acc(3);
  acc.update(ChunkView::row_major(x.data(), 50, 3));
  const Moments before = acc.moments();
  x(70, 1) = NAN;
  CHECK_THROWS_WITH(acc.update(ChunkView::row_major(x.row(50).data(), 50, 3)), std::invalid_argument, "row 20");
  CHECK_THROWS_WITH(acc.update(ChunkView::row_major(x.data(), 10, 2)), std::invalid_argument, "expected 3 columns");
  Eigen::VectorXd w = Eigen::VectorXd::Ones(10);
  w[9] = -2;
  CHECK_THROWS_WITH(acc.update(ChunkView::row_major(x.data(), 10, 3), w.data()), std::invalid_argument, "entry 9");
  Autocorrelation other(4);
  CHECK_THROWS_WITH(acc.merge(other), std::invalid_argument, "3 features, got 4");
  const Moments after = acc.moments();
  CHECK(after.count == before.count);
  CHECK(after.weight == before.weight);
  CHECK(after.mean == before.mean);
  CHECK(after.scatter == before.scatter);
  CHECK(after.shift == before.shift);
}

TEST(empty_accumulator_refuses_statistics) {
  Autocorrelation acc(2);
  CHECK_THROWS_WITH(acc.autocorrelation(), std::domain_error, "no samples");
  CHECK_THROWS_WITH(acc.covariance(1.0), std::domain_error, "ddof");
  CHECK(!acc.mean().allFinite());
  const RowMatrix x = random_matrix(1, 2, 1);
  acc.update(ChunkView::row_major(x.data(), 0, 2));  // zero rows: a no-op
  CHECK(acc.count() == 0);
  acc.update(ChunkView::row_major(x.data(), 1, 2));
  CHECK_THROWS_WITH(acc.covariance(1.0), std::domain_error, "ddof");
  CHECK_CLOSE(acc.covariance(0.0), Eigen::MatrixXd::Zero(2, 2), 0.0);
  CHECK_THROWS_WITH(Autocorrelation(0), std::invalid_argument, "n_features");
}

TEST(self_merge_doubles_the_data) {
  const RowMatrix x = random_matrix(20, 2, 6);
  Autocorrelation acc(2);
  acc.update(ChunkView::row_major(x.data(), 20, 2));
  const Eigen::MatrixXd second = acc.autocorrelation();
  acc.merge(acc);
  CHECK(acc.count() == 40);
  CHECK_CLOSE(acc.autocorrelation(), second, 1e-13);
}

TEST(concurrent_updates_lose_no_rows) {
  const RowMatrix x = random_matrix(4000, 5, 13, 1e6);
  Autocorrelation shared(5);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (Index start = t * 1000; start < (t + 1) * 1000; start += 100)
        shared.update(ChunkView::row_major(x.row(start).data(), 100, 5));
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(shared.count() == 4000);
  RowMatrix shifted = x.rowwise() - x.row(0);
  const Eigen::MatrixXd expected = reference_scatter(shifted);
  CHECK_CLOSE(shared.scatter(), expected, 1e-9 * expected.cwiseAbs().maxCoeff());
}

TEST(round_trip_through_moments) {
  const RowMatrix x = random_matrix(30, 3, 2);
  Autocorrelation acc(3);
  acc.update(ChunkView::row_major(x.data(), 30, 3));
  const Autocorrelation restored(acc.moments());
  CHECK(restored.count() == 30);
  CHECK(restored.autocorrelation() == acc.autocorrelation());
  Moments broken = acc.moments();
  broken.scatter(0, 1) += 1.0;
  CHECK_THROWS_WITH(Autocorrelation{broken}, std::invalid_argument, "symmetric");
}

#include "descramble/forward.hpp"

TEST(hidden_statistics_match_an_explicit_forward_pass) {
  const RowMatrix x = random_matrix(5000, 6, 31);
  DenseLayer first{random_matrix(4, 6, 32), Eigen::VectorXd::LinSpaced(4, -1.0, 1.0), Activation::tanh};
  DenseLayer second{random_matrix(3, 4, 33), Eigen::VectorXd::Constant(3, 0.5), Activation::relu};
  HiddenStatistics stats({first, second});
  stats.update(ChunkView::row_major(x.data(), 2000, 6));
  stats.update(ChunkView::row_major(x.row(2000).data(), 3000, 6));
  RowMatrix z1 = (x * first.weights.transpose()).rowwise() + first.bias.transpose();
  RowMatrix a1 = z1.array().tanh();
  RowMatrix z2 = (a1 * second.weights.transpose()).rowwise() + second.bias.transpose();
  RowMatrix a2 = z2.cwiseMax(0.0);
  auto second_moment = [](const RowMatrix& m) { return Eigen::MatrixXd(m.transpose() * m / double(m.rows())); };
  CHECK_CLOSE(stats.input().autocorrelation(), second_moment(x), 1e-10);
  CHECK_CLOSE(stats.pre(0).autocorrelation(), second_moment(z1), 1e-10);
  CHECK_CLOSE(stats.post(0).autocorrelation(), second_moment(a1), 1e-10);
  CHECK_CLOSE(stats.pre(1).autocorrelation(), second_moment(z2), 1e-10);
  CHECK_CLOSE(stats.post(1).autocorrelation(), second_moment(a2), 1e-10);
  CHECK(stats.post(1).count() == 5000);
  CHECK_THROWS_WITH(HiddenStatistics({first, first}), std::invalid_argument, "layers[1]: the weights have 6 columns");
  CHECK_THROWS_WITH(parse_activation("gelu"), std::invalid_argument, "activation");
}
