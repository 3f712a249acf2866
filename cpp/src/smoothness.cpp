#include "descramble/smoothness.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include "checks.hpp"
#include "descramble/linalg.hpp"

namespace descramble {
namespace {

using detail::as_symmetric;
using detail::check_finite;
using detail::max_abs;
using detail::shape;

constexpr double kPi = 3.14159265358979323846;
// Largest Fourier eigenvalue accepted (descramble.smoothness._LARGEST_EIGENVALUE).
constexpr double kLargestEigenvalue = 1e15;

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

// The forward and central differences' order limit: eigenvalues up to 4^order (forward) must stay within
// float64's reach next to the smoothest modes (as descramble.smoothness.finite_difference).
void check_difference_order(int order) {
  if (std::pow(4.0, static_cast<double>(order)) > kLargestEigenvalue) {
    throw std::invalid_argument("order: a finite difference of order " + std::to_string(order) +
                                " has eigenvalues up to 4^order, beyond float64's reach next to the smoothest "
                                "modes (at most 1e+15, order <= 24); use a lower order");
  }
}

// D and A = D^T D for the circulant D whose row j holds c[q] at column j + q mod m.
void circulant(const Eigen::VectorXd& c, Smoothness& s) {
  const Index m = c.size();
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
}

// The authors' circular central difference (finitediff.m of descrambling-NN):
// D_1 = (S - S^T) / (2 m), D = D_1^order.
Smoothness central_difference(Index m, int order, bool circular) {
  if (!circular) {
    throw std::invalid_argument(
        "scheme: 'central' is the authors' circular operator (finitediff.m) and has no non-circular form here; "
        "pass circular=True, or scheme='forward' for a non-circular difference");
  }
  check_difference_order(order);
  const double md = static_cast<double>(m);
  // A's eigenvalues are at most m^(-2 order): keep them (and A's entries) far from float64's underflow.
  if (2.0 * order * std::log10(std::max(md, 2.0)) > 280.0) {
    throw std::invalid_argument("order: a central difference of order " + std::to_string(order) + " on " +
                                std::to_string(m) + " neurons has eigenvalues below m^(-2 order), within reach "
                                "of float64's underflow (1e-280 at least); use a lower order");
  }
  Smoothness s;
  s.name = "finite_difference(order=" + std::to_string(order) + ", circular=True, scheme=central)";
  if (m <= 2) {
    // finitediff.m writes the wrap-around entries last, over the stencil: D_1 = [1/2] for m = 1 and
    // [[0, -1/4], [1/4, 0]] for m = 2 (powers of two: the power below is exact).
    Eigen::MatrixXd d1 = Eigen::MatrixXd::Zero(m, m);
    for (Index i = 0; i + 1 < m; ++i) d1(i, i + 1) = 0.5;
    for (Index i = 1; i < m; ++i) d1(i, i - 1) = -0.5;
    d1(0, m - 1) = -0.5;
    d1(m - 1, 0) = 0.5;
    d1 /= md;
    s.matrix = Eigen::MatrixXd::Identity(m, m);
    for (int p = 0; p < order; ++p) s.matrix = (s.matrix * d1).eval();
    s.gram = s.matrix.transpose() * s.matrix;
  } else {
    // ((S - S^-1) / (2 m))^order = (2 m)^-order sum_q C(order, q) (-1)^(order - q) S^(2 q - order):
    // a circulant, row j holding c[q] at column j + q mod m.
    const double scale = std::pow(2.0 * md, -static_cast<double>(order));
    Eigen::VectorXd c = Eigen::VectorXd::Zero(m);
    for (int q = 0; q <= order; ++q) {
      const Index shift = (((2 * static_cast<Index>(q) - order) % m) + m) % m;
      c[shift] += ((order - q) % 2 == 0 ? 1.0 : -1.0) * binomial(order, q) * scale;
    }
    circulant(c, s);
  }
  real_fourier_basis(
      m,
      [&](Index k) {
        if (m <= 2) return std::pow(0.5 / md, 2.0 * order);
        // sin(2 pi k / m) = sin(pi j / m) with j = min(2k, m - 2k): equal eigenvalues come out equal.
        const Index j = std::min(2 * k, m - 2 * k);
        return std::pow(std::sin(kPi * static_cast<double>(j) / md) / md, 2.0 * order);
      },
      s.values, s.basis);
  s.analytic = true;
  return s;
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

Smoothness finite_difference_smoothness(Index m, int order, bool circular, DifferenceScheme scheme) {
  check_order(m, order);
  if (scheme == DifferenceScheme::central) return central_difference(m, order, circular);
  check_difference_order(order);
  const double md = static_cast<double>(m);
  Smoothness s;
  if (circular) {
    // (S - I)^order = sum_q C(order, q) (-1)^(order - q) S^q, S^q having 1 at (j, j + q mod m).
    Eigen::VectorXd c = Eigen::VectorXd::Zero(m);
    for (int q = 0; q <= order; ++q) {
      c[q % m] += ((order - q) % 2 == 0 ? 1.0 : -1.0) * binomial(order, q);
    }
    s.name = "finite_difference(order=" + std::to_string(order) + ", circular=True)";
    circulant(c, s);
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

Smoothness grid_smoothness(const std::vector<Index>& shape, int order, bool circular, DifferenceScheme scheme) {
  if (shape.empty()) throw std::invalid_argument("shape: expected at least one axis, got ()");
  constexpr Index kMaxUnits = 2147483647;  // 2^31 - 1: m x m matrices must stay addressable
  Index m = 1;
  std::string dims;
  for (std::size_t a = 0; a < shape.size(); ++a) {
    if (shape[a] < 1) {
      throw std::invalid_argument("shape: axis " + std::to_string(a) + " has size " + std::to_string(shape[a]) +
                                  ", expected a positive size");
    }
    if (shape[a] > kMaxUnits / m) {
      throw std::invalid_argument("shape: the grid has more than 2^31 - 1 hidden units");
    }
    m *= shape[a];
    dims += (a ? "x" : "") + std::to_string(shape[a]);
  }
  if (order < 1) throw std::invalid_argument("order: expected a positive derivative order, got " + std::to_string(order));
  // The 1-D operators, one per distinct axis length (equal axes share their numbers exactly).
  std::map<Index, Smoothness> line;
  for (Index n : shape)
    if (!line.count(n)) line.emplace(n, finite_difference_smoothness(n, order, circular, scheme));
  const std::size_t d = shape.size();
  std::vector<const Smoothness*> ops(d);
  bool analytic = true;
  Index rows = 0;
  for (std::size_t a = 0; a < d; ++a) {
    ops[a] = &line.at(shape[a]);
    analytic = analytic && ops[a]->analytic;
    rows += ops[a]->matrix.rows() * (m / shape[a]);
  }
  Smoothness s;
  s.name = "grid(" + dims + ", order=" + std::to_string(order) + (circular ? ", circular=True" : "") +
           (scheme == DifferenceScheme::central ? ", scheme=central" : "") + ")";
  s.analytic = analytic;
  // D: axis a contributes I_pre (x) D_a (x) I_post, pre/post the products of the lengths before/after a.
  s.matrix = Eigen::MatrixXd::Zero(rows, m);
  s.gram = Eigen::MatrixXd::Zero(m, m);
  Index row0 = 0;
  Index pre = 1;
  for (std::size_t a = 0; a < d; ++a) {
    const Index n = shape[a];
    const Index post = m / (pre * n);
    const Eigen::MatrixXd& Da = ops[a]->matrix;
    const Eigen::MatrixXd& Aa = ops[a]->gram;
    const Index k = Da.rows();
    for (Index p = 0; p < pre; ++p)
      for (Index q = 0; q < post; ++q) {
        for (Index i = 0; i < k; ++i)
          for (Index j = 0; j < n; ++j) s.matrix(row0 + (p * k + i) * post + q, (p * n + j) * post + q) = Da(i, j);
        for (Index i = 0; i < n; ++i)
          for (Index j = 0; j < n; ++j) s.gram((p * n + i) * post + q, (p * n + j) * post + q) += Aa(i, j);
      }
    row0 += pre * k * post;
    pre *= n;
  }
  // Modes: one 1-D mode per axis (row-major multi-index c), eigenvalue the sum of theirs.
  struct Mode {
    double value;
    Index index;  // the row-major ravel of the multi-index, which orders like the multi-index
  };
  std::vector<Mode> modes(static_cast<std::size_t>(m));
  std::vector<Index> c(d, 0);
  std::vector<double> parts(d);
  for (Index idx = 0; idx < m; ++idx) {
    for (std::size_t a = 0; a < d; ++a) parts[a] = ops[a]->values[c[a]];
    std::sort(parts.begin(), parts.end());  // smallest first: equal multisets give equal sums
    double v = 0.0;
    for (double x : parts) v += x;
    modes[static_cast<std::size_t>(idx)] = {v, idx};
    for (std::size_t a = d; a-- > 0;) {  // next multi-index, last axis fastest
      if (++c[a] < shape[a]) break;
      c[a] = 0;
    }
  }
  std::sort(modes.begin(), modes.end(),
            [](const Mode& x, const Mode& y) { return std::tie(x.value, x.index) < std::tie(y.value, y.index); });
  s.values.resize(m);
  s.basis.resize(m, m);
  std::vector<Index> r(d);
  for (Index col = 0; col < m; ++col) {
    const Mode& mode = modes[static_cast<std::size_t>(col)];
    s.values[col] = mode.value;
    Index rest = mode.index;
    for (std::size_t a = d; a-- > 0;) {
      c[a] = rest % shape[a];
      rest /= shape[a];
    }
    std::fill(r.begin(), r.end(), 0);
    for (Index row = 0; row < m; ++row) {  // T(row, col) = prod_a T_a(r_a, c_a)
      double v = 1.0;
      for (std::size_t a = 0; a < d; ++a) v *= ops[a]->basis(r[a], c[a]);
      s.basis(row, col) = v;
      for (std::size_t a = d; a-- > 0;) {
        if (++r[a] < shape[a]) break;
        r[a] = 0;
      }
    }
  }
  return s;
}

}  // namespace descramble
