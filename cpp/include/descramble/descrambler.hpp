// The closed-form descrambler (MATH.md §2, §3) and the smoothness operators
// it needs (MATH.md §4), usable from C++ without Python.
//
// With A = T diag(lambda ascending) T^T (the smoothness operator's Gram
// matrix) and S = U diag(mu descending) U^T (the hidden autocorrelation),
// P = T U^T minimises eta(P) = tr(A P S P^T) over all orthogonal P and
// reaches the bound sum_k lambda_k mu_k.
//
// This is the one implementation: descramble.descramble and
// descramble.smoothness in the Python package call these functions. Conventions:
//  * T is analytic for the Fourier, circular finite-difference and
//    first-order finite-difference operators (same modes, same order), and
//    comes from eigh(A) (linalg.hpp's sign convention) otherwise;
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

namespace descramble {

/// Relative tolerance under which eigenvalues count as equal (degenerate).
inline constexpr double kDegeneracyRtol = 1e-9;

/// A smoothness operator on `size()` neurons: D, A = D^T D and A's eigenbasis.
struct Smoothness {
  std::string name;         ///< e.g. "fourier(order=2)"
  Eigen::MatrixXd matrix;   ///< D (k x m); 0 x 0 when the operator was built from A
  Eigen::MatrixXd gram;     ///< A = D^T D (m x m)
  Eigen::VectorXd values;   ///< lambda: A's eigenvalues, ascending (smoothest first)
  Eigen::MatrixXd basis;    ///< T: the eigenvectors (columns), in the order of `values`
  bool analytic = false;    ///< true when T is built analytically rather than by eigh

  Index size() const noexcept { return gram.rows(); }
};

/// Fourier spectral differentiation of `order` on m points over [0, 2 pi)
/// (Weideman & Reddy's fourdif; MATH.md §4): circulant, eigenvalue k^(2 order)
/// for frequency k with the real Fourier modes as T (constant first, then
/// cos/sin pairs, which are degenerate). Quirk kept from fourdif: for odd
/// `order` and even m the Nyquist row of D is zero, so the Nyquist mode's
/// eigenvalue is 0 (it sorts right after the constant). O(m^2).
/// Throws std::invalid_argument unless m >= 1 and order >= 1, and (as the
/// Python package) when the largest eigenvalue (m/2)^(2 order) exceeds 1e15.
Smoothness fourier_smoothness(Index m, int order = 2);

/// Finite differences of `order` along the neuron axis (MATH.md §4).
///  * circular = false: the ((m - order) x m) forward difference (0 x m when
///    order >= m). For order 1, A is the path-graph Laplacian with eigenvalues
///    4 sin^2(pi k / (2m)) and DCT-II eigenvectors (analytic T); higher orders
///    use eigh.
///  * circular = true: the m x m circulant (S - I)^order, (S x)_j = x_{j+1},
///    eigenvalues (2 sin(pi k / m))^(2 order), real Fourier modes as T.
Smoothness finite_difference_smoothness(Index m, int order = 1, bool circular = false);

/// Any differentiation matrix D (k x m, m >= 1, finite, D^T D finite); T from eigh(D^T D).
Smoothness smoothness_from_matrix(const Eigen::Ref<const Eigen::MatrixXd>& D, int threads = 0);

/// An operator from its Gram matrix A = D^T D: square, finite, symmetric
/// (to 1e-12 of its largest entry; it is then symmetrised) and positive
/// semi-definite (no eigenvalue below -1e-10 of its largest entry).
/// T from eigh(A).
Smoothness smoothness_from_gram(const Eigen::Ref<const Eigen::MatrixXd>& A, int threads = 0);

/// Index groups (2 or more) of consecutive sorted values that are equal
/// within rtol * max|values| (rtol when all values are zero).
std::vector<std::vector<Index>> degenerate_groups(const Eigen::Ref<const Eigen::VectorXd>& values,
                                                  double rtol = kDegeneracyRtol);

/// Where the descrambler is not unique (MATH.md §3).
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
/// the SVD of W L with C = L L^T (MATH.md §3; not from eigh(W C W^T), which
/// squares the condition number), S = W C W^T. Behind
/// descramble.descramble(W, autocorrelation=C, smoothness=...).
ClosedForm descramble_layer(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                            const Eigen::Ref<const Eigen::MatrixXd>& autocorrelation, const Smoothness& smoothness,
                            int threads = 0);

/// As above with the input statistics streamed into an Autocorrelation.
ClosedForm descramble_layer(const Eigen::Ref<const Eigen::MatrixXd>& weights, const Autocorrelation& input,
                            const Smoothness& smoothness, int threads = 0);

/// The layer y = W x + b, handled exactly through the augmented input
/// [x; 1] (MATH.md §1): C~ = [[C, mean], [mean^T, 1]], W~ = [W b].
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

/// eta(P) = tr(A P S P^T) (MATH.md §2): the smoothness loss of the
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
/// y = W x whose input has autocorrelation C (MATH.md §1).
Eigen::MatrixXd hidden_autocorrelation(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                                       const Eigen::Ref<const Eigen::MatrixXd>& autocorrelation);

/// S = W~ C~ W~^T for y = W x + b, from the input's Autocorrelation (MATH.md §1).
Eigen::MatrixXd hidden_autocorrelation(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                                       const Eigen::Ref<const Eigen::VectorXd>& bias, const Autocorrelation& input);

}  // namespace descramble
