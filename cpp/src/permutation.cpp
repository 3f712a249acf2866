// Permutation descramblers: linear assignment starts and (iterated) local
// search by pair swaps and sign flips (permutation.hpp, issue 13).
#include "descramble/permutation.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>

namespace descramble {

namespace {

std::string shape(const Eigen::Ref<const Eigen::MatrixXd>& a) {
  return std::to_string(a.rows()) + " x " + std::to_string(a.cols());
}

void check_permutation(const std::vector<Index>& p, Index m, const char* name) {
  if (static_cast<Index>(p.size()) != m) {
    throw std::invalid_argument(std::string(name) + ": expected " + std::to_string(m) + " entries, got " +
                                std::to_string(p.size()));
  }
  std::vector<char> seen(static_cast<std::size_t>(m), 0);
  for (const Index v : p) {
    if (v < 0 || v >= m || seen[static_cast<std::size_t>(v)]) {
      throw std::invalid_argument(std::string(name) + ": not a permutation of 0.." + std::to_string(m - 1));
    }
    seen[static_cast<std::size_t>(v)] = 1;
  }
}

// The state of a local search: the permutation p, the signs s (all +1 when
// unsigned) and B = Pi S Pi^T, B(i, j) = s_i s_j S(p_i, p_j), so that
// eta = sum_ij A_ij B_ij. A and B are symmetric.
class Search {
 public:
  Search(const Eigen::MatrixXd& A, const Eigen::MatrixXd& S, bool with_signs)
      : A_(A), S_(S), with_signs_(with_signs), m_(A.rows()) {
    // Moves that improve by less than this are rounding: ignoring them keeps
    // the search from cycling on ties.
    tol_ = 1e-12 * std::max(A.norm() * S.norm(), std::numeric_limits<double>::min());
    // A's nonzeros by row, for the segment reversals.
    rows_.resize(static_cast<std::size_t>(m_));
    Index nnz = 0;
    for (Index i = 0; i < m_; ++i)
      for (Index j = 0; j < m_; ++j)
        if (A(i, j) != 0.0) {
          rows_[static_cast<std::size_t>(i)].push_back(j);
          ++nnz;
        }
    // Reversals cost O(segment x nonzeros per row) each, m^2 nnz / 6 a
    // sweep: on for banded operators (finite differences) and small m.
    const double sweep = static_cast<double>(m_) * static_cast<double>(m_) * static_cast<double>(nnz) / 6.0;
    reversals_ = m_ >= 3 && sweep <= 2e6;
    polish_reversals_ = m_ >= 3 && sweep <= 1e8;
  }

  // Turns the segment reversals on for the polishing descents (after the
  // starts, and at the end) where they are too dear for every descent.
  void polishing(bool on) { polishing_ = on; }

  void reset(std::vector<Index> p, Eigen::VectorXd s) {
    p_ = std::move(p);
    s_ = s.size() ? std::move(s) : Eigen::VectorXd::Ones(m_);
    B_.resize(m_, m_);
    for (Index j = 0; j < m_; ++j)
      for (Index i = 0; i < m_; ++i) B_(i, j) = s_[i] * s_[j] * S_(p_[i], p_[j]);
  }

  double loss() const { return (A_.array() * B_.array()).sum(); }

  // Exchanging the entries of positions a != b swaps rows and columns a, b
  // of B. Only the terms of sum_ij A_ij B_ij in row/column a or b change:
  //   k != a, b:  2 A_ak B_ak + 2 A_bk B_bk  ->  2 A_ak B_bk + 2 A_bk B_ak
  //   diagonal:   A_aa B_aa + A_bb B_bb      ->  A_aa B_bb + A_bb B_aa
  //   (a, b):     2 A_ab B_ab, unchanged (B symmetric)
  // so  delta = 2 sum_{k != a,b} (A_ka - A_kb)(B_kb - B_ka) + (A_aa - A_bb)(B_bb - B_aa).
  // The sum is taken over all k (one vectorised dot product) and its k = a
  // and k = b terms are subtracted.
  double swap_delta(Index a, Index b) const {
    const double full = (A_.col(a) - A_.col(b)).dot(B_.col(b) - B_.col(a));
    const double at_a = (A_(a, a) - A_(a, b)) * (B_(a, b) - B_(a, a));
    const double at_b = (A_(b, a) - A_(b, b)) * (B_(b, b) - B_(b, a));
    return 2.0 * (full - at_a - at_b) + (A_(a, a) - A_(b, b)) * (B_(b, b) - B_(a, a));
  }

  void swap(Index a, Index b) {
    std::swap(p_[a], p_[b]);
    std::swap(s_[a], s_[b]);
    B_.row(a).swap(B_.row(b));
    B_.col(a).swap(B_.col(b));
  }

  // Flipping s_a negates row and column a of B except B_aa:
  //   delta = -4 sum_{k != a} A_ka B_ka.
  double flip_delta(Index a) const { return -4.0 * (A_.col(a).dot(B_.col(a)) - A_(a, a) * B_(a, a)); }

  void flip(Index a) {
    s_[a] = -s_[a];
    B_.row(a) *= -1.0;
    B_.col(a) *= -1.0;  // B_aa negated twice: unchanged
  }

  // Reversing the segment a..b (a < b; sigma(i) = a + b - i inside it)
  // permutes rows and columns of B: B'_ij = B_{sigma i, sigma j}. Only
  // terms with i or j inside change:
  //   delta = sum_{i in R} [ sum_{j not in R} 2 A_ij (B_{sigma i, j} - B_ij)
  //                        + sum_{j in R} A_ij (B_{sigma i, sigma j} - B_ij) ],
  // over A's nonzeros only.
  double reversal_delta(Index a, Index b) const {
    double delta = 0.0;
    for (Index i = a; i <= b; ++i) {
      const Index si = a + b - i;
      for (const Index j : rows_[static_cast<std::size_t>(i)]) {
        // A and B are symmetric: read them down columns i and si (contiguous).
        if (j < a || j > b) {
          delta += 2.0 * A_(j, i) * (B_(j, si) - B_(j, i));
        } else {
          delta += A_(j, i) * (B_(a + b - j, si) - B_(j, i));
        }
      }
    }
    return delta;
  }

  void reverse(Index a, Index b) {
    for (Index i = a, j = b; i < j; ++i, --j) swap(i, j);
  }

  // First improvement until no swap (and no flip) improves, or the clock
  // runs out; returns the number of moves applied.
  template <class Clock>
  Index descend(const Clock& out_of_time, bool& timed_out) {
    Index moves = 0;
    bool improved = true;
    while (improved) {
      improved = false;
      for (Index a = 0; a < m_; ++a) {
        if (out_of_time()) {
          timed_out = true;
          return moves;
        }
        if (with_signs_ && flip_delta(a) < -tol_) {
          flip(a);
          ++moves;
          improved = true;
        }
        for (Index b = a + 1; b < m_; ++b) {
          if (swap_delta(a, b) < -tol_) {
            swap(a, b);
            ++moves;
            improved = true;
          }
        }
        if (!(reversals_ || (polishing_ && polish_reversals_))) continue;
        for (Index b = a + 2; b < m_; ++b) {
          if (reversal_delta(a, b) < -tol_) {
            reverse(a, b);
            ++moves;
            improved = true;
          }
        }
      }
    }
    return moves;
  }

  const std::vector<Index>& permutation() const { return p_; }
  const Eigen::VectorXd& signs() const { return s_; }
  double tol() const { return tol_; }

 private:
  const Eigen::MatrixXd& A_;
  const Eigen::MatrixXd& S_;
  bool with_signs_;
  Index m_;
  double tol_ = 0.0;
  std::vector<std::vector<Index>> rows_;
  bool reversals_ = false;
  bool polish_reversals_ = false;
  bool polishing_ = false;
  std::vector<Index> p_;
  Eigen::VectorXd s_;
  Eigen::MatrixXd B_;
};

// The Frank-Wolfe method on the doubly stochastic matrices (FAQ, Vogelstein
// et al. 2015) for min tr(A X S X^T), from X0, projected onto the
// permutations at the end by a linear assignment maximising <X, Pi>. The
// gradient is 2 A X S (A, S symmetric); the step along R = Q - X minimises
// the quadratic f(X + t R) = f(X) + t <G, R> + t^2 tr(A R S R^T) on [0, 1].
std::vector<Index> frank_wolfe(const Eigen::MatrixXd& A, const Eigen::MatrixXd& S, Eigen::MatrixXd X,
                               int iterations) {
  const Index m = A.rows();
  for (int it = 0; it < iterations; ++it) {
    const Eigen::MatrixXd G = 2.0 * (A * X * S);
    const std::vector<Index> q = linear_assignment(-G);
    Eigen::MatrixXd R = -X;
    for (Index i = 0; i < m; ++i) R(i, q[static_cast<std::size_t>(i)]) += 1.0;
    const double b = (G.array() * R.array()).sum();
    const double a = (A.array() * (R * S * R.transpose()).array()).sum();
    double t;
    if (a > 0.0) {
      t = std::clamp(-b / (2.0 * a), 0.0, 1.0);
    } else {
      t = a + b < 0.0 ? 1.0 : 0.0;
    }
    if (t <= 0.0 || !(b < 0.0)) break;  // no descent direction left
    X += t * R;
  }
  return linear_assignment(X);
}

}  // namespace

Eigen::MatrixXd PermutationResult::matrix() const {
  const auto m = static_cast<Index>(permutation.size());
  Eigen::MatrixXd P = Eigen::MatrixXd::Zero(m, m);
  for (Index i = 0; i < m; ++i) P(i, permutation[static_cast<std::size_t>(i)]) = signs.size() ? signs[i] : 1.0;
  return P;
}

double certificate_gap(double loss, double bound) {
  if (loss <= bound) return 0.0;
  if (!(bound > 0.0)) return std::numeric_limits<double>::infinity();
  return (loss - bound) / bound;
}

double permutation_loss(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                        const std::vector<Index>& permutation, const Eigen::VectorXd& signs) {
  const Index m = gram.rows();
  if (gram.cols() != m || hidden.rows() != m || hidden.cols() != m) {
    throw std::invalid_argument("permutation_loss: expected square A and S of one size, got A " + shape(gram) +
                                ", S " + shape(hidden));
  }
  check_permutation(permutation, m, "permutation");
  if (signs.size() != 0 && signs.size() != m) throw std::invalid_argument("signs: expected m entries or none");
  double total = 0.0;
  for (Index j = 0; j < m; ++j) {
    const Index pj = permutation[static_cast<std::size_t>(j)];
    const double sj = signs.size() ? signs[j] : 1.0;
    for (Index i = 0; i < m; ++i) {
      const double si = signs.size() ? signs[i] : 1.0;
      total += gram(i, j) * si * sj * hidden(permutation[static_cast<std::size_t>(i)], pj);
    }
  }
  return total;
}

double swap_delta(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                  const std::vector<Index>& permutation, const Eigen::VectorXd& signs, Index a, Index b) {
  const Eigen::MatrixXd A = gram, S = hidden;
  Search search(A, S, true);
  check_permutation(permutation, A.rows(), "permutation");
  if (a < 0 || b < 0 || a >= A.rows() || b >= A.rows() || a == b) throw std::invalid_argument("a, b: expected two distinct positions");
  search.reset(permutation, signs);
  return search.swap_delta(a, b);
}

double reversal_delta(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                      const std::vector<Index>& permutation, const Eigen::VectorXd& signs, Index a, Index b) {
  const Eigen::MatrixXd A = gram, S = hidden;
  Search search(A, S, true);
  check_permutation(permutation, A.rows(), "permutation");
  if (a < 0 || b >= A.rows() || a >= b) throw std::invalid_argument("a, b: expected positions a < b");
  search.reset(permutation, signs);
  return search.reversal_delta(a, b);
}

double flip_delta(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                  const std::vector<Index>& permutation, const Eigen::VectorXd& signs, Index a) {
  const Eigen::MatrixXd A = gram, S = hidden;
  Search search(A, S, true);
  check_permutation(permutation, A.rows(), "permutation");
  if (a < 0 || a >= A.rows()) throw std::invalid_argument("a: expected a position");
  search.reset(permutation, signs);
  return search.flip_delta(a);
}

// Shortest augmenting paths with row and column potentials (the Hungarian
// method in its O(n^3) form, as in Jonker & Volgenant's augmentation phase),
// minimising sum_i cost(i, p_i) with cost = -W.
std::vector<Index> linear_assignment(const Eigen::Ref<const Eigen::MatrixXd>& weights) {
  const Index n = weights.rows();
  if (weights.cols() != n) throw std::invalid_argument("weights: expected a square matrix, got " + shape(weights));
  if (!weights.allFinite()) throw std::invalid_argument("weights: not finite");
  const double inf = std::numeric_limits<double>::infinity();
  // 1-based as in the textbook form; row 0 / column 0 are the virtual source.
  std::vector<double> u(static_cast<std::size_t>(n + 1), 0.0), v(static_cast<std::size_t>(n + 1), 0.0);
  std::vector<Index> match(static_cast<std::size_t>(n + 1), 0), way(static_cast<std::size_t>(n + 1), 0);
  std::vector<double> minv(static_cast<std::size_t>(n + 1));
  std::vector<char> used(static_cast<std::size_t>(n + 1));
  for (Index i = 1; i <= n; ++i) {
    match[0] = i;
    Index j0 = 0;
    std::fill(minv.begin(), minv.end(), inf);
    std::fill(used.begin(), used.end(), 0);
    do {
      used[static_cast<std::size_t>(j0)] = 1;
      const Index i0 = match[static_cast<std::size_t>(j0)];
      double delta = inf;
      Index j1 = 0;
      for (Index j = 1; j <= n; ++j) {
        if (used[static_cast<std::size_t>(j)]) continue;
        const double cur = -weights(i0 - 1, j - 1) - u[static_cast<std::size_t>(i0)] - v[static_cast<std::size_t>(j)];
        if (cur < minv[static_cast<std::size_t>(j)]) {
          minv[static_cast<std::size_t>(j)] = cur;
          way[static_cast<std::size_t>(j)] = j0;
        }
        if (minv[static_cast<std::size_t>(j)] < delta) {
          delta = minv[static_cast<std::size_t>(j)];
          j1 = j;
        }
      }
      for (Index j = 0; j <= n; ++j) {
        if (used[static_cast<std::size_t>(j)]) {
          u[static_cast<std::size_t>(match[static_cast<std::size_t>(j)])] += delta;
          v[static_cast<std::size_t>(j)] -= delta;
        } else {
          minv[static_cast<std::size_t>(j)] -= delta;
        }
      }
      j0 = j1;
    } while (match[static_cast<std::size_t>(j0)] != 0);
    do {
      const Index j1 = way[static_cast<std::size_t>(j0)];
      match[static_cast<std::size_t>(j0)] = match[static_cast<std::size_t>(j1)];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<Index> p(static_cast<std::size_t>(n));
  for (Index j = 1; j <= n; ++j) p[static_cast<std::size_t>(match[static_cast<std::size_t>(j)] - 1)] = j - 1;
  return p;
}

PermutationResult permutation_search(const ClosedForm& start, const Eigen::Ref<const Eigen::MatrixXd>& gram,
                                     const PermutationOptions& options) {
  const Index m = start.P.rows();
  if (m < 1 || start.P.cols() != m || start.hidden.rows() != m || start.hidden.cols() != m) {
    throw std::invalid_argument("start: expected a closed form with square P and hidden S of one size");
  }
  if (gram.rows() != m || gram.cols() != m) {
    throw std::invalid_argument("gram: expected " + std::to_string(m) + " x " + std::to_string(m) + ", got " +
                                shape(gram));
  }
  if (options.max_iterations < 0) throw std::invalid_argument("max_iterations: expected >= 0");
  if (!(options.time_limit >= 0.0)) throw std::invalid_argument("time_limit: expected >= 0 seconds (0: none)");
  if (!options.initial.empty()) check_permutation(options.initial, m, "initial");
  if (!options.initial_signs.empty()) {
    if (!options.with_signs) throw std::invalid_argument("initial_signs: only for signed permutations");
    if (options.initial.empty()) throw std::invalid_argument("initial_signs: needs initial");
    if (static_cast<Index>(options.initial_signs.size()) != m) throw std::invalid_argument("initial_signs: expected m entries");
    for (const double s : options.initial_signs)
      if (s != 1.0 && s != -1.0) throw std::invalid_argument("initial_signs: expected +1 or -1 entries");
  }

  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const bool limited = options.time_limit > 0.0;
  const auto deadline = t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(options.time_limit));
  auto out_of_time = [&] { return limited && clock::now() >= deadline; };

  const Eigen::MatrixXd A = 0.5 * (gram + gram.transpose());
  const Eigen::MatrixXd& S = start.hidden;
  Search search(A, S, options.with_signs);
  PermutationResult result;
  result.bound = start.bound;
  double best = std::numeric_limits<double>::infinity();
  std::vector<Index> best_p;
  Eigen::VectorXd best_s;

  auto run_from = [&](std::vector<Index> p, Eigen::VectorXd s) {
    search.reset(std::move(p), std::move(s));
    result.moves += search.descend(out_of_time, result.timed_out);
    const double loss = search.loss();  // from scratch: no drift from the incremental updates
    if (loss < best - search.tol()) {
      best = loss;
      best_p = search.permutation();
      best_s = search.signs();
    }
  };
  // Signs of an assignment: those of P* on the chosen entries (+1 where 0).
  auto signs_of = [&](const std::vector<Index>& p) {
    Eigen::VectorXd s = Eigen::VectorXd::Ones(m);
    if (options.with_signs)
      for (Index i = 0; i < m; ++i) s[i] = start.P(i, p[static_cast<std::size_t>(i)]) < 0.0 ? -1.0 : 1.0;
    return s;
  };

  // 1. Starts: the projections of P* (squares, magnitudes), the identity, the caller's.
  const std::vector<Index> squares = linear_assignment(start.P.array().square().matrix());
  run_from(squares, signs_of(squares));
  const std::vector<Index> magnitudes = linear_assignment(start.P.array().abs().matrix());
  if (magnitudes != squares) run_from(magnitudes, signs_of(magnitudes));
  // Frank-Wolfe (FAQ) from the squares of P* (doubly stochastic: P* is
  // orthogonal) and from the barycentre J / m, projected.
  const int fw_iterations = 30;
  if (m >= 2 && !out_of_time()) {
    const std::vector<Index> fw = frank_wolfe(A, S, start.P.array().square().matrix(), fw_iterations);
    run_from(fw, signs_of(fw));
  }
  if (m >= 2 && !out_of_time()) {
    const std::vector<Index> fw =
        frank_wolfe(A, S, Eigen::MatrixXd::Constant(m, m, 1.0 / static_cast<double>(m)), fw_iterations);
    run_from(fw, signs_of(fw));
  }
  // Sign-aligned projections: the orthogonal optima are T D U^T for every
  // diagonal sign matrix D (where the spectra are simple), and the squares
  // of P* = T U^T depend on D. Given the best permutation p so far, the D
  // maximising <Pi, T D U^T> is d_k = sign(sum_i T_ik U_{p_i k}); project
  // T D U^T (a linear assignment maximising sum_i (T D U^T)_{i p_i}) and
  // descend; repeat while it improves.
  const bool have_factors = start.basis.rows() == m && start.basis.cols() == m && start.components.rows() == m &&
                            start.components.cols() == m;
  // Greedy signs: fix d_0, d_1, ... in turn (the first K components, which
  // carry most of S), each to the sign whose projection of the partial sum
  // sum_{l <= k} d_l T_l U_l^T has the lower loss; then project the whole
  // T D U^T and descend.
  if (have_factors && m >= 2 && !out_of_time()) {
    const Index K = std::min<Index>(m, 24);
    Eigen::MatrixXd partial = Eigen::MatrixXd::Zero(m, m);
    Eigen::VectorXd d = Eigen::VectorXd::Ones(m);
    for (Index k = 0; k < K && !out_of_time(); ++k) {
      const Eigen::MatrixXd term = start.basis.col(k) * start.components.col(k).transpose();
      double best_sign = 1.0, best_loss = std::numeric_limits<double>::infinity();
      for (const double sign : {1.0, -1.0}) {
        const Eigen::MatrixXd M = partial + sign * term;
        const std::vector<Index> p = linear_assignment(options.with_signs ? M.cwiseAbs() : M);
        const double loss = permutation_loss(A, S, p);
        if (loss < best_loss) {
          best_loss = loss;
          best_sign = sign;
        }
        if (k == 0) break;  // the overall sign of the first term is irrelevant up to flipping all of T D U^T
      }
      d[k] = best_sign;
      partial += best_sign * term;
    }
    const Eigen::MatrixXd aligned = start.basis * d.asDiagonal() * start.components.transpose();
    const std::vector<Index> p = linear_assignment(options.with_signs ? aligned.cwiseAbs() : aligned);
    Eigen::VectorXd s = Eigen::VectorXd::Ones(m);
    if (options.with_signs)
      for (Index i = 0; i < m; ++i) s[i] = aligned(i, p[static_cast<std::size_t>(i)]) < 0.0 ? -1.0 : 1.0;
    run_from(p, s);
  }
  for (int round = 0; have_factors && m >= 2 && round < 3 && !out_of_time(); ++round) {
    Eigen::VectorXd d(m);
    for (Index k = 0; k < m; ++k) {
      double c = 0.0;
      for (Index i = 0; i < m; ++i) c += start.basis(i, k) * best_s[i] * start.components(best_p[static_cast<std::size_t>(i)], k);
      d[k] = c < 0.0 ? -1.0 : 1.0;
    }
    const Eigen::MatrixXd aligned = start.basis * d.asDiagonal() * start.components.transpose();
    const std::vector<Index> p = linear_assignment(options.with_signs ? aligned.cwiseAbs() : aligned);
    const double before = best;
    Eigen::VectorXd s = Eigen::VectorXd::Ones(m);
    if (options.with_signs)
      for (Index i = 0; i < m; ++i) s[i] = aligned(i, p[static_cast<std::size_t>(i)]) < 0.0 ? -1.0 : 1.0;
    run_from(p, s);
    if (!(best < before)) break;
  }
  // Orderings stuck with one bad junction (a cyclic rotation of a good
  // order, possibly reversed) are local optima for pair swaps: scan every
  // rotation of the best so far and of its reversal (O(m^2) each), descend
  // from the best of them when it improves.
  auto rotation_scan = [&] {
    if (m < 3 || out_of_time()) return;
    double scan_best = best;
    std::vector<Index> scan_p;
    Eigen::VectorXd scan_s;
    for (const bool reversed : {false, true}) {
      std::vector<Index> base = best_p;
      Eigen::VectorXd base_s = best_s;
      if (reversed) {
        std::reverse(base.begin(), base.end());
        base_s.reverseInPlace();
      }
      for (Index r = reversed ? 0 : 1; r < m; ++r) {
        std::vector<Index> p(static_cast<std::size_t>(m));
        Eigen::VectorXd t(m);
        for (Index i = 0; i < m; ++i) {
          p[static_cast<std::size_t>(i)] = base[static_cast<std::size_t>((i + r) % m)];
          t[i] = base_s[(i + r) % m];
        }
        const double loss = permutation_loss(A, S, p, t);
        if (loss < scan_best - search.tol()) {
          scan_best = loss;
          scan_p = std::move(p);
          scan_s = t;
        }
      }
    }
    if (!scan_p.empty()) run_from(std::move(scan_p), std::move(scan_s));
  };
  // Polish: descend from the best with segment reversals on (dense A).
  auto polish = [&] {
    search.polishing(true);
    run_from(best_p, best_s);
    search.polishing(false);
    rotation_scan();
  };
  rotation_scan();
  std::vector<Index> identity(static_cast<std::size_t>(m));
  for (Index i = 0; i < m; ++i) identity[static_cast<std::size_t>(i)] = i;
  run_from(identity, Eigen::VectorXd::Ones(m));
  if (!options.initial.empty()) {
    Eigen::VectorXd s = Eigen::VectorXd::Ones(m);
    for (std::size_t i = 0; i < options.initial_signs.size(); ++i) s[static_cast<Index>(i)] = options.initial_signs[i];
    run_from(options.initial, s);
  }

  polish();

  // 3. Iterated local search: perturb the best by a few random swaps (and
  // flips), descend, keep the better.
  std::mt19937_64 rng(options.seed);
  if (m >= 2) {
    for (Index it = 0; it < options.max_iterations && !out_of_time(); ++it) {
      std::vector<Index> p = best_p;
      Eigen::VectorXd s = best_s;
      const Index strength = 2 + static_cast<Index>(rng() % static_cast<std::uint64_t>(std::max<Index>(1, std::min<Index>(m / 4, 8))));
      if (rng() & 1u) {  // reverse a random segment (what swaps cannot undo in an ordering)
        const auto a = static_cast<Index>(rng() % static_cast<std::uint64_t>(m));
        const auto b = static_cast<Index>(rng() % static_cast<std::uint64_t>(m));
        std::reverse(p.begin() + std::min(a, b), p.begin() + std::max(a, b) + 1);
        Eigen::VectorXd t = s;
        for (Index i = std::min(a, b), j = std::max(a, b); i <= std::max(a, b); ++i, --j) s[i] = t[j];
      } else for (Index k = 0; k < strength; ++k) {
        const auto a = static_cast<Index>(rng() % static_cast<std::uint64_t>(m));
        auto b = static_cast<Index>(rng() % static_cast<std::uint64_t>(m - 1));
        if (b >= a) ++b;
        std::swap(p[static_cast<std::size_t>(a)], p[static_cast<std::size_t>(b)]);
        std::swap(s[a], s[b]);
        if (options.with_signs && (rng() & 1u)) s[a] = -s[a];
      }
      const double before = best;
      run_from(std::move(p), std::move(s));
      if (best < before) rotation_scan();
      ++result.iterations;
    }
  }

  if (!out_of_time()) polish();
  result.permutation = best_p;
  if (options.with_signs) result.signs = best_s;
  result.loss = permutation_loss(A, S, result.permutation, result.signs);
  result.gap = certificate_gap(result.loss, result.bound);
  return result;
}

PermutationResult descramble_permutation(const Eigen::Ref<const Eigen::MatrixXd>& hidden, const Smoothness& smoothness,
                                         const PermutationOptions& options, int threads) {
  const ClosedForm start = descramble_closed_form(hidden, smoothness, threads);
  return permutation_search(start, smoothness.gram, options);
}

}  // namespace descramble
