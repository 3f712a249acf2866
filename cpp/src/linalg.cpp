#include "descramble/linalg.hpp"

#include <algorithm>
#include <random>
#include <stdexcept>
#include <string>

#include <Eigen/QR>

#include "blas.hpp"

namespace descramble {
namespace {

void check_finite(const Eigen::Ref<const Eigen::MatrixXd>& a) {
  if (!a.allFinite()) throw std::invalid_argument("a: the matrix contains NaN or infinity");
}

// An orthonormal basis of the columns of y (thin Q of a Householder QR).
Eigen::MatrixXd orthonormal_basis(const Eigen::MatrixXd& y) {
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(y);
  return qr.householderQ() * Eigen::MatrixXd::Identity(y.rows(), y.cols());
}

// LAPACK threads for `threads` (0 = automatic) on a problem of this size.
// Below a few hundred rows the threads' start-up and synchronisation cost
// more than they save, and on a shared machine a multi-threaded
// eigendecomposition of a 65 x 65 matrix measured 100x slower than a serial
// one (68 ms against 0.6 ms; 3.7 s against 54 ms at 512 x 512) because
// OpenBLAS's threads spin while waiting for each other.
// `work` is the problem's flop scale: n^3 for an n x n eigendecomposition,
// max(m, n) min(m, n)^2 for an SVD.
int lapack_threads(double work, int threads) {
  constexpr double kSerialBelow = 384.0 * 384.0 * 384.0;
  if (threads > 0) return threads;
  return work < kSerialBelow ? 1 : 0;
}

double cube(Index n) { return static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n); }

}  // namespace

void canonicalize_signs(Eigen::Ref<Eigen::MatrixXd> u, Eigen::MatrixXd* vt) {
  for (Index j = 0; j < u.cols(); ++j) {
    Index at = 0;
    double best = -1.0;
    for (Index i = 0; i < u.rows(); ++i) {
      const double v = std::abs(u(i, j));
      if (v > best) {  // strict: the first of equal magnitudes wins
        best = v;
        at = i;
      }
    }
    if (u.rows() > 0 && u(at, j) < 0.0) {
      u.col(j) *= -1.0;
      if (vt != nullptr && j < vt->rows()) vt->row(j) *= -1.0;
    }
  }
}

EighResult eigh(const Eigen::Ref<const Eigen::MatrixXd>& a, int threads) {
  if (a.rows() != a.cols()) {
    throw std::invalid_argument("a: expected a square matrix, got " + std::to_string(a.rows()) + " x " +
                                std::to_string(a.cols()));
  }
  check_finite(a);
  EighResult result;
  result.vectors = a;
  {
    const detail::BlasScope blas(lapack_threads(cube(a.rows()), threads));
    if (!detail::symmetric_eigen(result.vectors, result.values)) {
      throw std::runtime_error("eigh: the eigenvalue algorithm did not converge");
    }
  }
  canonicalize_signs(result.vectors);
  return result;
}

SvdResult svd(const Eigen::Ref<const Eigen::MatrixXd>& a, bool full_matrices, int threads) {
  check_finite(a);
  SvdResult result;
  Eigen::MatrixXd work = a;
  {
    const double small = static_cast<double>(std::min(a.rows(), a.cols()));
    const double large = static_cast<double>(std::max(a.rows(), a.cols()));
    const detail::BlasScope blas(lapack_threads(large * small * small, threads));
    if (!detail::singular_value_decomposition(work, full_matrices, result.u, result.s, result.vt)) {
      throw std::runtime_error("svd: the SVD algorithm did not converge");
    }
  }
  canonicalize_signs(result.u, &result.vt);
  return result;
}

SvdResult truncated_svd(const Eigen::Ref<const Eigen::MatrixXd>& a, Index k, std::uint64_t seed, Index oversampling,
                        int power_iterations, int threads) {
  const Index m = a.rows();
  const Index n = a.cols();
  const Index rank = std::min(m, n);
  if (k < 1 || k > rank) {
    throw std::invalid_argument("k: expected 1 <= k <= min(a.shape) = " + std::to_string(rank) + ", got " +
                                std::to_string(k));
  }
  if (oversampling < 0 || power_iterations < 0) {
    throw std::invalid_argument("oversampling and power_iterations must be non-negative");
  }
  check_finite(a);
  const Index l = std::min(rank, k + oversampling);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd omega(n, l);
  for (Index j = 0; j < l; ++j)
    for (Index i = 0; i < n; ++i) omega(i, j) = normal(rng);

  SvdResult result;
  {
    const detail::BlasScope blas(threads);
    Eigen::MatrixXd y(m, l);
    Eigen::MatrixXd z(n, l);
    detail::gemm(false, false, a, omega, y);  // y = A omega
    Eigen::MatrixXd q = orthonormal_basis(y);
    for (int it = 0; it < power_iterations; ++it) {  // (A A^T)^q, re-orthonormalised each half step
      detail::gemm(true, false, a, q, z);
      const Eigen::MatrixXd qz = orthonormal_basis(z);
      detail::gemm(false, false, a, qz, y);
      q = orthonormal_basis(y);
    }
    Eigen::MatrixXd b(l, n);
    detail::gemm(true, false, q, a, b);  // b = Q^T A, small
    Eigen::MatrixXd ub;
    Eigen::VectorXd s;
    Eigen::MatrixXd vt;
    if (!detail::singular_value_decomposition(b, false, ub, s, vt)) {
      throw std::runtime_error("svd: the SVD algorithm did not converge");
    }
    result.u.resize(m, k);
    detail::gemm(false, false, q, ub.leftCols(k), result.u);
    result.s = s.head(k);
    result.vt = vt.topRows(k);
  }
  canonicalize_signs(result.u, &result.vt);
  return result;
}

}  // namespace descramble
