// The closed-form descrambler and its smoothness operators (docs/math.md §3, §4),
// checked against independent constructions: Weideman & Reddy's explicit
// fourdif formulas, eigen-equations with the analytic spectra, random
// orthogonal matrices against the bound, and the isotropic SVD identity.
#include <cmath>
#include <limits>
#include <random>

#include <Eigen/Dense>

#include "check.hpp"
#include "descramble/autocorrelation.hpp"
#include "descramble/descrambler.hpp"
#include "reference.hpp"

using namespace descramble;
using namespace descramble::testing;

namespace {

constexpr double kPi = 3.14159265358979323846;

// fourdif(N, 1) and fourdif(N, 2) from their closed forms (Weideman & Reddy
// 2000, Table 3): D(j, l) = c((j - l) mod N), a Toeplitz/circulant matrix.
Eigen::MatrixXd fourdif_formula(Index n, int order) {
  const double h = 2.0 * kPi / static_cast<double>(n);
  Eigen::VectorXd c(n);
  for (Index k = 0; k < n; ++k) {
    const double sign = k % 2 == 0 ? 1.0 : -1.0;
    const double x = static_cast<double>(k) * h / 2.0;
    if (order == 1) {
      c[k] = k == 0 ? 0.0 : (n % 2 == 0 ? 0.5 * sign / std::tan(x) : 0.5 * sign / std::sin(x));
    } else {
      if (k == 0) {
        c[k] = n % 2 == 0 ? -kPi * kPi / (3.0 * h * h) - 1.0 / 6.0 : -kPi * kPi / (3.0 * h * h) + 1.0 / 12.0;
      } else {
        c[k] = n % 2 == 0 ? -0.5 * sign / (std::sin(x) * std::sin(x))
                          : -0.5 * sign / (std::sin(x) * std::tan(x));
      }
    }
  }
  Eigen::MatrixXd d(n, n);
  for (Index j = 0; j < n; ++j)
    for (Index l = 0; l < n; ++l) d(j, l) = c[((j - l) % n + n) % n];
  return d;
}

double scale_of(const Eigen::MatrixXd& a) { return std::max(1.0, a.cwiseAbs().maxCoeff()); }

// T orthonormal, A T = T diag(values), values ascending, gram = D^T D.
void check_operator(const Smoothness& s, double rtol) {
  const Index m = s.size();
  const double scale = scale_of(s.gram);
  CHECK_CLOSE(s.basis.transpose() * s.basis, Eigen::MatrixXd::Identity(m, m), 1e-12 * m);
  CHECK_CLOSE(s.gram * s.basis, s.basis * s.values.asDiagonal(), rtol * scale);
  for (Index i = 1; i < m; ++i) CHECK(s.values[i] >= s.values[i - 1]);
  if (s.matrix.size() > 0) CHECK_CLOSE(s.matrix.transpose() * s.matrix, s.gram, rtol * scale);
}

Eigen::MatrixXd random_orthogonal(Index m, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  Eigen::MatrixXd g(m, m);
  for (Index i = 0; i < g.size(); ++i) g.data()[i] = normal(rng);
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(g);
  return qr.householderQ() * Eigen::MatrixXd::Identity(m, m);
}

Eigen::MatrixXd random_spd(Index m, unsigned seed) {
  const Eigen::MatrixXd x = random_matrix(3 * m, m, seed);
  return x.transpose() * x / static_cast<double>(3 * m);
}

double eta(const Eigen::MatrixXd& A, const Eigen::MatrixXd& P, const Eigen::MatrixXd& S) {
  return (A * P * S * P.transpose()).trace();
}

void check_descrambler(const ClosedForm& r, const Smoothness& s, const Eigen::MatrixXd& S) {
  const Index m = S.rows();
  CHECK_CLOSE(r.P.transpose() * r.P, Eigen::MatrixXd::Identity(m, m), 1e-12 * m);
  CHECK(std::abs(r.P.determinant() - 1.0) < 1e-10);
  CHECK(std::abs(r.loss - r.bound) <= 1e-10 * std::max(std::abs(r.bound), 1e-300));
  CHECK(std::abs(eta(s.gram, r.P, S) - r.loss) <= 1e-10 * std::abs(r.loss));
  // The bound from the sorted spectra (von Neumann / Ruhe), computed independently.
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(S);
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> ea(s.gram);
  const double bound = ea.eigenvalues().dot(es.eigenvalues().reverse());
  CHECK(std::abs(r.bound - bound) <= 1e-9 * std::abs(bound));
}

}  // namespace

TEST(fourier_matches_fourdif_formulas) {
  for (Index m : {2, 3, 6, 7, 16, 17, 40}) {
    for (int order : {1, 2}) {
      const Smoothness s = fourier_smoothness(m, order);
      const Eigen::MatrixXd d = fourdif_formula(m, order);
      CHECK_CLOSE(s.matrix, d, 1e-11 * scale_of(d));
      CHECK_CLOSE(s.gram, d.transpose() * d, 1e-11 * scale_of(d.transpose() * d));
      CHECK(s.analytic);
    }
  }
}

TEST(fourier_spectrum_is_k_to_the_2p_with_real_fourier_modes) {
  for (Index m : {1, 2, 5, 8, 9, 24}) {
    for (int order : {1, 2, 3, 4}) {
      const Smoothness s = fourier_smoothness(m, order);
      check_operator(s, 1e-11);
      CHECK(s.name == "fourier(order=" + std::to_string(order) + ")");
      // Expected spectrum: 0, then k^(2p) twice for 0 < k < m/2, and the
      // Nyquist frequency once for even m: (m/2)^(2p), or 0 for odd p (fourdif quirk).
      std::vector<double> expected{0.0};
      const bool quirk = m % 2 == 0 && order % 2 == 1;
      if (quirk) expected.push_back(0.0);
      for (Index k = 1; 2 * k < m; ++k) {
        expected.push_back(std::pow(double(k), 2 * order));
        expected.push_back(std::pow(double(k), 2 * order));
      }
      if (m % 2 == 0 && !quirk && m > 0) expected.push_back(std::pow(m / 2.0, 2 * order));
      CHECK(static_cast<Index>(expected.size()) == m);
      for (Index i = 0; i < m && i < static_cast<Index>(expected.size()); ++i) {
        CHECK_CLOSE(s.values[i], expected[static_cast<std::size_t>(i)], 1e-12 * std::max(1.0, expected.back()));
      }
      // Column 0 is the constant; with the quirk, column 1 is the alternating Nyquist mode.
      CHECK_CLOSE(s.basis.col(0), Eigen::VectorXd::Constant(m, 1.0 / std::sqrt(double(m))), 1e-15);
      if (quirk) {
        Eigen::VectorXd alt(m);
        for (Index j = 0; j < m; ++j) alt[j] = (j % 2 == 0 ? 1.0 : -1.0) / std::sqrt(double(m));
        CHECK_CLOSE(s.basis.col(1), alt, 1e-14);
        CHECK_CLOSE(s.matrix * alt, Eigen::VectorXd::Zero(m), 1e-10 * scale_of(s.matrix));
      }
    }
  }
  // Degenerate pairs reported for m = 6, order 2: {1, 2}, {3, 4}; Nyquist (5) alone.
  const auto groups = degenerate_groups(fourier_smoothness(6, 2).values);
  CHECK(groups.size() == 2);
  if (groups.size() == 2) CHECK(groups[0] == std::vector<Index>({1, 2}) && groups[1] == std::vector<Index>({3, 4}));
}

TEST(finite_difference_operators) {
  for (Index m : {1, 2, 7, 12}) {
    for (int order : {1, 2, 3}) {
      const Smoothness c = finite_difference_smoothness(m, order, true);
      check_operator(c, 1e-11);
      CHECK(c.analytic);
      // (S - I)^order applied to x, directly.
      const Eigen::VectorXd x = random_matrix(m, 1, 3 + unsigned(m));
      Eigen::VectorXd y = x;
      for (int q = 0; q < order; ++q) {
        Eigen::VectorXd next(m);
        for (Index j = 0; j < m; ++j) next[j] = y[(j + 1) % m] - y[j];
        y = next;
      }
      CHECK_CLOSE(c.matrix * x, y, 1e-12 * scale_of(c.matrix) * x.cwiseAbs().maxCoeff());
      // Eigenvalues (2 sin(pi k / m))^(2 order), each 0 < k < m/2 twice.
      std::vector<double> expected;
      for (Index k = 0; k < m; ++k) expected.push_back(std::pow(2.0 * std::sin(kPi * double(k) / double(m)), 2 * order));
      std::sort(expected.begin(), expected.end());
      for (Index i = 0; i < m; ++i) CHECK_CLOSE(c.values[i], expected[std::size_t(i)], 1e-11 * std::pow(4.0, order));

      const Smoothness f = finite_difference_smoothness(m, order, false);
      check_operator(f, 1e-11);
      CHECK(f.matrix.rows() == std::max<Index>(m - order, 0) && f.matrix.cols() == m);
      if (m > order) {
        Eigen::VectorXd z = x;
        for (int q = 0; q < order; ++q) z = (z.tail(z.size() - 1) - z.head(z.size() - 1)).eval();
        CHECK_CLOSE(f.matrix * x, z, 1e-12 * std::pow(2.0, order) * x.cwiseAbs().maxCoeff());
      } else {
        CHECK(f.gram.isZero());
      }
      if (order == 1) {  // path-graph Laplacian: 4 sin^2(pi k / (2m)), DCT-II vectors
        CHECK(f.analytic);
        for (Index k = 0; k < m; ++k) {
          CHECK_CLOSE(f.values[k], 4.0 * std::pow(std::sin(kPi * double(k) / (2.0 * double(m))), 2), 1e-14);
        }
      }
    }
  }
}

TEST(closed_form_reaches_the_bound_and_beats_random_rotations) {
  std::mt19937_64 rng(11);
  for (Index m : {1, 2, 5, 12, 31}) {
    const Eigen::MatrixXd S = random_spd(m, 100 + unsigned(m));
    const Smoothness ops[] = {fourier_smoothness(m, 2), fourier_smoothness(m, 1),
                              finite_difference_smoothness(m, 1), finite_difference_smoothness(m, 2, true),
                              smoothness_from_matrix(random_matrix(m + 2, m, 7 + unsigned(m)))};
    for (const Smoothness& s : ops) {
      const ClosedForm r = descramble_closed_form(S, s);
      check_descrambler(r, s, S);
      CHECK_CLOSE(r.P, s.basis * r.components.transpose(), 1e-12);
      for (int trial = 0; trial < 50; ++trial) {
        const Eigen::MatrixXd Q = random_orthogonal(m, rng);
        CHECK(eta(s.gram, Q, S) >= r.bound - 1e-10 * std::abs(r.bound));
      }
    }
  }
  // The Gram-matrix overload equals smoothness_from_gram.
  const Eigen::MatrixXd S = random_spd(9, 5);
  const Eigen::MatrixXd A = random_spd(9, 6);
  const ClosedForm a = descramble_closed_form(S, A);
  const ClosedForm b = descramble_closed_form(S, smoothness_from_gram(A));
  CHECK(a.P == b.P);
  check_descrambler(a, smoothness_from_gram(A), S);
}

TEST(closed_form_sign_convention_and_degeneracy_report) {
  const Index m = 8;
  const Eigen::MatrixXd S = random_spd(m, 21);
  const Smoothness s = finite_difference_smoothness(m, 1);
  const ClosedForm r = descramble_closed_form(S, s);
  // U: eigenvectors of S, descending; every column but possibly the last
  // has its largest-magnitude entry positive.
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(S);
  CHECK_CLOSE(r.spectrum, es.eigenvalues().reverse(), 1e-12 * es.eigenvalues().maxCoeff());
  CHECK_CLOSE(S * r.components, r.components * r.spectrum.asDiagonal(), 1e-12 * r.spectrum[0]);
  for (Index j = 0; j + 1 < m; ++j) {
    Index at;
    r.components.col(j).cwiseAbs().maxCoeff(&at);
    CHECK(r.components(at, j) > 0);
  }
  CHECK(r.degenerate.empty());
  CHECK_CLOSE(r.hidden, S, 1e-15);
  // Deterministic.
  CHECK(descramble_closed_form(S, s).P == r.P);

  // Fourier: degenerate pairs reported as "smoothness"; an isotropic S as one "spectrum" group.
  const ClosedForm f = descramble_closed_form(Eigen::MatrixXd::Identity(m, m), fourier_smoothness(m, 2));
  int smooth_groups = 0, spectrum_groups = 0;
  for (const auto& d : f.degenerate) {
    if (d.kind == "smoothness") ++smooth_groups;
    if (d.kind == "spectrum") {
      ++spectrum_groups;
      CHECK(d.indices.size() == std::size_t(m));
    }
  }
  CHECK(smooth_groups == 3 && spectrum_groups == 1);
  CHECK(std::abs(f.loss - f.bound) <= 1e-10 * f.bound);
}

TEST(isotropic_input_gives_the_svd_along_the_smooth_basis) {
  // C = c I: P W = T Sigma V^T (docs/math.md §3), row k up to sign.
  for (Index m : {4, 6}) {
    const Index n = 9;
    const Eigen::MatrixXd W = random_matrix(m, n, 31 + unsigned(m));
    const double c = 2.5;
    const Smoothness s = finite_difference_smoothness(m, 1);
    const ClosedForm r = descramble_layer(W, c * Eigen::MatrixXd::Identity(n, n), s);
    check_descrambler(r, s, c * W * W.transpose());
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(W, Eigen::ComputeThinU | Eigen::ComputeThinV);
    const Eigen::MatrixXd rows = s.basis.transpose() * r.apply(W);  // = E Sigma V^T
    for (Index k = 0; k < m; ++k) {
      const Eigen::RowVectorXd expected = svd.singularValues()[k] * svd.matrixV().col(k).transpose();
      const double err = std::min((rows.row(k) - expected).cwiseAbs().maxCoeff(),
                                  (rows.row(k) + expected).cwiseAbs().maxCoeff());
      CHECK(err < 1e-10 * svd.singularValues()[0]);
    }
    CHECK_CLOSE(r.spectrum, c * svd.singularValues().cwiseAbs2(), 1e-10 * c * svd.singularValues()[0] * svd.singularValues()[0]);
  }
}

TEST(layer_forms_agree_with_the_hidden_autocorrelation) {
  const Index m = 7, n = 5, rows = 400;
  const RowMatrix x = random_matrix(rows, n, 41, 0.5);
  const Eigen::MatrixXd W = random_matrix(m, n, 42);
  const Eigen::VectorXd b = random_matrix(m, 1, 43);
  Autocorrelation acc(n);
  acc.update(ChunkView::row_major(x.data(), rows, n));
  const Smoothness s = fourier_smoothness(m, 2);

  // Reference hidden autocorrelations straight from the samples.
  const Eigen::MatrixXd y = x * W.transpose();
  const Eigen::MatrixXd yb = y.rowwise() + b.transpose();
  const Eigen::MatrixXd S = y.transpose() * y / double(rows);
  const Eigen::MatrixXd Sb = yb.transpose() * yb / double(rows);
  CHECK_CLOSE(hidden_autocorrelation(W, acc.autocorrelation()), S, 1e-12 * scale_of(S));
  CHECK_CLOSE(hidden_autocorrelation(W, b, acc), Sb, 1e-12 * scale_of(Sb));

  // m > n: rank-deficient S, trailing mu zero.
  const ClosedForm layer = descramble_layer(W, acc, s);
  check_descrambler(layer, s, S);
  CHECK_CLOSE(layer.hidden, S, 1e-12 * scale_of(S));
  CHECK_CLOSE(layer.spectrum.tail(m - n), Eigen::VectorXd::Zero(m - n), 1e-12 * layer.spectrum(0));
  // The matrix form factors E[x x^T], the accumulator form the covariance and the mean
  // separately: the same S, spectrum and loss (P is free in the null space of S).
  const ClosedForm matrix = descramble_layer(W, acc.autocorrelation(), s);
  CHECK_CLOSE(matrix.spectrum, layer.spectrum, 1e-12 * layer.spectrum(0));
  CHECK(std::abs(matrix.loss - layer.loss) <= 1e-10 * layer.loss);
  CHECK(std::abs(matrix.bound - layer.bound) <= 1e-10 * layer.bound);

  const ClosedForm biased = descramble_layer(W, b, acc, s);
  check_descrambler(biased, s, Sb);
  CHECK(std::abs(eta(s.gram, biased.P, Sb) - biased.bound) <= 1e-10 * biased.bound);

  // Full rank, well separated spectrum and a non-degenerate operator: the
  // SVD route and the eigh(S) route give the same P.
  const Eigen::MatrixXd W2 = random_matrix(n, n, 44);
  const Smoothness fd = finite_difference_smoothness(n, 1);
  const ClosedForm via_svd = descramble_layer(W2, acc, fd);
  const ClosedForm via_eigh = descramble_closed_form(hidden_autocorrelation(W2, acc.autocorrelation()), fd);
  CHECK_CLOSE(via_svd.P, via_eigh.P, 1e-8);
  CHECK(std::abs(via_svd.loss - via_eigh.loss) <= 1e-10 * via_eigh.loss);
}

TEST(descrambler_rejects_bad_input) {
  const Eigen::MatrixXd S = random_spd(4, 1);
  const Smoothness s = fourier_smoothness(4);
  CHECK_THROWS_WITH(descramble_closed_form(Eigen::MatrixXd::Ones(3, 4), s), std::invalid_argument,
                    "hidden: expected a square matrix, got 3 x 4");
  CHECK_THROWS_WITH(descramble_closed_form(Eigen::MatrixXd(0, 0), s), std::invalid_argument, "hidden: expected at least");
  Eigen::MatrixXd bad = S;
  bad(1, 2) = NAN;
  CHECK_THROWS_WITH(descramble_closed_form(bad, s), std::invalid_argument, "hidden: contains NaN or infinity");
  bad = S;
  bad(0, 3) += 1.0;
  CHECK_THROWS_WITH(descramble_closed_form(bad, s), std::invalid_argument, "hidden: expected a symmetric matrix");
  CHECK_THROWS_WITH(descramble_closed_form(S, fourier_smoothness(5)), std::invalid_argument,
                    "smoothness: the operator acts on 5 neurons, the layer has 4");
  Smoothness broken = s;
  broken.values.resize(3);
  CHECK_THROWS_WITH(descramble_closed_form(S, broken), std::invalid_argument, "smoothness: inconsistent operator");
  CHECK_THROWS_WITH(descramble_closed_form(S, Eigen::MatrixXd(Eigen::MatrixXd::Identity(3, 3))), std::invalid_argument,
                    "A: expected 4 x 4");
  CHECK_THROWS_WITH(descramble_closed_form(S, Eigen::MatrixXd(-Eigen::MatrixXd::Identity(4, 4))), std::invalid_argument,
                    "A: expected a positive semi-definite matrix");
  Eigen::MatrixXd asym = Eigen::MatrixXd::Identity(4, 4);
  asym(0, 1) = 0.5;
  CHECK_THROWS_WITH(smoothness_from_gram(asym), std::invalid_argument, "A: expected a symmetric matrix");
  CHECK_THROWS_WITH(smoothness_from_matrix(Eigen::MatrixXd(3, 0)), std::invalid_argument, "D: expected at least one column");
  CHECK_THROWS_WITH(fourier_smoothness(0), std::invalid_argument, "m: expected a positive number");
  CHECK_THROWS_WITH(fourier_smoothness(4, 0), std::invalid_argument, "order: expected a positive derivative order");
  // As descramble.smoothness.fourier: (m/2)^(2 order) above 1e15 is refused (64 points: order 5 is 2^50 = 1.1e15).
  CHECK_THROWS_WITH(fourier_smoothness(64, 5), std::invalid_argument,
                    "order: fourier(order=5) on 64 neurons has eigenvalues up to (m/2)^(2 order) = 1.1e+15");
  CHECK_THROWS_WITH(fourier_smoothness(64, 200), std::invalid_argument, "use a lower order");
  CHECK(fourier_smoothness(64, 4).values.maxCoeff() == std::pow(32.0, 8));
  CHECK(fourier_smoothness(2, 1000).gram.allFinite());
  // 2 * order overflowed int (pow(0, INT_MIN) = inf for the constant mode).
  for (Index m : {1, 2}) {
    const Smoothness big = fourier_smoothness(m, std::numeric_limits<int>::max());
    CHECK(big.values.allFinite() && big.values[0] == 0.0);
  }
  // A loss beyond float64 is an error, not inf/NaN (descramble.descramble raises ValueError).
  CHECK_THROWS_WITH(descramble_closed_form(Eigen::MatrixXd(1e307 * Eigen::MatrixXd::Identity(8, 8)), fourier_smoothness(8)),
                    std::overflow_error, "the smoothness loss overflows float64");
  CHECK_THROWS_WITH(finite_difference_smoothness(4, 2000, true), std::invalid_argument,
                    "order: a finite difference of order 2000 has eigenvalues up to 4^order");
  CHECK_THROWS_WITH(finite_difference_smoothness(40, 25, false), std::invalid_argument, "order <= 24");
  CHECK(finite_difference_smoothness(40, 24, true).gram.allFinite());
  CHECK_THROWS_WITH(finite_difference_smoothness(4, -1, true), std::invalid_argument, "order:");

  const Eigen::MatrixXd W = random_matrix(4, 3, 2);
  CHECK_THROWS_WITH(descramble_layer(W, random_spd(5, 3), s), std::invalid_argument,
                    "autocorrelation: the input has 5 features, the weights have 3 columns");
  Eigen::MatrixXd Wnan = W;
  Wnan(0, 0) = INFINITY;
  CHECK_THROWS_WITH(descramble_layer(Wnan, random_spd(3, 3), s), std::invalid_argument, "weights: contains NaN");
  CHECK_THROWS_WITH(descramble_layer(W, random_spd(3, 3), fourier_smoothness(3)), std::invalid_argument,
                    "the operator acts on 3 neurons, the layer has 4");
  Autocorrelation acc(3);
  const RowMatrix x = random_matrix(10, 3, 4);
  acc.update(ChunkView::row_major(x.data(), 10, 3));
  CHECK_THROWS_WITH(descramble_layer(W, Eigen::VectorXd::Ones(3), acc, s), std::invalid_argument,
                    "bias: expected 4 entries");
  CHECK_THROWS_WITH(hidden_autocorrelation(W, Eigen::VectorXd::Constant(4, NAN), acc), std::invalid_argument,
                    "bias: contains NaN");
  CHECK_THROWS_WITH(descramble_layer(W, Autocorrelation(2), s), std::invalid_argument, "the input has 2 features");
  CHECK_THROWS_WITH(descramble_layer(W, Autocorrelation(3), s), std::domain_error, "no samples");

  const ClosedForm r = descramble_closed_form(S, s);
  CHECK_THROWS_WITH(r.apply(W.transpose()), std::invalid_argument, "W: expected 4 rows");
  CHECK_THROWS_WITH(r.apply_next(W), std::invalid_argument, "W_next: expected 4 columns");
  CHECK_CLOSE(r.apply(W), r.P * W, 1e-15);
  CHECK_CLOSE(r.apply_next(W.transpose()), W.transpose() * r.P.transpose(), 1e-15);
}

TEST(diagonal_criterion_is_procrustes_with_the_kabsch_fix) {
  for (Index m : {1, 2, 5, 12}) {
    for (unsigned seed : {1u, 2u, 3u, 4u}) {
      const Eigen::MatrixXd W = random_matrix(m, m, seed + 40 * unsigned(m));
      const ClosedForm r = descramble_diagonal(W);
      CHECK_CLOSE(r.P * r.P.transpose(), Eigen::MatrixXd::Identity(m, m), 1e-12);
      CHECK(r.P.determinant() > 0.0);
      CHECK_CLOSE(r.loss, -(r.P * W).trace(), 1e-12 * (1.0 + std::abs(r.loss)));
      const Eigen::JacobiSVD<Eigen::MatrixXd> svd(W);
      CHECK_CLOSE(r.bound, -svd.singularValues().sum(), 1e-10 * (1.0 + std::abs(r.bound)));
      // On SO(m) the optimum is the bound, or the bound plus twice the smallest
      // singular value when det(W) < 0 (Kabsch).
      const double gap = W.determinant() < 0.0 ? 2.0 * svd.singularValues()[m - 1] : 0.0;
      CHECK_CLOSE(r.loss, r.bound + gap, 1e-10 * (1.0 + std::abs(r.bound)));
      std::mt19937_64 rng(seed);
      for (int trial = 0; trial < 20; ++trial) {
        Eigen::MatrixXd Q = random_orthogonal(m, rng);
        if (Q.determinant() < 0.0) Q.col(0) *= -1.0;
        CHECK(-(Q * W).trace() >= r.loss - 1e-10 * (1.0 + std::abs(r.loss)));
      }
    }
  }
  CHECK_THROWS_WITH(descramble_diagonal(Eigen::MatrixXd::Ones(2, 3)), std::invalid_argument, "square");
}

TEST(smoothness_loss_is_the_trace_and_checks_shapes) {
  const Index m = 7;
  const Eigen::MatrixXd S = random_spd(m, 3);
  std::mt19937_64 rng(5);
  const Eigen::MatrixXd Q = random_orthogonal(m, rng);
  const Smoothness s = fourier_smoothness(m, 2);
  CHECK_CLOSE(smoothness_loss(s.gram, S, Q), eta(s.gram, Q, S), 1e-10 * eta(s.gram, Q, S));
  CHECK_THROWS_WITH(smoothness_loss(s.gram, S, Eigen::MatrixXd::Identity(m - 1, m - 1)), std::invalid_argument,
                    "one size");
  const ClosedForm r = descramble_closed_form(S, s);
  CHECK_CLOSE(r.apply(Eigen::MatrixXd::Identity(m, m)), r.P, 0.0);
  CHECK_CLOSE(descramble_columns(r.P, r.P), Eigen::MatrixXd::Identity(m, m), 1e-12);
  CHECK_THROWS_WITH(descramble_rows(r.P, Eigen::MatrixXd::Ones(m + 1, 2)), std::invalid_argument, "W: expected 7 rows");
}
