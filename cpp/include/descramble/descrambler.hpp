// The closed-form descrambler (docs/math.md §2, §3), usable from C++ without
// Python; its smoothness operators (docs/math.md §4) are in smoothness.hpp.
//
// With A = T diag(lambda ascending) T^T (the smoothness operator's Gram
// matrix) and S = U diag(mu descending) U^T (the hidden autocorrelation),
// P = T U^T minimises eta(P) = tr(A P S P^T) over all orthogonal P and
// reaches the bound sum_k lambda_k mu_k.
//
// This is the one implementation: descramble.descramble and
// descramble.smoothness in the Python package call these functions. Conventions:
//  * T is the smoothness operator's basis (smoothness.hpp: analytic where
//    docs/math.md §4 gives it, from eigh(A) otherwise);
//  * U comes from eigh(S) (hidden autocorrelation given) or from the SVD of
//    W L with C = L L^T (layer and input autocorrelation given), with
//    linalg.hpp's sign convention;
//  * if det(T U^T) = -1, the last column of U is negated (det(P) = +1; the
//    loss does not change).
// Where eigenvalues of A or of S repeat (every 0 < k < m/2 of the Fourier
// operator, for example) P is not unique: ClosedForm::degenerate lists the
// groups; compare descramblers there by loss and bound, not entrywise.
#pragma once

#include <string>
#include <vector>

#include <Eigen/Core>

#include "descramble/autocorrelation.hpp"
#include "descramble/chunk.hpp"
#include "descramble/smoothness.hpp"

namespace descramble {

/// Where the descrambler is not unique (docs/math.md §3).
struct Degeneracy {
  std::string kind;            ///< "smoothness" (equal lambda) or "spectrum" (equal mu)
  std::vector<Index> indices;  ///< positions in basis_values / spectrum
};

/// The closed-form descrambler of a hidden layer of m units.
struct ClosedForm {
  Eigen::MatrixXd P;              ///< m x m, orthogonal, det +1
  double loss = 0.0;              ///< eta(P) = tr(A P S P^T)
  double bound = 0.0;             ///< sum_k lambda_k mu_k, a lower bound over all orthogonal P
  Eigen::MatrixXd basis;          ///< T (columns, smoothest first)
  Eigen::VectorXd basis_values;   ///< lambda, ascending
  Eigen::MatrixXd components;     ///< U (columns, largest variance first; last column sign-fixed)
  Eigen::VectorXd spectrum;       ///< mu, descending (zero-padded when rank < m)
  Eigen::MatrixXd hidden;         ///< S, the hidden autocorrelation (symmetrised)
  std::vector<Degeneracy> degenerate;

  /// P W: the descrambled rows of this layer (W: m x n).
  Eigen::MatrixXd apply(const Eigen::Ref<const Eigen::MatrixXd>& W) const;
  /// W_next P^T: the descrambled columns of the next layer (W_next: k x m).
  Eigen::MatrixXd apply_next(const Eigen::Ref<const Eigen::MatrixXd>& W_next) const;
};

/// The descrambler for a hidden autocorrelation S (m x m: square, finite,
/// symmetric to 1e-10 of its largest entry) and a smoothness operator on m
/// neurons; U from eigh(S). Behind descramble.descramble(hidden=S, smoothness=...).
/// Throws std::invalid_argument naming the argument on bad input, and
/// std::overflow_error when the loss or the bound is not finite (every
/// descramble_* function; descramble.descramble raises ValueError there).
ClosedForm descramble_closed_form(const Eigen::Ref<const Eigen::MatrixXd>& hidden, const Smoothness& smoothness,
                                  int threads = 0);

/// As above with the operator given by its Gram matrix A (smoothness_from_gram).
ClosedForm descramble_closed_form(const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                                  const Eigen::Ref<const Eigen::MatrixXd>& A, int threads = 0);

/// The descrambler of a linear layer y = W x from its weights W (m x n) and
/// its input autocorrelation C = E[x x^T] (n x n, symmetric): U and mu from
/// the SVD of W L with C = L L^T (docs/math.md §3; not from eigh(W C W^T), which
/// squares the condition number), S = W C W^T. Behind
/// descramble.descramble(W, autocorrelation=C, smoothness=...).
ClosedForm descramble_layer(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                            const Eigen::Ref<const Eigen::MatrixXd>& autocorrelation, const Smoothness& smoothness,
                            int threads = 0);

/// As above with the input statistics streamed into an Autocorrelation.
ClosedForm descramble_layer(const Eigen::Ref<const Eigen::MatrixXd>& weights, const Autocorrelation& input,
                            const Smoothness& smoothness, int threads = 0);

/// The layer y = W x + b, handled exactly through the augmented input
/// [x; 1] (docs/math.md §1): C~ = [[C, mean], [mean^T, 1]], W~ = [W b].
ClosedForm descramble_layer(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                            const Eigen::Ref<const Eigen::VectorXd>& bias, const Autocorrelation& input,
                            const Smoothness& smoothness, int threads = 0);

/// The maximum-diagonality descrambler of a square W (m x m): P maximises
/// tr(P W) over SO(m). With W = U Sigma V^T, P = V U^T (the orthogonal
/// Procrustes solution); when det(V U^T) = -1 the last column of V is
/// negated (Kabsch), which costs the smallest singular value. The result's
/// loss is -tr(P W), its bound -sum(sigma) (reached unless the Kabsch flip
/// was needed), basis V, components U, spectrum sigma (descending),
/// basis_values and hidden empty; degenerate lists equal singular values.
/// Throws std::overflow_error when the loss or the bound is not finite.
ClosedForm descramble_diagonal(const Eigen::Ref<const Eigen::MatrixXd>& weights, int threads = 0);

/// eta(P) = tr(A P S P^T) (docs/math.md §2): the smoothness loss of the
/// descrambler P (m x m) on a hidden autocorrelation S under the operator's
/// Gram matrix A (both m x m, symmetric).
double smoothness_loss(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                       const Eigen::Ref<const Eigen::MatrixXd>& P, int threads = 0);

/// P W: a layer's rows descrambled by P (m x m; W: m x n).
Eigen::MatrixXd descramble_rows(const Eigen::Ref<const Eigen::MatrixXd>& P, const Eigen::Ref<const Eigen::MatrixXd>& W);

/// W_next P^T: the next layer's columns descrambled by P (m x m; W_next: k x m).
Eigen::MatrixXd descramble_columns(const Eigen::Ref<const Eigen::MatrixXd>& P,
                                   const Eigen::Ref<const Eigen::MatrixXd>& W_next);

/// S = W C W^T (symmetrised): the hidden autocorrelation of the linear layer
/// y = W x whose input has autocorrelation C (docs/math.md §1).
Eigen::MatrixXd hidden_autocorrelation(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                                       const Eigen::Ref<const Eigen::MatrixXd>& autocorrelation);

/// S = W~ C~ W~^T for y = W x + b, from the input's Autocorrelation (docs/math.md §1).
Eigen::MatrixXd hidden_autocorrelation(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                                       const Eigen::Ref<const Eigen::VectorXd>& bias, const Autocorrelation& input);

}  // namespace descramble
