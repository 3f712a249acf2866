// Permutation descramblers: linear assignment starts, local search by pair
// swaps, sign flips and segment reversals, and a robust tabu search
// (permutation.hpp, issue 13).
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

// The swap (and flip) neighbourhood with O(1) deltas, for best-improvement
// descents, segment-reversal polishing and the robust tabu search
// (Taillard 1991). The state: the permutation p, the signs s (all +1 when
// unsigned), B = Pi S Pi^T (B_ij = s_i s_j S(p_i, p_j), so that
// eta = sum_ij A_ij B_ij; A and B symmetric), and C = A B with its
// transpose.
//
// Exchanging the entries of positions a != b swaps rows and columns a, b
// of B. Only the terms of sum_ij A_ij B_ij in row/column a or b change:
//   k != a, b:  2 A_ak B_ak + 2 A_bk B_bk  ->  2 A_ak B_bk + 2 A_bk B_ak
//   diagonal:   A_aa B_aa + A_bb B_bb      ->  A_aa B_bb + A_bb B_aa
//   (a, b):     2 A_ab B_ab, unchanged (B symmetric)
// so  delta = 2 sum_{k != a,b} (A_ka - A_kb)(B_kb - B_ka) + (A_aa - A_bb)(B_bb - B_aa),
// where the sum over all k is C_ab + C_ba - C_aa - C_bb (its k = a and
// k = b terms are subtracted). Flipping s_a negates row and column a of B
// except B_aa: delta = -4 sum_{k != a} A_ka B_ka = -4 (C_aa - A_aa B_aa).
// So a full scan of the m (m - 1) / 2 swaps costs O(m^2), and applying a
// move updates C by a rank-one term and a column exchange (O(m^2)):
//   swap a, b:  C <- (C + (A_:b - A_:a)(B_a: - B_b:)) with columns a, b exchanged,
//   flip a:     C <- (C - 2 A_:a B_a:) with column a negated.
// C is recomputed from scratch (one product) at every reset and refresh to
// keep rounding from accumulating.
class Neighbourhood {
 public:
  Neighbourhood(const Eigen::MatrixXd& A, const Eigen::MatrixXd& S, bool with_signs, double tol)
      : A_(A), S_(S), with_signs_(with_signs), m_(A.rows()), tol_(tol), dA_(A.diagonal()) {
    // The bandwidth w of A (A_ij = 0 for |i - j| > w): 1 for first differences, m - 1 when dense.
    for (Index j = 0; j < m_; ++j)
      for (Index i = 0; i < m_; ++i)
        if (A(i, j) != 0.0) w_ = std::max(w_, i > j ? i - j : j - i);
  }

  void reset(const std::vector<Index>& p, const Eigen::VectorXd& s) {
    p_ = p;
    s_ = s.size() ? s : Eigen::VectorXd::Ones(m_);
    B_.resize(m_, m_);
    for (Index j = 0; j < m_; ++j)
      for (Index i = 0; i < m_; ++i) B_(i, j) = s_[i] * s_[j] * S_(p_[static_cast<std::size_t>(i)], p_[static_cast<std::size_t>(j)]);
    refresh();
  }

  // C, its transpose and the loss from scratch.
  void refresh() {
    C_.noalias() = A_ * B_;
    Ct_ = C_.transpose();
    loss_ = (A_.array() * B_.array()).sum();
    moves_since_refresh_ = 0;
  }

  double swap_delta(Index a, Index b) const {
    const double Aaa = dA_[a], Abb = dA_[b], Aab = A_(a, b), Baa = B_(a, a), Bbb = B_(b, b), Bab = B_(a, b);
    return 2.0 * (C_(a, b) + Ct_(a, b) - C_(a, a) - C_(b, b) - (Aaa - Aab) * (Bab - Baa) - (Aab - Abb) * (Bbb - Bab)) +
           (Aaa - Abb) * (Bbb - Baa);
  }

  double flip_delta(Index a) const { return -4.0 * (C_(a, a) - dA_[a] * B_(a, a)); }

  void swap(Index a, Index b, double delta) {
    x_ = A_.col(b) - A_.col(a);
    y_ = B_.col(a) - B_.col(b);  // row a minus row b (B symmetric)
    C_.noalias() += x_ * y_.transpose();
    C_.col(a).swap(C_.col(b));
    Ct_.noalias() += y_ * x_.transpose();
    Ct_.row(a).swap(Ct_.row(b));
    B_.row(a).swap(B_.row(b));
    B_.col(a).swap(B_.col(b));
    std::swap(p_[static_cast<std::size_t>(a)], p_[static_cast<std::size_t>(b)]);
    std::swap(s_[a], s_[b]);
    moved(delta);
  }

  void flip(Index a, double delta) {
    x_ = A_.col(a);
    y_ = B_.col(a);
    C_.noalias() -= 2.0 * x_ * y_.transpose();
    C_.col(a) *= -1.0;
    Ct_.noalias() -= 2.0 * y_ * x_.transpose();
    Ct_.row(a) *= -1.0;
    B_.row(a) *= -1.0;
    B_.col(a) *= -1.0;
    s_[a] = -s_[a];
    moved(delta);
  }

  // The best move by the rule `allowed(a, b, delta)` (b = -1: flip a), its
  // delta in `delta`; false when no move is allowed.
  template <class Allowed>
  bool best_move(const Allowed& allowed, Index& a_out, Index& b_out, double& delta) const {
    bool found = false;
    delta = std::numeric_limits<double>::infinity();
    dB_ = B_.diagonal();
    dC_ = C_.diagonal();
    const double* dA = dA_.data();
    const double* dB = dB_.data();
    const double* dC = dC_.data();
    row_.resize(m_);
    double* d = row_.data();
    for (Index b = 1; b < m_; ++b) {
      const double* Cb = C_.col(b).data();
      const double* Ctb = Ct_.col(b).data();
      const double* Ab = A_.col(b).data();
      const double* Bb = B_.col(b).data();
      const double Abb = dA[b], Bbb = dB[b], Cbb = dC[b];
      // the deltas of the swaps (a, b), a < b, first (vectorisable), then their minimum
      for (Index a = 0; a < b; ++a) {
        d[a] = 2.0 * (Cb[a] + Ctb[a] - dC[a] - Cbb - (dA[a] - Ab[a]) * (Bb[a] - dB[a]) - (Ab[a] - Abb) * (Bbb - Bb[a])) +
               (dA[a] - Abb) * (Bbb - dB[a]);
      }
      for (Index a = 0; a < b; ++a) {
        if (d[a] < delta && allowed(a, b, d[a])) {
          delta = d[a];
          a_out = a;
          b_out = b;
          found = true;
        }
      }
    }
    if (with_signs_) {
      for (Index a = 0; a < m_; ++a) {
        const double d = flip_delta(a);
        if (d < delta && allowed(a, Index(-1), d)) {
          delta = d;
          a_out = a;
          b_out = -1;
          found = true;
        }
      }
    }
    return found;
  }

  // Segment reversals from the centre c = a + b outwards: reversing a..b
  // is reversing a+1..b-1 and then swapping a and b, so
  //   rev(a, b) = rev(a+1, b-1) + swap delta of (a, b) after reversing a+1..b-1,
  // and the latter is the swap formula with, for k inside, B_{a+b-k, .} in
  // place of B_{k, .}: O(b - a) from C. `visit(a, b, delta)` sees every
  // segment of length >= 2 (length 2 is a swap) around the centre, and
  // returns false to stop. A full scan of the centres is O(m^3 / 6).
  template <class Visit>
  void reversals_around(Index c, const Visit& visit) const {
    Index a, b;
    double acc = 0.0;
    if (c % 2 == 0) {
      a = b = c / 2;
    } else {
      a = (c - 1) / 2;
      b = a + 1;
      if (b >= m_) return;
      acc = swap_delta(a, b);
      if (!visit(a, b, acc)) return;
    }
    while (a > 0 && b < m_ - 1) {
      --a;
      ++b;
      const double* Aa = A_.col(a).data();
      const double* Ab = A_.col(b).data();
      const double* Ba = B_.col(a).data();
      const double* Bb = B_.col(b).data();
      // sum over k inside of (A_ka - A_kb)((B_{a+b-k, b} - B_{a+b-k, a}) - (B_kb - B_ka)),
      // over the k within the bandwidth of a or b only
      double inner = 0.0;
      auto add = [&](Index k0, Index k1) {
        for (Index k = k0; k < k1; ++k) {
          const Index r = a + b - k;
          inner += (Aa[k] - Ab[k]) * ((Bb[r] - Ba[r]) - (Bb[k] - Ba[k]));
        }
      };
      if (b - a - 1 <= 2 * w_) {
        add(a + 1, b);
      } else {
        add(a + 1, a + 1 + w_);
        add(b - w_, b);
      }
      acc += swap_delta(a, b) + 2.0 * inner;
      if (!visit(a, b, acc)) return;
    }
  }

  // The change of the loss when a..b (a < b) is reversed.
  double reversal_delta(Index a, Index b) const {
    double out = 0.0;
    reversals_around(a + b, [&](Index i, Index j, double d) {
      if (i == a && j == b) {
        out = d;
        return false;
      }
      return true;
    });
    return out;
  }

  // Applies the most improving reversal of a segment of length >= 3 (by
  // more than tol), and with it, on banded A, every other improving one
  // (most improving first) that lies more than the bandwidth away from
  // those taken (their changes add up: no term of the loss couples them).
  // False when no reversal improves.
  bool reverse_best() {
    std::vector<std::pair<double, std::pair<Index, Index>>> improving;
    for (Index c = 2; c + 2 <= 2 * (m_ - 1); ++c) {
      double best_here = -tol_;
      Index a_here = -1, b_here = -1;
      reversals_around(c, [&](Index a, Index b, double d) {
        if (b - a >= 2 && d < best_here) {
          best_here = d;
          a_here = a;
          b_here = b;
        }
        return true;
      });
      if (a_here >= 0) improving.push_back({best_here, {a_here, b_here}});
    }
    if (improving.empty()) return false;
    std::sort(improving.begin(), improving.end());
    std::vector<std::pair<Index, Index>> taken;
    for (const auto& [d, seg] : improving) {
      bool apart = true;
      for (const auto& t : taken)
        if (!(seg.second + w_ < t.first || t.second + w_ < seg.first)) apart = false;
      if (!apart) continue;
      taken.push_back(seg);
      if (w_ >= m_ - 1) break;  // dense A: one at a time
    }
    for (const auto& [a, b] : taken) {
      std::reverse(p_.begin() + a, p_.begin() + b + 1);
      s_.segment(a, b - a + 1).reverseInPlace();
    }
    reset(std::vector<Index>(p_), Eigen::VectorXd(s_));
    return true;
  }

  // Best improvement until no swap (or flip) improves by more than tol.
  template <class Clock>
  Index descend(const Clock& out_of_time, bool& timed_out) {
    Index moves = 0;
    auto improving = [&](Index, Index, double d) { return d < -tol_; };
    Index a = 0, b = 0;
    double delta = 0.0;
    while (true) {
      if ((moves & 15) == 0 && out_of_time()) {
        timed_out = true;
        break;
      }
      if (!best_move(improving, a, b, delta)) break;
      apply(a, b, delta);
      ++moves;
    }
    return moves;
  }

  void apply(Index a, Index b, double delta) {
    if (b < 0) {
      flip(a, delta);
    } else {
      swap(a, b, delta);
    }
  }

  double loss() const { return loss_; }
  const std::vector<Index>& permutation() const { return p_; }
  const Eigen::VectorXd& signs() const { return s_; }
  Index size() const { return m_; }

 private:
  void moved(double delta) {
    loss_ += delta;
    if (++moves_since_refresh_ >= std::max<Index>(4 * m_, 64)) refresh();
  }

  const Eigen::MatrixXd& A_;
  const Eigen::MatrixXd& S_;
  bool with_signs_;
  Index m_;
  double tol_;
  Eigen::VectorXd dA_;
  std::vector<Index> p_;
  Eigen::VectorXd s_;
  Eigen::MatrixXd B_, C_, Ct_;
  Eigen::VectorXd x_, y_;
  mutable Eigen::VectorXd dB_, dC_, row_;  // scratch of best_move
  double loss_ = 0.0;
  Index moves_since_refresh_ = 0;
  Index w_ = 0;
};

// Robust tabu search (Taillard 1991) over the swaps (and flips) of a
// Neighbourhood: each step applies the best move that is not tabu (a swap
// is tabu when it would put both units back at positions they left within
// the last `tenure` steps; a flip when its unit flipped within the last
// tenure steps), or that reaches a new best (aspiration). The tenure
// is drawn uniformly from [0.9 m, 1.1 m] every 2 m steps from the search's
// generator. The memory lives across walks until clear().
class TabuSearch {
 public:
  TabuSearch(Neighbourhood& nb, double tol) : nb_(nb), m_(nb.size()), tol_(tol) { clear(); }

  void clear() {
    left_.assign(static_cast<std::size_t>(m_ * m_), std::numeric_limits<Index>::min() / 2);
    flipped_.assign(static_cast<std::size_t>(m_), std::numeric_limits<Index>::min() / 2);
  }

  // `steps` moves from the neighbourhood's state; a better answer than
  // `best` (loss below best - tol) is copied into best_p / best_s.
  template <class Clock>
  Index walk(Index steps, std::mt19937_64& rng, const Clock& out_of_time, bool& timed_out, double& best,
             std::vector<Index>& best_p, Eigen::VectorXd& best_s) {
    Index moves = 0;
    const auto lo = static_cast<Index>(std::floor(0.9 * static_cast<double>(m_)));
    const auto hi = std::max(lo, static_cast<Index>(std::ceil(1.1 * static_cast<double>(m_))));
    for (Index t = 0; t < steps; ++t, ++clock_) {
      if ((t & 15) == 0 && out_of_time()) {
        timed_out = true;
        break;
      }
      if (clock_ % (2 * m_) == 0 || tenure_ == 0) {
        tenure_ = lo + static_cast<Index>(rng() % static_cast<std::uint64_t>(hi - lo + 1));
      }
      const double current = nb_.loss();
      const auto& p = nb_.permutation();
      auto allowed = [&](Index a, Index b, double d) {
        if (current + d < best - tol_) return true;  // aspiration
        if (b < 0) return flipped_[static_cast<std::size_t>(p[static_cast<std::size_t>(a)])] < clock_ - tenure_;
        const Index ua = p[static_cast<std::size_t>(a)], ub = p[static_cast<std::size_t>(b)];
        return !(left_[static_cast<std::size_t>(ua * m_ + b)] >= clock_ - tenure_ &&
                 left_[static_cast<std::size_t>(ub * m_ + a)] >= clock_ - tenure_);
      };
      Index a = 0, b = 0;
      double delta = 0.0;
      if (!nb_.best_move(allowed, a, b, delta)) continue;
      if (b < 0) {
        flipped_[static_cast<std::size_t>(p[static_cast<std::size_t>(a)])] = clock_;
      } else {
        left_[static_cast<std::size_t>(p[static_cast<std::size_t>(a)] * m_ + a)] = clock_;
        left_[static_cast<std::size_t>(p[static_cast<std::size_t>(b)] * m_ + b)] = clock_;
      }
      nb_.apply(a, b, delta);
      ++moves;
      if (nb_.loss() < best - tol_) {
        best = nb_.loss();
        best_p = nb_.permutation();
        best_s = nb_.signs();
      }
    }
    return moves;
  }

 private:
  Neighbourhood& nb_;
  Index m_;
  double tol_;
  Index clock_ = 0;
  Index tenure_ = 0;
  std::vector<Index> left_;     // left_[unit * m + position]: the step the unit last left that position
  std::vector<Index> flipped_;  // flipped_[unit]: the step of its last flip
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
  check_permutation(permutation, A.rows(), "permutation");
  if (a < 0 || b < 0 || a >= A.rows() || b >= A.rows() || a == b) throw std::invalid_argument("a, b: expected two distinct positions");
  Neighbourhood nb(A, S, true, 0.0);
  nb.reset(permutation, signs);
  return nb.swap_delta(a, b);
}

double reversal_delta(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                      const std::vector<Index>& permutation, const Eigen::VectorXd& signs, Index a, Index b) {
  const Eigen::MatrixXd A = gram, S = hidden;
  check_permutation(permutation, A.rows(), "permutation");
  if (a < 0 || b >= A.rows() || a >= b) throw std::invalid_argument("a, b: expected positions a < b");
  Neighbourhood nb(A, S, true, 0.0);
  nb.reset(permutation, signs);
  return nb.reversal_delta(a, b);
}

double flip_delta(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                  const std::vector<Index>& permutation, const Eigen::VectorXd& signs, Index a) {
  const Eigen::MatrixXd A = gram, S = hidden;
  check_permutation(permutation, A.rows(), "permutation");
  if (a < 0 || a >= A.rows()) throw std::invalid_argument("a: expected a position");
  Neighbourhood nb(A, S, true, 0.0);
  nb.reset(permutation, signs);
  return nb.flip_delta(a);
}

NeighbourhoodProbe probe_neighbourhood(const Eigen::Ref<const Eigen::MatrixXd>& gram,
                                       const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                                       const std::vector<Index>& permutation, const Eigen::VectorXd& signs,
                                       Index moves, std::uint64_t seed) {
  const Eigen::MatrixXd A = gram, S = hidden;
  const Index m = A.rows();
  check_permutation(permutation, m, "permutation");
  if (m < 2) throw std::invalid_argument("gram: expected m >= 2");
  const bool with_signs = signs.size() != 0;
  Neighbourhood nb(A, S, with_signs, 0.0);
  nb.reset(permutation, signs);
  std::mt19937_64 rng(seed);
  for (Index k = 0; k < moves; ++k) {
    const auto a = static_cast<Index>(rng() % static_cast<std::uint64_t>(m));
    if (with_signs && (rng() & 1u)) {
      nb.flip(a, nb.flip_delta(a));
      continue;
    }
    auto b = static_cast<Index>(rng() % static_cast<std::uint64_t>(m - 1));
    if (b >= a) ++b;
    nb.swap(a, b, nb.swap_delta(a, b));
  }
  NeighbourhoodProbe probe;
  probe.permutation = nb.permutation();
  probe.signs = nb.signs();
  probe.loss = nb.loss();
  probe.swap_deltas = Eigen::MatrixXd::Zero(m, m);
  for (Index a = 0; a < m; ++a)
    for (Index b = 0; b < m; ++b)
      if (a != b) probe.swap_deltas(a, b) = nb.swap_delta(a, b);
  probe.flip_deltas = Eigen::VectorXd::Zero(m);
  if (with_signs)
    for (Index a = 0; a < m; ++a) probe.flip_deltas[a] = nb.flip_delta(a);
  return probe;
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
  // Limits beyond 1e9 s (31 years) are no limit: clamped, so that the
  // conversion to the clock's int64 nanoseconds cannot overflow.
  const double limit = std::min(options.time_limit, 1e9);
  const auto deadline = t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(limit));
  auto out_of_time = [&] { return limited && clock::now() >= deadline; };

  const Eigen::MatrixXd A = 0.5 * (gram + gram.transpose());
  const Eigen::MatrixXd& S = start.hidden;
  // |eta(Pi)| <= sum|A| max|S| for every (signed) permutation; the search
  // compares losses and their differences, so that bound (with headroom for
  // the sums of moves) must be finite.
  if (!std::isfinite(64.0 * A.cwiseAbs().sum() * S.cwiseAbs().maxCoeff()))
    throw std::overflow_error("permutation search: the losses tr(A P S P^T) overflow float64 (scale S or A down)");
  // Moves that improve by less than tol are rounding: ignoring them keeps
  // the search from cycling on ties.
  const double tol = 1e-12 * std::max(A.norm() * S.norm(), std::numeric_limits<double>::min());
  PermutationResult result;
  result.bound = start.bound;
  double best = std::numeric_limits<double>::infinity();
  std::vector<Index> best_p;
  Eigen::VectorXd best_s;

  Neighbourhood nb(A, S, options.with_signs, tol);
  // Keeps (p, s) when its loss, recomputed from scratch (no drift from the
  // incremental updates), beats the best.
  auto consider = [&](const std::vector<Index>& p, const Eigen::VectorXd& s) {
    const double loss = permutation_loss(A, S, p, s);
    if (best_p.empty() || loss < best - tol) {
      best = loss;
      best_p = p;
      best_s = s;
    }
  };
  // Best-improvement descent by swaps (and flips) from (p, s).
  auto run_from = [&](const std::vector<Index>& p, const Eigen::VectorXd& s) {
    nb.reset(p, s);
    result.moves += nb.descend(out_of_time, result.timed_out);
    consider(nb.permutation(), nb.signs());
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
  // orthogonal) and from the barycentre J / m, projected. Each iteration
  // solves a linear assignment (O(m^3), slow on structured gradients): 30
  // iterations, up to m = 128 only.
  const int fw_iterations = 30;
  if (m >= 2 && m <= 128 && !out_of_time()) {
    const std::vector<Index> fw = frank_wolfe(A, S, start.P.array().square().matrix(), fw_iterations);
    run_from(fw, signs_of(fw));
  }
  if (m >= 2 && m <= 128 && !out_of_time()) {
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
    const Index K = std::min<Index>(m, m <= 128 ? 24 : 4);
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
      for (Index r = reversed ? 0 : 1; r < m && !out_of_time(); ++r) {
        std::vector<Index> p(static_cast<std::size_t>(m));
        Eigen::VectorXd t(m);
        for (Index i = 0; i < m; ++i) {
          p[static_cast<std::size_t>(i)] = base[static_cast<std::size_t>((i + r) % m)];
          t[i] = base_s[(i + r) % m];
        }
        const double loss = permutation_loss(A, S, p, t);
        if (loss < scan_best - tol) {
          scan_best = loss;
          scan_p = std::move(p);
          scan_s = t;
        }
      }
    }
    if (!scan_p.empty()) run_from(std::move(scan_p), std::move(scan_s));
  };
  // Polish: from the best, alternate best-improvement descents by swaps
  // (and flips) and the most improving segment reversal (O(m^3 / 6) a scan,
  // Neighbourhood::best_reversal) until neither improves, then scan the
  // rotations. The polishes within the tabu search (`full` false) stop
  // after `m / 8 + 4` reversals on large m (m > 128).
  auto polish = [&](bool full) {
    if (m >= 3 && !out_of_time()) {
      nb.reset(best_p, best_s);
      const Index cap = full || m <= 128 ? std::numeric_limits<Index>::max() : m / 8 + 4;
      for (Index reversals = 0; !out_of_time(); ++reversals) {
        result.moves += nb.descend(out_of_time, result.timed_out);
        if (reversals >= cap || out_of_time() || !nb.reverse_best()) break;
        ++result.moves;
      }
      consider(nb.permutation(), nb.signs());
    }
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

  polish(true);

  // 3. Robust tabu search from the best: max_iterations rounds of
  // max(8, 8192 / m) steps each (O(m^2) a step: a round costs O(m)). The best is polished after improving rounds (at
  // most every 10 rounds: the rotation scan costs O(m^3)), and the walk
  // continues from it; after 10 rounds without improvement the walk
  // restarts from a random perturbation of the best (a segment reversal, or
  // a few swaps and flips) with a fresh tabu memory.
  std::mt19937_64 rng(options.seed);
  auto perturbed = [&](std::vector<Index>& p, Eigen::VectorXd& s) {
    p = best_p;
    s = best_s;
    const Index strength = 2 + static_cast<Index>(rng() % static_cast<std::uint64_t>(std::max<Index>(1, std::min<Index>(m / 4, 8))));
    if (rng() & 1u) {  // reverse a random segment (what swaps cannot undo in an ordering)
      const auto a = static_cast<Index>(rng() % static_cast<std::uint64_t>(m));
      const auto b = static_cast<Index>(rng() % static_cast<std::uint64_t>(m));
      std::reverse(p.begin() + std::min(a, b), p.begin() + std::max(a, b) + 1);
      const Eigen::VectorXd t = s;
      for (Index i = std::min(a, b), j = std::max(a, b); i <= std::max(a, b); ++i, --j) s[i] = t[j];
    } else {
      for (Index k = 0; k < strength; ++k) {
        const auto a = static_cast<Index>(rng() % static_cast<std::uint64_t>(m));
        auto b = static_cast<Index>(rng() % static_cast<std::uint64_t>(m - 1));
        if (b >= a) ++b;
        std::swap(p[static_cast<std::size_t>(a)], p[static_cast<std::size_t>(b)]);
        std::swap(s[a], s[b]);
        if (options.with_signs && (rng() & 1u)) s[a] = -s[a];
      }
    }
  };
  if (m >= 2 && options.max_iterations > 0 && !out_of_time()) {
    TabuSearch tabu(nb, tol);
    nb.reset(best_p, best_s);
    const Index steps = std::max<Index>(8, 8192 / m);
    Index stalled = 0, last_polish = 0;
    bool improved = false;
    for (Index it = 0; it < options.max_iterations && !out_of_time(); ++it) {
      const double before = best;
      double walked = best;
      result.moves += tabu.walk(steps, rng, out_of_time, result.timed_out, walked, best_p, best_s);
      ++result.iterations;
      if (walked < before) {
        best = permutation_loss(A, S, best_p, best_s);  // from scratch
        stalled = 0;
        improved = true;
        if (it + 1 - last_polish >= 10) {
          polish(false);
          last_polish = it + 1;
          nb.reset(best_p, best_s);
        }
      } else if (++stalled >= 10) {
        stalled = 0;
        std::vector<Index> p;
        Eigen::VectorXd s;
        perturbed(p, s);
        nb.reset(p, s);
        tabu.clear();
      }
    }
    if (improved && !out_of_time()) polish(true);  // the full polish of the walks' best
  }
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
