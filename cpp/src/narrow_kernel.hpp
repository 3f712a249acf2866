// The narrow-block kernel: lower(C) += A^T A (float64) and lower(C) = A^T A
// (float32, precision="mixed") for a tall, narrow block A (packed in column
// panels), with
// register-blocked micro-kernels (4 columns broadcast x up to 3 SIMD vectors
// of columns, accumulated over every row of the block in registers). The
// SIMD version (AVX2 + FMA) is chosen at run time, so a library built with
// generic flags stays portable; a plain C++ version of the same blocking is
// the fallback. OpenBLAS keeps the wide blocks, where it is faster (measured:
// see narrow_crossover).
#pragma once

#include "descramble/chunk.hpp"

namespace descramble::detail {

/// Which implementation forms a block product.
enum class ProductKernel {
  blas,     ///< the BLAS syrk (OpenBLAS, or Eigen without one)
  generic,  ///< the narrow kernel in plain C++ (any CPU)
  avx2,     ///< the narrow kernel with AVX2 + FMA (x86-64 CPUs that have them)
};

/// The narrow kernel's operand is a block of `rows` x n values stored in
/// panels of W columns (W = 4 float64 or 8 float32 values, one 32-byte SIMD
/// vector): element (i, j) is at a[(j / W) * panel_stride + i * W + j % W],
/// panel_stride >= rows * W, so that every micro-kernel streams whole
/// vectors through memory in order. The panels cover n rounded up to W
/// columns; the values in the padding columns are read but never reach the
/// result (they may hold anything). This many columns always suffice:
inline Index narrow_padded_cols(Index n) noexcept { return (n + 7) / 8 * 8; }

/// The panel width for float64 (4) or float32 (8) values.
constexpr Index narrow_panel_width(bool single) noexcept { return single ? 8 : 4; }

/// True when this CPU (and the build) can run the AVX2 + FMA kernel.
bool cpu_has_avx2_fma() noexcept;

/// The widest n (inclusive) for which the narrow kernel replaces the BLAS
/// (float64, or the float32 products of mixed precision); measured on a
/// 2-core AMD EPYC (Zen 3), see docs/benchmarks.md.
Index narrow_crossover(bool single) noexcept;

/// The narrowest n for which the narrow kernel replaces the BLAS (below it
/// the block loads dominate the time; measured likewise).
Index narrow_lower_bound() noexcept;

/// The kernel for blocks of n columns: the environment variable
/// DESCRAMBLE_PRODUCT_KERNEL (blas | generic | avx2 | auto; for tests and
/// benchmarks) when set, otherwise the AVX2 kernel when the CPU has it and
/// narrow_lower_bound() <= n <= narrow_crossover, otherwise the BLAS. "avx2" on a CPU without AVX2
/// gives the generic kernel.
ProductKernel choose_product_kernel(Index n, bool single);

/// lower(C) += A^T A: A is rows x n in panels of 4 (see above); C is
/// column-major n x n with leading dimension ldc; its strict upper triangle
/// is not touched. `kernel` is generic or avx2.
void narrow_rank_update(ProductKernel kernel, const double* a, Index rows, Index n, Index panel_stride, double* c,
                        Index ldc);

/// lower(C) = A^T A in float32, A in panels of 8.
void narrow_rank_update_overwrite(ProductKernel kernel, const float* a, Index rows, Index n, Index panel_stride,
                                  float* c, Index ldc);

}  // namespace descramble::detail
