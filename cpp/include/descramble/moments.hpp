// Weighted first and second central moments of a set of samples (docs/math.md §1, §7).
#pragma once

#include <cstdint>

#include <Eigen/Core>

#include "descramble/chunk.hpp"

namespace descramble {

/// The physical memory of this machine in bytes (2^40 where it cannot tell).
double physical_memory_bytes() noexcept;

/// Returns `n` when an n x n float64 matrix fits in physical memory; throws
/// std::invalid_argument naming n_features otherwise (a hostile file header
/// must not make the core try to allocate an impossible state).
Index check_feature_count(Index n);

/// The sufficient statistics of a weighted sample set, kept about a fixed
/// origin `shift` so that data with a large common offset keep full relative
/// accuracy (docs/math.md §7):
///
///   count    number of rows seen (rows of zero weight included),
///   weight   W = sum_i w_i,
///   mean     sum_i w_i (x_i - shift) / W,
///   scatter  sum_i w_i (x_i - m)(x_i - m)^T with m = shift + mean (full, symmetric).
///
/// Two sets combine exactly with the Chan-Golub-LeVeque update (merge), so
/// any chunking and any merge order give the same result up to rounding.
struct Moments {
  Eigen::VectorXd shift;
  std::int64_t count = 0;
  double weight = 0.0;
  Eigen::VectorXd mean;
  Eigen::MatrixXd scatter;

  Moments() = default;
  /// Empty moments of `n` features about the origin `shift`.
  Moments(Index n, const Eigen::Ref<const Eigen::VectorXd>& origin);
  /// Empty moments of `n` features about zero.
  explicit Moments(Index n);

  Index n_features() const noexcept { return mean.size(); }

  /// Mean of the samples, shift + mean (NaN where no weight has been seen).
  Eigen::VectorXd absolute_mean() const;

  /// Adds `other` into this set (Chan, Golub & LeVeque 1979). Both must have
  /// the same number of features; their shifts may differ. An empty set
  /// takes over the other's shift. Throws std::overflow_error, changing
  /// nothing, when the row counts together exceed 2^63 - 1.
  void merge(const Moments& other);
};

}  // namespace descramble
