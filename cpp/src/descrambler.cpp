#include "descramble/descrambler.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include <Eigen/LU>

#include "blas.hpp"
#include "descramble/linalg.hpp"

namespace descramble {
namespace {

constexpr double kPi = 3.14159265358979323846;
// Largest Fourier eigenvalue accepted (descramble.smoothness._LARGEST_EIGENVALUE).
constexpr double kLargestEigenvalue = 1e15;

std::string shape(const Eigen::Ref<const Eigen::MatrixXd>& a) {
  return std::to_string(a.rows()) + " x " + std::to_string(a.cols());
}

void check_finite(const Eigen::Ref<const Eigen::MatrixXd>& a, const char* name) {
  if (!a.allFinite()) throw std::invalid_argument(std::string(name) + ": contains NaN or infinity");
}

double max_abs(const Eigen::Ref<const Eigen::MatrixXd>& a) { return a.size() ? a.cwiseAbs().maxCoeff() : 0.0; }

// A square, finite matrix symmetric to `rtol` of its largest entry, symmetrised.
Eigen::MatrixXd as_symmetric(const Eigen::Ref<const Eigen::MatrixXd>& a, const char* name, double rtol) {
  if (a.rows() != a.cols()) {
    throw std::invalid_argument(std::string(name) + ": expected a square matrix, got " + shape(a));
  }
  if (a.rows() < 1) throw std::invalid_argument(std::string(name) + ": expected at least a 1 x 1 matrix, got 0 x 0");
  check_finite(a, name);
  const double scale = std::max(max_abs(a), std::numeric_limits<double>::min());
  if (max_abs(a - a.transpose()) > rtol * scale) {
    throw std::invalid_argument(std::string(name) + ": expected a symmetric matrix");
  }
  return 0.5 * a + 0.5 * a.transpose();  // not (a + a^T) / 2, which overflows near the float64 limit
}

void check_order(Index m, int order) {
  if (m < 1) throw std::invalid_argument("m: expected a positive number of neurons, got " + std::to_string(m));
  if (order < 1) throw std::invalid_argument("order: expected a positive derivative order, got " + std::to_string(order));
}

// Real Fourier modes on m points (the constant, cos/sin pairs, and the
// alternating Nyquist mode for even m) sorted by (eigenvalue, frequency,
// cos before sin): the same columns and order as the Python package's
// smoothness._real_fourier_basis. lambda_of(k) gives frequency index k's eigenvalue.
template <class F>
void real_fourier_basis(Index m, F lambda_of, Eigen::VectorXd& values, Eigen::MatrixXd& basis) {
  struct Mode {
    double lambda;
    Index k;
    int index;
  };
  std::vector<Mode> modes;
  modes.reserve(static_cast<std::size_t>(m));
  for (Index k = 0; k <= m / 2; ++k) {
    const double lambda = lambda_of(k);
    modes.push_back({lambda, k, 0});
    if (k != 0 && 2 * k != m) modes.push_back({lambda, k, 1});
  }
  std::stable_sort(modes.begin(), modes.end(), [](const Mode& a, const Mode& b) {
    return std::tie(a.lambda, a.k, a.index) < std::tie(b.lambda, b.k, b.index);
  });
  values.resize(m);
  basis.resize(m, m);
  const double md = static_cast<double>(m);
  for (Index c = 0; c < m; ++c) {
    const Mode& mode = modes[static_cast<std::size_t>(c)];
    values[c] = mode.lambda;
    for (Index j = 0; j < m; ++j) {
      const double jd = static_cast<double>(j);
      double v;
      if (mode.k == 0) {
        v = 1.0 / std::sqrt(md);
      } else if (2 * mode.k == m) {
        v = std::cos(kPi * jd) / std::sqrt(md);
      } else {
        const double arg = 2.0 * kPi * static_cast<double>(mode.k) * jd / md;
        v = (mode.index == 0 ? std::cos(arg) : std::sin(arg)) * std::sqrt(2.0 / md);
      }
      basis(j, c) = v;
    }
  }
}

double binomial(int n, int k) {
  double r = 1.0;
  for (int i = 1; i <= k; ++i) r = r * (n - k + i) / i;
  return std::round(r);
}

void eigen_basis(Smoothness& s, int threads) {
  EighResult r = eigh(s.gram, threads);
  s.values = std::move(r.values);
  s.basis = std::move(r.vectors);
  s.analytic = false;
}

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

// P = T U^T with det +1 (MATH.md §3), then the loss and the bound.
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

// [W b] and [[C, mean], [mean^T, 1]] (MATH.md §1).
void augment(const Eigen::Ref<const Eigen::MatrixXd>& W, const Eigen::Ref<const Eigen::VectorXd>& b,
             const Autocorrelation& input, Eigen::MatrixXd& W_aug, Eigen::MatrixXd& C_aug) {
  const Index n = W.cols();
  const Eigen::MatrixXd C = input.autocorrelation();
  const Eigen::VectorXd mean = input.mean();
  C_aug.resize(n + 1, n + 1);
  C_aug.topLeftCorner(n, n) = C;
  C_aug.col(n).head(n) = mean;
  C_aug.row(n).head(n) = mean.transpose();
  C_aug(n, n) = 1.0;
  W_aug.resize(W.rows(), n + 1);
  W_aug.leftCols(n) = W;
  W_aug.col(n) = b;
}

// U, mu and S from M = W L with C = L L^T (MATH.md §3), C already validated.
ClosedForm from_layer(const Eigen::Ref<const Eigen::MatrixXd>& W, const Eigen::Ref<const Eigen::MatrixXd>& C,
                      const Smoothness& smoothness, int threads) {
  const Index m = W.rows();
  check_smoothness(smoothness, m);
  const EighResult c = eigh(C, threads);
  const Eigen::MatrixXd L = c.vectors * c.values.cwiseMax(0.0).cwiseSqrt().asDiagonal();  // rounding negatives clipped
  Eigen::MatrixXd M(m, L.cols());
  Eigen::MatrixXd S(m, m);
  {
    const detail::BlasScope blas(threads);
    detail::gemm(false, false, W, L, M);
    detail::gemm(false, true, M, M, S);
  }
  S = (S + S.transpose()).eval() / 2.0;
  SvdResult f = svd(M, /*full_matrices=*/true, threads);
  Eigen::VectorXd mu = Eigen::VectorXd::Zero(m);
  mu.head(f.s.size()) = f.s.cwiseAbs2();
  return finish(std::move(S), std::move(f.u), std::move(mu), smoothness, threads);
}

}  // namespace

Smoothness fourier_smoothness(Index m, int order) {
  check_order(m, order);
  // As descramble.smoothness.fourier: A is built in float64, so eigenvalues
  // beyond 1e15 drown its smoothest modes (0 and 1) in rounding.
  const double largest = std::pow(static_cast<double>(m) / 2.0, 2.0 * order);
  if (largest > kLargestEigenvalue) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1e", largest);
    throw std::invalid_argument("order: fourier(order=" + std::to_string(order) + ") on " + std::to_string(m) +
                                " neurons has eigenvalues up to (m/2)^(2 order) = " + text +
                                ", beyond float64's reach next to the smoothest modes' 1 (at most 1e+15); "
                                "use a lower order");
  }
  // Waves of the FFT bins as in fourdif: 0..n1, the Nyquist bin (even m;
  // zeroed for odd order), then -n1..-1. D = F^-1 diag((i w)^order) F is a
  // real circulant (the symbol is Hermitian); A = D^T D has symbol w^(2 order).
  const Index n1 = (m - 1) / 2;
  const bool nyquist = m % 2 == 0;
  const double md = static_cast<double>(m);
  std::vector<double> cos_table(static_cast<std::size_t>(m)), sin_table(static_cast<std::size_t>(m));
  for (Index r = 0; r < m; ++r) {
    cos_table[static_cast<std::size_t>(r)] = std::cos(2.0 * kPi * static_cast<double>(r) / md);
    sin_table[static_cast<std::size_t>(r)] = std::sin(2.0 * kPi * static_cast<double>(r) / md);
  }
  // Re((i w)^p e^{i theta}) = w^p * {cos, -sin, -cos, sin}[p mod 4](theta).
  auto real_part = [order](double wp, double c, double s) {
    switch (order % 4) {
      case 0: return wp * c;
      case 1: return -wp * s;
      case 2: return -wp * c;
      default: return wp * s;
    }
  };
  Eigen::VectorXd d_col(m), a_col(m);  // D(d, 0) and A(d, 0): the circulants' first columns
  for (Index d = 0; d < m; ++d) {
    double dsum = 0.0;
    double asum = 0.0;
    for (Index w = 1; w <= n1; ++w) {  // bins +w and -w together: twice the real part
      const auto at = static_cast<std::size_t>((w * d) % m);
      const double wd = static_cast<double>(w);
      dsum += 2.0 * real_part(std::pow(wd, order), cos_table[at], sin_table[at]);
      asum += 2.0 * std::pow(wd, 2.0 * order) * cos_table[at];
    }
    if (nyquist) {
      const double sign = d % 2 == 0 ? 1.0 : -1.0;  // e^{i pi d}
      const double half = md / 2.0;
      if (order % 2 == 0) {
        // (i (-m/2))^order = (-1)^(order/2) (m/2)^order, real.
        dsum += ((order / 2) % 2 == 0 ? 1.0 : -1.0) * std::pow(half, order) * sign;
        asum += std::pow(half, 2.0 * order) * sign;
      }
    }
    d_col[d] = dsum / md;
    a_col[d] = asum / md;
  }
  Smoothness s;
  s.name = "fourier(order=" + std::to_string(order) + ")";
  s.matrix.resize(m, m);
  s.gram.resize(m, m);
  for (Index l = 0; l < m; ++l)
    for (Index j = 0; j < m; ++j) {
      const Index d = ((j - l) % m + m) % m;
      s.matrix(j, l) = d_col[d];
      s.gram(j, l) = a_col[d];
    }
  const int p = order;
  real_fourier_basis(
      m,
      [&](Index k) {
        const bool quirk = nyquist && 2 * k == m && p % 2 == 1;  // fourdif's zero Nyquist row
        return quirk ? 0.0 : std::pow(static_cast<double>(k), 2.0 * p);
      },
      s.values, s.basis);
  s.analytic = true;
  return s;
}

Smoothness finite_difference_smoothness(Index m, int order, bool circular) {
  check_order(m, order);
  // Eigenvalues up to 4^order: the same float64 limit as fourier_smoothness
  // (and descramble.smoothness.finite_difference).
  if (std::pow(4.0, static_cast<double>(order)) > kLargestEigenvalue) {
    throw std::invalid_argument("order: a finite difference of order " + std::to_string(order) +
                                " has eigenvalues up to 4^order, beyond float64's reach next to the smoothest "
                                "modes (at most 1e+15, order <= 24); use a lower order");
  }
  const double md = static_cast<double>(m);
  Smoothness s;
  if (circular) {
    // (S - I)^order = sum_q C(order, q) (-1)^(order - q) S^q, S^q having 1 at (j, j + q mod m).
    Eigen::VectorXd c = Eigen::VectorXd::Zero(m);
    for (int q = 0; q <= order; ++q) {
      c[q % m] += ((order - q) % 2 == 0 ? 1.0 : -1.0) * binomial(order, q);
    }
    s.name = "finite_difference(order=" + std::to_string(order) + ", circular=True)";
    s.matrix.resize(m, m);
    for (Index j = 0; j < m; ++j)
      for (Index q = 0; q < m; ++q) s.matrix(j, (j + q) % m) = c[q];
    // A(j, l) = sum_r c[r] c[(r + l - j) mod m]: a circulant too.
    Eigen::VectorXd r = Eigen::VectorXd::Zero(m);
    for (Index e = 0; e < m; ++e)
      for (Index q = 0; q < m; ++q) r[e] += c[q] * c[(q + e) % m];
    s.gram.resize(m, m);
    for (Index j = 0; j < m; ++j)
      for (Index l = 0; l < m; ++l) s.gram(j, l) = r[((l - j) % m + m) % m];
    real_fourier_basis(
        m,
        [&](Index k) { return std::pow(2.0 * std::sin(kPi * static_cast<double>(k) / md), 2.0 * order); },
        s.values, s.basis);
    s.analytic = true;
    return s;
  }
  // Forward differences: row i holds C(order, q) (-1)^(order - q) at column i + q.
  const Index rows = order >= m ? 0 : m - order;
  s.name = "finite_difference(order=" + std::to_string(order) + ")";
  s.matrix = Eigen::MatrixXd::Zero(rows, m);
  Eigen::VectorXd stencil(order + 1);
  for (int q = 0; q <= order; ++q) stencil[q] = ((order - q) % 2 == 0 ? 1.0 : -1.0) * binomial(order, q);
  s.gram = Eigen::MatrixXd::Zero(m, m);
  for (Index i = 0; i < rows; ++i) {
    for (int q = 0; q <= order; ++q) {
      s.matrix(i, i + q) = stencil[q];
      for (int r = 0; r <= order; ++r) s.gram(i + q, i + r) += stencil[q] * stencil[r];
    }
  }
  if (order == 1) {
    // Path-graph Laplacian: DCT-II eigenvectors cos(pi k (j + 1/2) / m), all eigenvalues distinct.
    s.values.resize(m);
    s.basis.resize(m, m);
    for (Index k = 0; k < m; ++k) {
      const double kd = static_cast<double>(k);
      const double sk = std::sin(kPi * kd / (2.0 * md));
      s.values[k] = 4.0 * sk * sk;
      for (Index j = 0; j < m; ++j) s.basis(j, k) = std::cos(kPi * ((static_cast<double>(j) + 0.5) * kd) / md);
      s.basis.col(k) /= s.basis.col(k).norm();
    }
    s.analytic = true;
  } else {
    eigen_basis(s, 0);
  }
  return s;
}

Smoothness smoothness_from_matrix(const Eigen::Ref<const Eigen::MatrixXd>& D, int threads) {
  if (D.cols() < 1) throw std::invalid_argument("D: expected at least one column (neuron), got " + shape(D));
  check_finite(D, "D");
  Smoothness s;
  s.name = "matrix(" + std::to_string(D.rows()) + "x" + std::to_string(D.cols()) + ")";
  s.matrix = D;
  s.gram = D.transpose() * D;
  if (!s.gram.allFinite()) throw std::invalid_argument("D: D^T D overflows float64; rescale D");
  eigen_basis(s, threads);
  return s;
}

Smoothness smoothness_from_gram(const Eigen::Ref<const Eigen::MatrixXd>& A, int threads) {
  Smoothness s;
  s.gram = as_symmetric(A, "A", 1e-12);
  s.name = "gram(" + std::to_string(A.rows()) + "x" + std::to_string(A.rows()) + ")";
  eigen_basis(s, threads);
  const double scale = std::max(max_abs(s.gram), std::numeric_limits<double>::min());
  if (s.values[0] < -1e-10 * scale) {
    throw std::invalid_argument(
        "A: expected a positive semi-definite matrix (A = D^T D), found the eigenvalue " +
        std::to_string(s.values[0]));
  }
  return s;
}

std::vector<std::vector<Index>> degenerate_groups(const Eigen::Ref<const Eigen::VectorXd>& values, double rtol) {
  std::vector<std::vector<Index>> groups;
  const Index n = values.size();
  if (n < 2) return groups;
  const double largest = values.cwiseAbs().maxCoeff();
  const double tol = rtol * (largest > 0.0 ? largest : 1.0);
  Index start = 0;
  for (Index i = 1; i <= n; ++i) {
    if (i == n || std::abs(values[i] - values[i - 1]) > tol) {
      if (i - start >= 2) {
        std::vector<Index> g;
        for (Index k = start; k < i; ++k) g.push_back(k);
        groups.push_back(std::move(g));
      }
      start = i;
    }
  }
  return groups;
}

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
  return from_layer(weights, input.autocorrelation(), smoothness, threads);
}

ClosedForm descramble_layer(const Eigen::Ref<const Eigen::MatrixXd>& weights,
                            const Eigen::Ref<const Eigen::VectorXd>& bias, const Autocorrelation& input,
                            const Smoothness& smoothness, int threads) {
  check_weights(weights);
  check_width(input.n_features(), weights.cols());
  check_bias(bias, weights.rows());
  Eigen::MatrixXd W_aug, C_aug;
  augment(weights, bias, input, W_aug, C_aug);
  return from_layer(W_aug, C_aug, smoothness, threads);
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
  Eigen::MatrixXd W_aug, C_aug;
  augment(weights, bias, input, W_aug, C_aug);
  const Eigen::MatrixXd S = W_aug * C_aug * W_aug.transpose();
  return (S + S.transpose()) / 2.0;
}

}  // namespace descramble
