// Plain reference computations for the C++ tests.
#pragma once

#include <random>

#include <Eigen/Core>

namespace descramble::testing {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

inline RowMatrix random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed, double offset = 0.0) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  RowMatrix x(rows, cols);
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j) x(i, j) = offset + normal(rng) * (1.0 + j);
  return x;
}

// Two-pass weighted scatter, sum_i w_i (x_i - m)(x_i - m)^T, in long double.
inline Eigen::MatrixXd reference_scatter(const RowMatrix& x, const Eigen::VectorXd& w) {
  using LMatrix = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic>;
  const LMatrix xl = x.cast<long double>();
  const Eigen::Matrix<long double, Eigen::Dynamic, 1> wl = w.cast<long double>();
  const long double total = wl.sum();
  const Eigen::Matrix<long double, 1, Eigen::Dynamic> mean = (wl.transpose() * xl) / total;
  const LMatrix c = xl.rowwise() - mean;
  return (c.transpose() * wl.asDiagonal() * c).cast<double>();
}

inline Eigen::MatrixXd reference_scatter(const RowMatrix& x) {
  return reference_scatter(x, Eigen::VectorXd::Ones(x.rows()));
}

}  // namespace descramble::testing
