#include "descramble/descrambler.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <utility>

#include <Eigen/LU>

#include "blas.hpp"
#include "checks.hpp"
#include "descramble/linalg.hpp"

namespace descramble {
namespace {

using detail::as_symmetric;
using detail::check_finite;
using detail::shape;

void check_smoothness(const Smoothness& s, Index m) {
  const Index k = s.size();
  if (s.gram.cols() != k || s.basis.rows() != k || s.basis.cols() != k || s.values.size() != k) {
    throw std::invalid_argument("smoothness: inconsistent operator (gram " + shape(s.gram) + ", basis " +
                                shape(s.basis) + ", " + std::to_string(s.values.size()) + " values)");
  }
  if (k != m) {
    throw std::invalid_argument("smoothness: the operator acts on " + std::to_string(k) +
                                " neurons, the layer has " + std::to_string(m));
  }
}

// P = T U^T with det +1 (docs/math.md §3), then the loss and the bound.
ClosedForm finish(Eigen::MatrixXd S, Eigen::MatrixXd U, Eigen::VectorXd mu, const Smoothness& smoothness,
                  int threads) {
  const Index m = S.rows();
  check_smoothness(smoothness, m);
  const Eigen::MatrixXd& T = smoothness.basis;
  ClosedForm r;
  r.P.resize(m, m);
  {
    const detail::BlasScope blas(threads);
    detail::gemm(false, true, T, U, r.P);
  }
  if (Eigen::PartialPivLU<Eigen::MatrixXd>(r.P).determinant() < 0.0) {
    U.col(m - 1) *= -1.0;  // the last column's sign fixes det = +1; the loss is unchanged
    const detail::BlasScope blas(threads);
    detail::gemm(false, true, T, U, r.P);
  }
  r.loss = smoothness_loss(smoothness.gram, S, r.P, threads);
  r.bound = smoothness.values.dot(mu);
  if (!std::isfinite(r.loss) || !std::isfinite(r.bound)) {  // as descramble.descramble's ValueError
    throw std::overflow_error("the smoothness loss overflows float64 (loss " + std::to_string(r.loss) + ", bound " +
                              std::to_string(r.bound) + "): rescale the data or the weights");
  }
  r.basis = T;
  r.basis_values = smoothness.values;
  r.components = std::move(U);
  r.spectrum = std::move(mu);
  r.hidden = std::move(S);
  for (auto& g : degenerate_groups(smoothness.values)) r.degenerate.push_back({"smoothness", std::move(g)});
  for (auto& g : degenerate_groups(r.spectrum)) r.degenerate.push_back({"spectrum", std::move(g)});
  return r;
}

void check_weights(const Eigen::Ref<const Eigen::MatrixXd>& W) {
  if (W.rows() < 1 || W.cols() < 1) {
    throw std::invalid_argument("weights: expected at least one row and one column, got " + shape(W));
  }
  check_finite(W, "weights");
}

void check_width(Index width, Index n) {
  if (width != n) {
    throw std::invalid_argument("autocorrelation: the input has " + std::to_string(width) +
                                " features, the weights have " + std::to_string(n) + " columns");
  }
}

void check_bias(const Eigen::Ref<const Eigen::VectorXd>& b, Index m) {
  if (b.size() != m) {
    throw std::invalid_argument("bias: expected " + std::to_string(m) + " entries (one per hidden unit), got " +
                                std::to_string(b.size()));
  }
  if (!b.allFinite()) throw std::invalid_argument("bias: contains NaN or infinity");
}

// M = W L with C = L L^T: U and mu from the SVD of M, S = M M^T (docs/math.md §3).
ClosedForm from_factor(const Eigen::Ref<const Eigen::MatrixXd>& M, const Smoothness& smoothness, int threads) {
  const Index m = M.rows();
  check_smoothness(smoothness, m);
  Eigen::MatrixXd S(m, m);
  {
    const detail::BlasScope blas(threads);
    detail::gemm(false, true, M, M, S);
  }
  S = (S + S.transpose()).eval() / 2.0;
  SvdResult f = svd(M, /*full_matrices=*/true, threads);
  Eigen::VectorXd mu = Eigen::VectorXd::Zero(m);
  mu.head(f.s.size()) = f.s.cwiseAbs2();
  return finish(std::move(S), std::move(f.u), std::move(mu), smoothness, threads);
}

// W L for an autocorrelation matrix C = L L^T given as a matrix (already validated), L from eigh(C).
ClosedForm from_layer(const Eigen::Ref<const Eigen::MatrixXd>& W, const Eigen::Ref<const Eigen::MatrixXd>& C,
                      const Smoothness& smoothness, int threads) {
  check_smoothness(smoothness, W.rows());
  const EighResult c = eigh(C, threads);
  const Eigen::MatrixXd L = c.vectors * c.values.cwiseMax(0.0).cwiseSqrt().asDiagonal();  // rounding negatives clipped
  Eigen::MatrixXd M(W.rows(), L.cols());
  {
    const detail::BlasScope blas(threads);
    detail::gemm(false, false, W, L, M);
  }
  return from_factor(M, smoothness, threads);
}

// M = [W L_c, W mean + b] from the accumulator's centred moments (docs/math.md §1, §7): with the
// covariance Sigma = L_c L_c^T, the augmented second moment [[Sigma + mean mean^T, mean], [mean^T, 1]]
// of [x; 1] is L~ L~^T for L~ = [[L_c, mean], [0, 1]], so W~ L~ = [W L_c, W mean + b]. Factoring the
// covariance itself (not E[x x^T] = Sigma + mean mean^T) keeps the centred part exact under a large
// common offset, where E[x x^T] would round it away. Without a bias: b = 0 and the last column is
// W mean, the factor of C = E[x x^T] itself.
Eigen::MatrixXd centred_factor(const Eigen::Ref<const Eigen::MatrixXd>& W, const Eigen::VectorXd& b,
                               const Autocorrelation& input, int threads) {
  const Moments state = input.moments();  // one consistent snapshot
  if (!(state.weight > 0.0)) {
    throw std::domain_error("autocorrelation: no samples with positive weight have been accumulated");
  }
  const Index n = W.cols();
  const Eigen::MatrixXd covariance = state.scatter / state.weight;
  const Eigen::VectorXd mean = state.absolute_mean();
  const EighResult c = eigh((covariance + covariance.transpose()) / 2.0, threads);
  const Eigen::MatrixXd L = c.vectors * c.values.cwiseMax(0.0).cwiseSqrt().asDiagonal();
  Eigen::MatrixXd M(W.rows(), n + 1);
  {
    const detail::BlasScope blas(threads);
    Eigen::MatrixXd WL(W.rows(), n);
    detail::gemm(false, false, W, L, WL);
    M.leftCols(n) = WL;
  }
  M.col(n) = W * mean + b;
  return M;
}

}  // namespace


Eigen::MatrixXd descramble_rows(const Eigen::Ref<const Eigen::MatrixXd>& P, const Eigen::Ref<const Eigen::MatrixXd>& W) {
  if (W.rows() != P.rows()) {
    throw std::invalid_argument("W: expected " + std::to_string(P.rows()) + " rows (hidden units), got " +
                                std::to_string(W.rows()));
  }
  return P * W;
}

Eigen::MatrixXd descramble_columns(const Eigen::Ref<const Eigen::MatrixXd>& P,
                                   const Eigen::Ref<const Eigen::MatrixXd>& W_next) {
  if (W_next.cols() != P.rows()) {
    throw std::invalid_argument("W_next: expected " + std::to_string(P.rows()) + " columns (hidden units), got " +
                                std::to_string(W_next.cols()));
  }
  return W_next * P.transpose();
}

Eigen::MatrixXd ClosedForm::apply(const Eigen::Ref<const Eigen::MatrixXd>& W) const { return descramble_rows(P, W); }

Eigen::MatrixXd ClosedForm::apply_next(const Eigen::Ref<const Eigen::MatrixXd>& W_next) const {
  return descramble_columns(P, W_next);
}

double smoothness_loss(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                       const Eigen::Ref<const Eigen::MatrixXd>& P, int threads) {
  const Index m = P.rows();
  if (P.cols() != m || gram.rows() != m || gram.cols() != m || hidden.rows() != m || hidden.cols() != m) {
    throw std::invalid_argument("smoothness_loss: expected square A, S and P of one size, got A " + shape(gram) +
                                ", S " + shape(hidden) + ", P " + shape(P));
  }
  Eigen::MatrixXd PS(m, m);
  Eigen::MatrixXd PSPt(m, m);
  {
    const detail::BlasScope blas(threads);
    detail::gemm(false, false, P, hidden, PS);
    detail::gemm(false, true, PS, P, PSPt);
  }
  return gram.cwiseProduct(PSPt).sum();  // tr(A P S P^T) with A symmetric
}

ClosedForm descramble_diagonal(const Eigen::Ref<const Eigen::MatrixXd>& weights, int threads) {
  check_weights(weights);
  if (weights.rows() != weights.cols()) {
    throw std::invalid_argument("weights: criterion='diagonal' needs a square matrix, got " + shape(weights));
  }
  const Index m = weights.rows();
  SvdResult f = svd(weights, /*full_matrices=*/false, threads);
  Eigen::MatrixXd V = f.vt.transpose();
  ClosedForm r;
  r.P.resize(m, m);
  // max tr(P W) = max tr(P U Sigma V^T) over orthogonal P: P = V U^T (Procrustes).
  {
    const detail::BlasScope blas(threads);
    detail::gemm(false, true, V, f.u, r.P);
  }
  if (Eigen::PartialPivLU<Eigen::MatrixXd>(r.P).determinant() < 0.0) {
    V.col(m - 1) *= -1.0;  // Kabsch: SO(m) costs the smallest singular value
    const detail::BlasScope blas(threads);
    detail::gemm(false, true, V, f.u, r.P);
  }
  r.loss = -(r.P * weights).trace();
  r.bound = -f.s.sum();
  if (!std::isfinite(r.loss) || !std::isfinite(r.bound)) {  // as descramble_closed_form
    throw std::overflow_error("the diagonality loss overflows float64 (loss " + std::to_string(r.loss) +
                              ", bound " + std::to_string(r.bound) + "): rescale the weights");
  }
  r.basis = std::move(V);
  r.basis_values.resize(0);
  r.components = std::move(f.u);
  r.spectrum = std::move(f.s);
  for (auto& g : degenerate_groups(r.spectrum)) r.degenerate.push_back({"spectrum", std::move(g)});
  return r;
}

ClosedForm descramble_closed_form(const Eigen::Ref<const Eigen::MatrixXd>& hidden, const Smoothness& smoothness,
                                  int threads) {
  Eigen::MatrixXd S = as_symmetric(hidden, "hidden", 1e-10);
  check_smoothness(smoothness, S.rows());
  const EighResult e = eigh(S, threads);
  // Descending: principal components first.
  Eigen::VectorXd mu = e.values.reverse();
  Eigen::MatrixXd U = e.vectors.rowwise().reverse();
  return finish(std::move(S), std::move(U), std::move(mu), smoothness, threads);
}

ClosedForm descramble_closed_form(const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                                  const Eigen::Ref<const Eigen::MatrixXd>& A, int threads) {
  if (hidden.rows() != hidden.cols()) {
    throw std::invalid_argument("hidden: expected a square matrix, got " + shape(hidden));
  }
  if (A.rows() != hidden.rows() || A.cols() != hidden.cols()) {
    throw std::invalid_argument("A: expected " + shape(hidden) + " like the hidden autocorrelation, got " + shape(A));
  }
  return descramble_closed_form(hidden, smoothness_from_gram(A, threads), threads);
}

ClosedForm descramble_layer(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                            const Eigen::Ref<const Eigen::MatrixXd>& autocorrelation, const Smoothness& smoothness,
                            int threads) {
  check_weights(weights);
  const Eigen::MatrixXd C = as_symmetric(autocorrelation, "autocorrelation", 1e-10);
  check_width(C.rows(), weights.cols());
  return from_layer(weights, C, smoothness, threads);
}

ClosedForm descramble_layer(const Eigen::Ref<const Eigen::MatrixXd>& weights, const Autocorrelation& input,
                            const Smoothness& smoothness, int threads) {
  check_weights(weights);
  check_width(input.n_features(), weights.cols());
  check_smoothness(smoothness, weights.rows());
  return from_factor(centred_factor(weights, Eigen::VectorXd::Zero(weights.rows()), input, threads), smoothness,
                     threads);
}

ClosedForm descramble_layer(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                            const Eigen::Ref<const Eigen::VectorXd>& bias, const Autocorrelation& input,
                            const Smoothness& smoothness, int threads) {
  check_weights(weights);
  check_width(input.n_features(), weights.cols());
  check_bias(bias, weights.rows());
  check_smoothness(smoothness, weights.rows());
  return from_factor(centred_factor(weights, bias, input, threads), smoothness, threads);
}

Eigen::MatrixXd hidden_autocorrelation(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                                       const Eigen::Ref<const Eigen::MatrixXd>& autocorrelation) {
  check_weights(weights);
  const Eigen::MatrixXd C = as_symmetric(autocorrelation, "autocorrelation", 1e-10);
  check_width(C.rows(), weights.cols());
  const Eigen::MatrixXd S = weights * C * weights.transpose();
  return (S + S.transpose()) / 2.0;
}

Eigen::MatrixXd hidden_autocorrelation(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                                       const Eigen::Ref<const Eigen::VectorXd>& bias, const Autocorrelation& input) {
  check_weights(weights);
  check_width(input.n_features(), weights.cols());
  check_bias(bias, weights.rows());
  const Eigen::MatrixXd M = centred_factor(weights, bias, input, 1);
  const Eigen::MatrixXd S = M * M.transpose();
  return (S + S.transpose()) / 2.0;
}

}  // namespace descramble
