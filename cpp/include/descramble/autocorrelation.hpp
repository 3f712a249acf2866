// A thread-safe streaming accumulator of autocorrelation and covariance
// matrices (docs/math.md §1, §7).
#pragma once

#include <cstdint>
#include <mutex>

#include <Eigen/Core>

#include "descramble/chunk.hpp"
#include "descramble/moments.hpp"
#include "descramble/reduce.hpp"

namespace descramble {

/// Streams chunks of samples (rows) into their weighted moments, from which it
/// gives the uncentred autocorrelation E[x x^T] and the covariance.
///
/// Every method may be called from several threads at once: a chunk is
/// reduced without holding the lock, and only the O(n^2) merge of its result
/// is serialised. A chunk that is rejected (non-finite values, bad weights,
/// wrong width) leaves the accumulator exactly as it was.
class Autocorrelation {
 public:
  /// An empty accumulator of `n_features` features (n_features >= 1).
  explicit Autocorrelation(Index n_features, ReduceOptions options = {});
  /// An accumulator holding `moments` (validated: consistent sizes, finite).
  explicit Autocorrelation(Moments moments, ReduceOptions options = {});

  Autocorrelation(const Autocorrelation& other);
  Autocorrelation& operator=(const Autocorrelation& other);

  Index n_features() const noexcept { return n_features_; }
  std::int64_t count() const;
  double weight_sum() const;
  /// The weighted mean (NaN while no weight has been seen).
  Eigen::VectorXd mean() const;
  /// sum_i w_i (x_i - mean)(x_i - mean)^T, symmetric.
  Eigen::MatrixXd scatter() const;
  /// A consistent snapshot of the whole state.
  Moments moments() const;

  /// (1/W) sum_i w_i x_i x_i^T. Throws std::domain_error when W = 0.
  Eigen::MatrixXd autocorrelation() const;
  /// scatter / (W - ddof). Throws std::domain_error unless W - ddof > 0.
  Eigen::MatrixXd covariance(double ddof = 1.0) const;

  /// Adds the rows of `chunk`, with optional per-row `weights` (chunk.rows
  /// finite non-negative values, read in place).
  void update(const ChunkView& chunk, const double* weights = nullptr);
  /// Adds everything `other` has accumulated (other may be *this).
  void merge(const Autocorrelation& other);

  /// A copy of the options (read under the lock: set_options may run concurrently).
  ReduceOptions options() const;
  void set_options(const ReduceOptions& options);

 private:
  void commit(const Moments& part);

  Index n_features_;
  ReduceOptions options_;
  mutable std::mutex mutex_;
  Moments state_;
};

}  // namespace descramble
