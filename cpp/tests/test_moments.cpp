#include "check.hpp"
#include "descramble/moments.hpp"
#include "descramble/reduce.hpp"
#include "reference.hpp"

using namespace descramble;
using namespace descramble::testing;

TEST(reduce_matches_two_pass_reference) {
  for (Index rows : {1, 2, 7, 64, 1000, 3001}) {
    for (Index cols : {1, 3, 50}) {
      const RowMatrix x = random_matrix(rows, cols, 7u + static_cast<unsigned>(rows * cols));
      const Moments m = reduce_chunk(ChunkView::row_major(x.data(), rows, cols), nullptr, x.row(0).transpose());
      CHECK(m.count == rows);
      CHECK(m.weight == static_cast<double>(rows));
      const Eigen::VectorXd mean = x.colwise().mean().transpose();
      CHECK_CLOSE(m.absolute_mean(), mean, 1e-12 * (1 + cols));
      CHECK_CLOSE(m.scatter, reference_scatter(x), 1e-10 * rows * cols);
      CHECK(m.scatter == m.scatter.transpose());
    }
  }
}

TEST(reduce_is_independent_of_blocks_and_threads) {
  const RowMatrix x = random_matrix(5000, 9, 11);
  const Eigen::VectorXd origin = x.row(0).transpose();
  const ChunkView view = ChunkView::row_major(x.data(), x.rows(), x.cols());
  const Moments base = reduce_chunk(view, nullptr, origin, {1, 5000});
  for (Index block : {1, 2, 63, 1024}) {
    for (int threads : {1, 2, 3}) {
      const Moments m = reduce_chunk(view, nullptr, origin, {threads, block});
      CHECK(m.count == base.count);
      CHECK_CLOSE(m.mean, base.mean, 1e-13);
      CHECK_CLOSE(m.scatter, base.scatter, 1e-14 * base.scatter.cwiseAbs().maxCoeff());
    }
  }
}

TEST(merge_is_order_independent) {
  const RowMatrix x = random_matrix(900, 4, 3);
  std::vector<Moments> parts;
  for (Index start = 0; start < 900; start += 300) {
    const RowMatrix part = x.middleRows(start, 300);
    // Each part about its own origin: merge must move between origins.
    parts.push_back(reduce_chunk(ChunkView::row_major(part.data(), 300, 4), nullptr, part.row(5).transpose()));
  }
  Moments left(4), right(4);
  left.merge(parts[0]);
  left.merge(parts[1]);
  left.merge(parts[2]);
  Moments tail = parts[2];
  tail.merge(parts[1]);
  right.merge(tail);
  right.merge(parts[0]);
  const Eigen::MatrixXd expected = reference_scatter(x);
  CHECK(left.count == 900 && right.count == 900);
  CHECK_CLOSE(left.scatter, expected, 1e-8);
  CHECK_CLOSE(right.scatter, expected, 1e-8);
  CHECK_CLOSE(left.absolute_mean(), right.absolute_mean(), 1e-13);
}

TEST(weights_equal_repetition) {
  const RowMatrix x = random_matrix(40, 3, 5);
  Eigen::VectorXd w(40);
  for (Index i = 0; i < 40; ++i) w[i] = static_cast<double>(i % 4);  // 0, 1, 2, 3 copies
  RowMatrix repeated(static_cast<Index>(w.sum()), 3);
  Index r = 0;
  for (Index i = 0; i < 40; ++i)
    for (int k = 0; k < static_cast<int>(w[i]); ++k) repeated.row(r++) = x.row(i);
  const Moments weighted = reduce_chunk(ChunkView::row_major(x.data(), 40, 3), w.data(), x.row(0).transpose(), {1, 8});
  const Moments plain = reduce_chunk(ChunkView::row_major(repeated.data(), r, 3), nullptr, x.row(0).transpose());
  CHECK(weighted.count == 40);
  CHECK(weighted.weight == plain.weight);
  CHECK_CLOSE(weighted.absolute_mean(), plain.absolute_mean(), 1e-13);
  CHECK_CLOSE(weighted.scatter, plain.scatter, 1e-11);
}

TEST(all_zero_weights_count_rows_only) {
  const RowMatrix x = random_matrix(10, 2, 1);
  const Eigen::VectorXd w = Eigen::VectorXd::Zero(10);
  const Moments m = reduce_chunk(ChunkView::row_major(x.data(), 10, 2), w.data(), x.row(0).transpose());
  CHECK(m.count == 10);
  CHECK(m.weight == 0.0);
  CHECK(m.scatter.isZero());
  CHECK(!m.absolute_mean().allFinite());
}

TEST(large_offset_keeps_relative_accuracy) {
  // 1e9 + U(0, 1): the naive E[xx^T] - m m^T loses every digit (docs/math.md §7).
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const Index rows = 20000, cols = 3;
  RowMatrix x(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) x(i, j) = 1e9 + u(rng);
  RowMatrix shifted = x.rowwise() - x.row(0);  // exact: Sterbenz
  const Eigen::MatrixXd expected = reference_scatter(shifted);
  const Moments m = reduce_chunk(ChunkView::row_major(x.data(), rows, cols), nullptr, x.row(0).transpose(), {2, 333});
  const double rel = (m.scatter - expected).cwiseAbs().maxCoeff() / expected.cwiseAbs().maxCoeff();
  CHECK(rel <= 1e-12);
  // Merging parts that were reduced about different origins stays accurate.
  Moments merged(cols);
  for (Index start = 0; start < rows; start += 4000) {
    merged.merge(reduce_chunk(ChunkView::row_major(x.row(start).data(), 4000, cols), nullptr,
                              x.row(start).transpose()));
  }
  const double rel_merged = (merged.scatter - expected).cwiseAbs().maxCoeff() / expected.cwiseAbs().maxCoeff();
  CHECK(rel_merged <= 1e-12);
}

TEST(non_finite_values_name_the_first_row) {
  RowMatrix x = random_matrix(5000, 4, 9);
  x(3100, 2) = NAN;
  x(4000, 1) = INFINITY;
  const ChunkView view = ChunkView::row_major(x.data(), 5000, 4);
  for (int threads : {1, 2}) {
    CHECK_THROWS_WITH(reduce_chunk(view, nullptr, x.row(0).transpose(), {threads, 64}), std::invalid_argument,
                      "row 3100 contains NaN (column 2)");
  }
  x(0, 0) = -INFINITY;
  CHECK_THROWS_WITH(reduce_chunk(view, nullptr, Eigen::VectorXd::Zero(4)), std::invalid_argument,
                    "row 0 contains infinity (column 0)");
}

TEST(bad_weights_are_named) {
  const RowMatrix x = random_matrix(4, 2, 2);
  Eigen::VectorXd w = Eigen::VectorXd::Ones(4);
  w[2] = -1.0;
  CHECK_THROWS_WITH(reduce_chunk(ChunkView::row_major(x.data(), 4, 2), w.data(), Eigen::VectorXd::Zero(2)),
                    std::invalid_argument, "weights: entry 2 is -1");
  w[2] = NAN;
  CHECK_THROWS_WITH(validate_weights(w.data(), 4), std::invalid_argument, "entry 2");
  try {
    validate_weights(w.data(), 4);
    CHECK(false);
  } catch (const InvalidWeightError& e) {
    CHECK(e.index() == 2);
    CHECK(e.shifted(100).index() == 102);
    CHECK(std::string(e.shifted(100).what()).find("entry 102") != std::string::npos);
  }
}

TEST(overflow_is_reported) {
  RowMatrix x(2, 1);
  x << 1e300, -1e300;
  CHECK_THROWS_WITH(reduce_chunk(ChunkView::row_major(x.data(), 2, 1), nullptr, x.row(0).transpose()),
                    std::overflow_error, "overflow");
}

TEST(mixed_precision_error_stays_near_float32_rounding) {
  const Index rows = 20000, cols = 40;
  RowMatrix x = random_matrix(rows, cols, 77, 3.0);
  std::vector<float> x32(static_cast<std::size_t>(rows * cols));
  for (Index i = 0; i < rows * cols; ++i) x32[static_cast<std::size_t>(i)] = static_cast<float>(x.data()[i]);
  const ChunkView view = ChunkView::row_major(x32.data(), rows, cols);
  const Eigen::VectorXd origin = read_row(view, 0);
  const Moments exact = reduce_chunk(view, nullptr, origin);
  ReduceOptions mixed;
  mixed.precision = Precision::mixed;
  const Moments fast = reduce_chunk(view, nullptr, origin, mixed);
  const double rel = (fast.scatter - exact.scatter).cwiseAbs().maxCoeff() / exact.scatter.cwiseAbs().maxCoeff();
  CHECK(rel <= 1e-6);
  CHECK(rel > 0.0);  // it really did round to float32
  CHECK_CLOSE(fast.mean, exact.mean, 1e-12);  // only the block size differs
}

TEST(within_block_parallelism_matches_blocks) {
  RowMatrix x = random_matrix(3001, 30, 12, 7.0);
  Eigen::VectorXd w(3001);
  for (Index i = 0; i < 3001; ++i) w[i] = static_cast<double>(i % 5) * 0.5;
  const Eigen::VectorXd origin = x.row(0).transpose();
  const ChunkView view = ChunkView::row_major(x.data(), 3001, 30);
  const Eigen::MatrixXd f = x;  // Fortran order too
  const ChunkView fview = ChunkView::of(f.data(), 3001, 30, 1, 3001);
  for (const double* weights : {static_cast<const double*>(nullptr), static_cast<const double*>(w.data())}) {
    ReduceOptions blocks;
    blocks.parallelism = Parallelism::blocks;
    const Moments expected = reduce_chunk(view, weights, origin, blocks);
    for (int threads : {1, 2, 3}) {
      for (Index block_rows : {0, 1, 100, 5000}) {
        ReduceOptions within;
        within.parallelism = Parallelism::within_block;
        within.threads = threads;
        within.block_rows = block_rows;
        for (const ChunkView& v : {view, fview}) {
          const Moments m = reduce_chunk(v, weights, origin, within);
          CHECK(m.count == 3001);
          CHECK(m.weight == expected.weight);
          CHECK_CLOSE(m.mean, expected.mean, 1e-12);
          CHECK_CLOSE(m.scatter, expected.scatter, 1e-12 * expected.scatter.cwiseAbs().maxCoeff());
          CHECK(m.scatter == m.scatter.transpose());
        }
      }
    }
  }
  ReduceOptions within;
  within.parallelism = Parallelism::within_block;
  within.block_rows = 1000;
  x(2500, 3) = NAN;
  x(2900, 1) = NAN;
  CHECK_THROWS_WITH(reduce_chunk(view, nullptr, origin, within), NonFiniteError, "row 2500 contains NaN (column 3)");
  try {
    reduce_chunk(view, nullptr, origin, within);
    CHECK(false);
  } catch (const NonFiniteError& e) {
    CHECK(e.row() == 2500 && e.column() == 3 && e.source() == "chunk");
    const NonFiniteError moved = e.shifted("data", 1000);
    CHECK(moved.row() == 3500 && moved.column() == 3);
    CHECK(std::string(moved.what()).find("data: row 3500 contains NaN (column 3)") == 0);
  }
  within.precision = Precision::mixed;
  x(2500, 3) = 1.0;
  x(2900, 1) = 2.0;
  const Moments mixed = reduce_chunk(view, nullptr, origin, within);
  ReduceOptions blocks;
  blocks.parallelism = Parallelism::blocks;
  const Moments exact = reduce_chunk(view, nullptr, origin, blocks);
  CHECK((mixed.scatter - exact.scatter).cwiseAbs().maxCoeff() <= 1e-6 * exact.scatter.cwiseAbs().maxCoeff());
}
