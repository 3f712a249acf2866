// Reduction of one chunk of samples to its Moments (docs/math.md §7).
#pragma once

#include <Eigen/Core>

#include "descramble/chunk.hpp"
#include "descramble/errors.hpp"
#include "descramble/moments.hpp"

namespace descramble {

/// Arithmetic of the block products.
enum class Precision {
  /// float64 products and sums throughout.
  float64,
  /// Centred values rounded to float32 (straight from the chunk, no float64
  /// copy), float32 products over one block of rows (`block_rows`, 512 to
  /// 2048 by default), float64 sums across blocks.
  /// About twice as fast; the error of each block's contribution is bounded
  /// by about (block_rows + 2) * 2^-24 * sum_i |c_i| |c_i|^T (c_i the centred
  /// rows), and does not grow with the number of blocks. Rounding errors of
  /// different rows have random signs, so the measured error is far below
  /// the bound (about 1e-8 relative on Gaussian data). Each block is scaled
  /// by a power of two (exact) before its float32 product and the product
  /// scaled back in float64, so any magnitude float64 handles (1e-150 to
  /// 1e150, say) works: float32's range does not limit the data.
  mixed,
};

/// How reduce_chunk spreads a chunk over the threads.
enum class Parallelism {
  /// `blocks`, unless the workers' n x n partials would not fit in 1 GiB
  /// (n above about 8000 on two cores): then `within_block`.
  automatic,
  /// Each worker reduces whole blocks of rows into its own n x n partial
  /// result; the partials are merged at the end. Best for small n.
  blocks,
  /// One block at a time: the threads load and centre its rows together,
  /// then a threaded BLAS product updates the single shared result. Needs
  /// one n x n result only; slower than `blocks` where both fit (measured).
  within_block,
};

/// How reduce_chunk splits its work.
struct ReduceOptions {
  /// Worker threads; 0 means every hardware thread.
  int threads = 0;
  /// Rows per block; 0 chooses from the number of features.
  Index block_rows = 0;
  Precision precision = Precision::float64;
  Parallelism parallelism = Parallelism::automatic;
};

/// The BLAS behind the block products ("eigen" when built without one).
const char* product_backend();

/// Reduces `chunk` to its moments about `origin`.
///
/// The chunk is read in place, in blocks of rows converted to float64. Each
/// block is centred about its own mean and its scatter added with a rank-k
/// update; blocks are combined with the Chan-Golub-LeVeque rule, one partial
/// result per thread, and the partial results merged at the end, so the
/// outcome does not depend on the block size or the number of threads beyond
/// rounding.
///
/// `weights`, when not null, holds `chunk.rows` finite non-negative weights.
///
/// Throws NonFiniteError naming the first offending row when the chunk holds
/// NaN or infinity (or a row overflows once centred), std::invalid_argument
/// naming the entry when a weight is negative or not finite, and
/// std::overflow_error when the sums overflow float64.
Moments reduce_chunk(const ChunkView& chunk, const double* weights,
                     const Eigen::Ref<const Eigen::VectorXd>& origin,
                     const ReduceOptions& options = {});

/// Checks `count` weights: each finite and non-negative, and not subnormal
/// (0 < w < DBL_MIN is refused: such weights lose precision). Throws
/// InvalidWeightError naming the first offending entry.
void validate_weights(const double* weights, Index count);

/// Reads row `row` of `chunk` into a float64 vector.
Eigen::VectorXd read_row(const ChunkView& chunk, Index row);

/// Converts rows [r0, r0 + count) of `chunk` to float64, row-major, into `out`
/// (count * chunk.cols values).
void copy_rows(const ChunkView& chunk, Index r0, Index count, double* out);

}  // namespace descramble
