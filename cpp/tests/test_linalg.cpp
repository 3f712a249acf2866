#include "check.hpp"
#include "descramble/linalg.hpp"
#include "reference.hpp"

using namespace descramble;
using namespace descramble::testing;

namespace {
bool signs_canonical(const Eigen::MatrixXd& u) {
  for (Index j = 0; j < u.cols(); ++j) {
    Index at;
    u.col(j).cwiseAbs().maxCoeff(&at);
    if (u(at, j) < 0) return false;
  }
  return true;
}
}  // namespace

TEST(eigh_reconstructs_with_ascending_values_and_canonical_signs) {
  const RowMatrix x = random_matrix(60, 20, 4);
  const Eigen::MatrixXd a = x.transpose() * x;
  const EighResult r = eigh(a);
  CHECK_CLOSE(r.vectors * r.values.asDiagonal() * r.vectors.transpose(), a, 1e-9 * a.norm());
  CHECK_CLOSE(r.vectors.transpose() * r.vectors, Eigen::MatrixXd::Identity(20, 20), 1e-12);
  for (Index i = 1; i < 20; ++i) CHECK(r.values[i] >= r.values[i - 1]);
  CHECK(signs_canonical(r.vectors));
  CHECK_THROWS_WITH(eigh(Eigen::MatrixXd::Ones(2, 3)), std::invalid_argument, "square");
}

TEST(svd_thin_and_full) {
  const Eigen::MatrixXd a = random_matrix(7, 4, 9);
  const SvdResult thin = svd(a);
  CHECK(thin.u.rows() == 7 && thin.u.cols() == 4 && thin.vt.rows() == 4);
  CHECK_CLOSE(thin.u * thin.s.asDiagonal() * thin.vt, a, 1e-12);
  CHECK(signs_canonical(thin.u));
  const SvdResult full = svd(a, true);
  CHECK(full.u.cols() == 7 && full.vt.rows() == 4);
  CHECK_CLOSE(full.u.transpose() * full.u, Eigen::MatrixXd::Identity(7, 7), 1e-12);
  CHECK_CLOSE(full.s, thin.s, 1e-12);
}

TEST(truncated_svd_recovers_a_low_rank_matrix) {
  const Eigen::MatrixXd left = random_matrix(200, 5, 1);
  const Eigen::MatrixXd right = random_matrix(5, 150, 2);
  const Eigen::MatrixXd a = left * right;
  const SvdResult exact = svd(a);
  const SvdResult r = truncated_svd(a, 5, 42);
  CHECK_CLOSE(r.s, exact.s.head(5), 1e-9 * exact.s[0]);
  CHECK_CLOSE(r.u * r.s.asDiagonal() * r.vt, a, 1e-9 * a.norm());
  const SvdResult again = truncated_svd(a, 5, 42);
  CHECK(again.u == r.u);
  CHECK_THROWS_WITH(truncated_svd(a, 151, 0), std::invalid_argument, "k: expected");
}
