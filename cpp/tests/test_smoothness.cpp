// Smoothness operators of smoothness.hpp: the grid (Kronecker sum of 1-D
// differences) and the authors' central difference (finitediff.m).

#include <cmath>
#include <vector>

#include <Eigen/Dense>

#include "check.hpp"
#include "descramble/smoothness.hpp"

using descramble::DifferenceScheme;
using descramble::Index;
using descramble::Smoothness;

namespace {

Eigen::MatrixXd kron(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  Eigen::MatrixXd k(a.rows() * b.rows(), a.cols() * b.cols());
  for (Index i = 0; i < a.rows(); ++i)
    for (Index j = 0; j < a.cols(); ++j) k.block(i * b.rows(), j * b.cols(), b.rows(), b.cols()) = a(i, j) * b;
  return k;
}

// A of the grid, as the Kronecker sum of the 1-D Gram matrices.
Eigen::MatrixXd kron_sum(const std::vector<Index>& shape, int order, bool circular) {
  Index m = 1;
  for (Index n : shape) m *= n;
  Eigen::MatrixXd A = Eigen::MatrixXd::Zero(m, m);
  for (std::size_t a = 0; a < shape.size(); ++a) {
    Eigen::MatrixXd block = Eigen::MatrixXd::Ones(1, 1);
    for (std::size_t b = 0; b < shape.size(); ++b) {
      block = kron(block, b == a ? descramble::finite_difference_smoothness(shape[b], order, circular).gram
                                 : Eigen::MatrixXd::Identity(shape[b], shape[b]));
    }
    A += block;
  }
  return A;
}

}  // namespace

TEST(grid_is_the_kronecker_sum_with_its_eigenbasis) {
  const std::vector<std::vector<Index>> shapes = {{1}, {1, 5}, {3, 1, 2}, {4, 8}, {4, 4}};
  for (const auto& shape : shapes)
    for (int order = 1; order <= 2; ++order)
      for (bool circular : {false, true}) {
        const Smoothness s = descramble::grid_smoothness(shape, order, circular);
        const Eigen::MatrixXd A = kron_sum(shape, order, circular);
        const Index m = A.rows();
        CHECK(s.size() == m);
        CHECK_CLOSE(s.gram, A, 1e-12);
        CHECK_CLOSE(s.matrix.transpose() * s.matrix, A, 1e-12);
        CHECK_CLOSE(s.basis.transpose() * s.basis, Eigen::MatrixXd::Identity(m, m), 1e-12);
        CHECK_CLOSE(A * s.basis, s.basis * s.values.asDiagonal(), 1e-12 * std::max(1.0, A.maxCoeff()));
        for (Index i = 1; i < m; ++i) CHECK(s.values[i] >= s.values[i - 1]);
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(A);
        CHECK_CLOSE(s.values, eig.eigenvalues(), 1e-12 * std::max(1.0, A.maxCoeff()));
      }
}

TEST(grid_1d_equals_finite_difference) {
  for (bool circular : {false, true}) {
    const Smoothness g = descramble::grid_smoothness({7}, 1, circular);
    const Smoothness f = descramble::finite_difference_smoothness(7, 1, circular);
    CHECK(g.gram == f.gram);
    CHECK(g.basis == f.basis);
    CHECK(g.values == f.values);
  }
}

TEST(grid_names_and_refusals) {
  CHECK(descramble::grid_smoothness({4, 8}).name == "grid(4x8, order=1)");
  CHECK(descramble::grid_smoothness({3, 4}, 2, true, DifferenceScheme::central).name ==
        "grid(3x4, order=2, circular=True, scheme=central)");
  CHECK_THROWS_WITH(descramble::grid_smoothness({}), std::invalid_argument, "shape: expected at least one axis");
  CHECK_THROWS_WITH(descramble::grid_smoothness({4, 0}), std::invalid_argument, "shape: axis 1 has size 0");
  CHECK_THROWS_WITH(descramble::grid_smoothness({65536, 65536}), std::invalid_argument, "more than 2^31 - 1");
  CHECK_THROWS_WITH(descramble::grid_smoothness({3}, 0), std::invalid_argument, "order: expected a positive");
}

TEST(central_difference_is_finitediff) {
  for (Index m = 1; m <= 9; ++m) {
    // finitediff.m: interior (x_{j+1} - x_{j-1}) / 2, wrap-around entries written last, all / m.
    Eigen::MatrixXd d1 = Eigen::MatrixXd::Zero(m, m);
    for (Index i = 0; i + 1 < m; ++i) d1(i, i + 1) = 0.5;
    for (Index i = 1; i < m; ++i) d1(i, i - 1) = -0.5;
    d1(0, m - 1) = -0.5;
    d1(m - 1, 0) = 0.5;
    d1 /= static_cast<double>(m);
    Eigen::MatrixXd d = Eigen::MatrixXd::Identity(m, m);
    for (int order = 1; order <= 3; ++order) {
      d = (d * d1).eval();
      const Smoothness s = descramble::finite_difference_smoothness(m, order, true, DifferenceScheme::central);
      const Eigen::MatrixXd a = d.transpose() * d;
      const double scale = d.cwiseAbs().maxCoeff();
      const double gram_scale = a.cwiseAbs().maxCoeff();
      CHECK_CLOSE(s.matrix, d, 1e-15 * scale);
      CHECK_CLOSE(s.gram, a, 1e-14 * gram_scale);
      CHECK_CLOSE(s.gram * s.basis, s.basis * s.values.asDiagonal(), 1e-14 * gram_scale);
      CHECK_CLOSE(s.basis.transpose() * s.basis, Eigen::MatrixXd::Identity(m, m), 1e-13);
      CHECK(s.analytic);
    }
  }
  CHECK_THROWS_WITH(descramble::finite_difference_smoothness(5, 1, false, DifferenceScheme::central),
                    std::invalid_argument, "pass circular=True");
}
