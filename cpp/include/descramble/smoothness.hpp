// Smoothness operators on the hidden units of a layer and their eigenbases
// (docs/math.md §4), usable from C++ without Python.
//
// A smoothness operator acts on the hidden units (neurons) of a layer, the
// rows of its weight matrix W. D is a *difference* operator; its Gram matrix
// A = D^T D is the penalty tr(A P S P^T) the descrambler minimises, and T is
// A's eigenbasis with eigenvalues ascending (smoothest first): analytic
// (exact, O(m^2)) where docs/math.md §4 gives it, from eigh(A) otherwise.
#pragma once

#include <string>
#include <vector>

#include <Eigen/Core>

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

/// The stencil of a finite difference.
enum class DifferenceScheme {
  /// x_{j+1} - x_j, applied `order` times: (S - I)^order.
  forward,
  /// The authors' circular central difference (descrambling-NN's
  /// finitediff.m): (x_{j+1} - x_{j-1}) / (2 m), applied `order` times.
  central,
};

/// Fourier spectral differentiation of `order` on m points over [0, 2 pi)
/// (Weideman & Reddy's fourdif; docs/math.md §4): circulant, eigenvalue k^(2 order)
/// for frequency k with the real Fourier modes as T (constant first, then
/// cos/sin pairs, which are degenerate). Quirk kept from fourdif: for odd
/// `order` and even m the Nyquist row of D is zero, so the Nyquist mode's
/// eigenvalue is 0 (it sorts right after the constant). O(m^2).
/// Throws std::invalid_argument unless m >= 1 and order >= 1, and (as the
/// Python package) when the largest eigenvalue (m/2)^(2 order) exceeds 1e15.
Smoothness fourier_smoothness(Index m, int order = 2);

/// Finite differences of `order` along the neuron axis (docs/math.md §4).
///  * forward, circular = false: the ((m - order) x m) forward difference
///    (0 x m when order >= m). For order 1, A is the path-graph Laplacian
///    with eigenvalues 4 sin^2(pi k / (2m)) and DCT-II eigenvectors (analytic
///    T); higher orders use eigh (of this m x m matrix).
///  * forward, circular = true: the m x m circulant (S - I)^order,
///    (S x)_j = x_{j+1}, eigenvalues (2 sin(pi k / m))^(2 order), real
///    Fourier modes as T.
///  * central (circular only): finitediff.m of descrambling-NN (Sule et al.),
///    D_1 = (S - S^T) / (2 m) and D = D_1^order; eigenvalues
///    (sin(2 pi k / m) / m)^(2 order), real Fourier modes as T. Null space:
///    the constant and, for even m, the alternating mode; k and m/2 - k share
///    an eigenvalue (degenerate groups of up to 4). For m <= 2, as
///    finitediff.m (whose wrap-around entries overwrite the stencil there):
///    D_1 = [1/2] (m = 1) and [[0, -1/4], [1/4, 0]] (m = 2).
///    circular = false throws std::invalid_argument.
/// Throws std::invalid_argument for m < 1, order < 1 or order > 24, and for
/// the central scheme when m^(-2 order) is within reach of float64 underflow.
Smoothness finite_difference_smoothness(Index m, int order = 1, bool circular = false,
                                        DifferenceScheme scheme = DifferenceScheme::forward);

/// Finite differences on a grid of hidden units of the given shape (unit
/// index = the row-major, C-order ravel of the grid index). D stacks, axis by
/// axis, I (x) ... (x) D_a (x) ... (x) I with D_a the 1-D
/// finite_difference_smoothness(shape[a], order, circular, scheme); A is the
/// Kronecker sum of the 1-D Gram matrices. T: Kronecker products of the 1-D
/// bases with eigenvalues the sums (summed smallest first, so equal
/// multisets give equal sums), sorted ascending by (eigenvalue, multi-index
/// of the 1-D modes in row-major order). No eigendecomposition of the
/// m x m matrix. Throws std::invalid_argument for an empty shape, an axis
/// below 1, more than 2^31 - 1 units, or as finite_difference_smoothness.
Smoothness grid_smoothness(const std::vector<Index>& shape, int order = 1, bool circular = false,
                           DifferenceScheme scheme = DifferenceScheme::forward);

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

}  // namespace descramble
