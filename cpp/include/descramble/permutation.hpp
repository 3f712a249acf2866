// Permutation descramblers (issue 13): the smoothest ordering of a layer's
// hidden units, and of their signs.
//
// min over permutation matrices Pi of eta(Pi) = tr(A Pi S Pi^T) is a
// quadratic assignment problem (Koopmans-Beckmann form, NP-hard). Every
// permutation is orthogonal, so the closed-form bound sum_k lambda_k mu_k
// (descrambler.hpp) is a lower bound: each answer carries a certificate,
// its relative gap (eta(Pi) - bound) / bound.
//
// The search:
//  1. starts: the orthogonal optimum P* = T U^T projected onto the
//     permutations by an exact linear assignment (Hungarian /
//     Jonker-Volgenant style shortest augmenting paths, O(m^3)) maximising
//     sum_i (P*_{i p_i})^2, and one maximising sum_i |P*_{i p_i}|; up to
//     m = 128 Frank-Wolfe (FAQ) runs from P*^2 and from J / m; sign-aligned
//     projections of T D U^T; the identity; and an optional caller's start;
//  2. from each start a best-improvement descent by pair swaps (and sign
//     flips when signed), every swap's change of the loss read in O(1) from
//     C = A Pi S Pi^T, which each applied move updates in O(m^2) (formulas
//     in permutation.cpp); the best is then polished by alternating those
//     descents with the most improving segment reversal (all reversals'
//     changes in O(m^3 / 6), O(m^2 w) for A of bandwidth w such as finite
//     differences) and by a scan of its rotations;
//  3. a robust tabu search (Taillard 1991) from the best: `max_iterations`
//     rounds of max(8, 8192 / m) swap (and flip) moves, the best move not
//     tabu each step, tenures drawn from a std::mt19937_64 seeded by
//     `seed`; improvements are polished, and after 10 rounds without one the
//     walk restarts from a random perturbation of the best.
// Deterministic for a seed unless `time_limit` cuts the search short.
//
// Conventions: the permutation p is an index array with (Pi x)_i = x[p_i],
// i.e. Pi(i, p_i) = 1; with signs s (+1/-1), (Pi x)_i = s_i x[p_i]. Hidden
// unit p_i of the original layer goes to position i of the descrambled one.
#pragma once

#include <cstdint>
#include <vector>

#include <Eigen/Core>

#include "descramble/chunk.hpp"
#include "descramble/descrambler.hpp"
#include "descramble/smoothness.hpp"

namespace descramble {

/// The knobs of the permutation search.
struct PermutationOptions {
  bool with_signs = false;       ///< search signed permutations (odd activations such as tanh)
  std::uint64_t seed = 0;        ///< seeds the perturbations of the iterated local search
  Index max_iterations = 100;    ///< tabu search rounds after the starts, max(8, 8192 / m) moves each (0: starts and local search only)
  double time_limit = 0.0;       ///< seconds; 0 = none. When it cuts the search, the result depends on timing
  std::vector<Index> initial;    ///< an extra start (a permutation of 0..m-1), or empty
  std::vector<double> initial_signs;  ///< its signs (+1/-1; empty: all +1); only with with_signs
};

/// A (signed) permutation descrambler and its certificate.
struct PermutationResult {
  std::vector<Index> permutation;  ///< p: (Pi x)_i = s_i x[p_i]
  Eigen::VectorXd signs;           ///< s (+1/-1) when signed; empty otherwise
  double loss = 0.0;               ///< eta(Pi) = tr(A Pi S Pi^T), recomputed from scratch
  double bound = 0.0;              ///< sum_k lambda_k mu_k, a lower bound over all orthogonal matrices
  double gap = 0.0;                ///< max(0, (loss - bound) / bound); 0 when loss <= bound, inf when bound = 0 < loss
  Index iterations = 0;            ///< tabu search rounds run
  Index moves = 0;                 ///< swaps, flips and reversals applied, over all descents and tabu walks
  bool timed_out = false;          ///< true when time_limit stopped the search

  /// Pi as a dense m x m matrix (Pi(i, p_i) = s_i).
  Eigen::MatrixXd matrix() const;
};

/// The relative certificate gap max(0, (loss - bound) / bound); 0 when
/// loss <= bound (rounding), +inf when bound <= 0 < loss.
double certificate_gap(double loss, double bound);

/// eta(Pi) = sum_ij A_ij s_i s_j S_{p_i p_j} for the (signed) permutation (p, s) (s empty: all +1).
double permutation_loss(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                        const std::vector<Index>& permutation, const Eigen::VectorXd& signs = Eigen::VectorXd());

/// The change of eta when positions a != b of (p, s) exchange their entries:
/// the O(m) formula the local search uses (exposed for tests).
double swap_delta(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                  const std::vector<Index>& permutation, const Eigen::VectorXd& signs, Index a, Index b);

/// The change of eta when the segment a..b (a < b) of (p, s) is reversed
/// (O((b - a) x nonzeros per row of A); exposed for tests).
double reversal_delta(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                      const std::vector<Index>& permutation, const Eigen::VectorXd& signs, Index a, Index b);

/// The change of eta when the sign s_a flips (O(m); exposed for tests).
double flip_delta(const Eigen::Ref<const Eigen::MatrixXd>& gram, const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                  const std::vector<Index>& permutation, const Eigen::VectorXd& signs, Index a);

/// For tests: the state the search's neighbourhood reaches from (p, s)
/// after `moves` random swaps (and sign flips when `signs` is not empty),
/// drawn from `seed` and applied with its incremental O(m^2) updates of
/// C = A Pi S Pi^T, and the deltas it then reports: swap_deltas(a, b) for
/// a != b, flip_deltas(a) (signed only) and the running loss.
struct NeighbourhoodProbe {
  std::vector<Index> permutation;
  Eigen::VectorXd signs;
  Eigen::MatrixXd swap_deltas;
  Eigen::VectorXd flip_deltas;
  double loss = 0.0;
};
NeighbourhoodProbe probe_neighbourhood(const Eigen::Ref<const Eigen::MatrixXd>& gram,
                                       const Eigen::Ref<const Eigen::MatrixXd>& hidden,
                                       const std::vector<Index>& permutation, const Eigen::VectorXd& signs,
                                       Index moves, std::uint64_t seed);

/// An exact linear assignment: the permutation p maximising sum_i W(i, p_i)
/// (W square and finite), by shortest augmenting paths with potentials
/// (the Hungarian method, O(m^3)).
std::vector<Index> linear_assignment(const Eigen::Ref<const Eigen::MatrixXd>& weights);

/// The (signed) permutation minimising eta(Pi) = tr(A Pi S Pi^T) that the
/// search finds, starting from the closed form `start` (its P projected onto
/// the permutations, its hidden S and its bound) under the operator's Gram
/// matrix A (m x m). Throws std::invalid_argument naming the argument on bad
/// input (sizes, a malformed initial permutation, negative budgets).
PermutationResult permutation_search(const ClosedForm& start, const Eigen::Ref<const Eigen::MatrixXd>& gram,
                                     const PermutationOptions& options = PermutationOptions());

/// descramble_closed_form(hidden, smoothness) followed by permutation_search.
PermutationResult descramble_permutation(const Eigen::Ref<const Eigen::MatrixXd>& hidden, const Smoothness& smoothness,
                                         const PermutationOptions& options = PermutationOptions(), int threads = 0);

}  // namespace descramble
