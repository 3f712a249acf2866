// The narrow-block kernel: lower(C) += A^T A for a tall, narrow block A of
// rows (packed in column panels), in float64 and in the float32 of
// precision="mixed", with register-blocked micro-kernels (4 columns
// broadcast, 8 with AVX-512, x up to 3 SIMD vectors of columns, accumulated
// over every row of the panel block in registers; AVX-512 forms the blocks
// on the diagonal by rotating a vector's lanes); and the packing of source
// rows into those panels, shifted by an estimate of the mean as they are
// read (so that the block is read from memory once; see reduce.cpp and
// docs/math.md §7). The SIMD versions (AVX-512, AVX2 + FMA) are chosen at
// run time, so a library built with generic flags stays portable; a plain
// C++ version of the same blocking is the fallback. OpenBLAS keeps the wide
// blocks, where it is faster (measured: see narrow_crossover).
#pragma once

#include "descramble/chunk.hpp"

namespace descramble::detail {

/// Which implementation forms a block product.
enum class ProductKernel {
  blas,     ///< the BLAS syrk (OpenBLAS, or Eigen without one)
  generic,  ///< the narrow kernel in plain C++ (any CPU)
  avx2,     ///< the narrow kernel with AVX2 + FMA (x86-64 CPUs that have them)
  avx512,   ///< the narrow kernel with AVX-512F (x86-64 CPUs that have it)
};

/// The narrow kernel's operand is a block of `rows` x n values stored in
/// panels of W columns (one SIMD vector: W = 4 float64 or 8 float32 values
/// for the generic and AVX2 kernels, 8 or 16 for AVX-512): element (i, j) is
/// at a[(j / W) * panel_stride + i * W + j % W], panel_stride >= rows * W, so
/// that every micro-kernel streams whole vectors through memory in order.
/// The panels cover n rounded up to W columns; the values in the padding
/// columns are read but never reach the result (they may hold anything).
/// This many columns always suffice:
inline Index narrow_padded_cols(Index n) noexcept { return (n + 15) / 16 * 16; }

/// The panel width of `kernel` (blas: as generic) for float64 or float32
/// (`single`) values.
constexpr Index narrow_panel_width(ProductKernel kernel, bool single) noexcept {
  return (kernel == ProductKernel::avx512 ? 8 : 4) * (single ? 2 : 1);
}

/// Rows packed at once (a multiple of 8): the packed rows, at most 128 KiB
/// (384 KiB for n > 128, where C itself no longer fits in L2), stay in L2
/// while the micro-kernels sweep them, and a micro-kernel's 3 column vectors
/// over these rows (at most 24 KiB; 48 KiB with AVX-512) stay in L1 or L2.
Index narrow_panel_rows(Index n, bool single) noexcept;

/// True when this CPU (and the build) can run the AVX2 + FMA kernel.
bool cpu_has_avx2_fma() noexcept;

/// True when this CPU (and the build) can run the AVX-512 kernel.
bool cpu_has_avx512() noexcept;

/// The kernel that runs for `kernel` on this CPU: avx512 without AVX-512
/// falls back to avx2, avx2 without AVX2 + FMA to generic. (A panel layout
/// is that of the kernel asked for: see narrow_panel_width.)
ProductKernel runnable(ProductKernel kernel) noexcept;

/// The widest n (inclusive) for which the narrow kernel `kernel` (avx2 or
/// avx512) replaces the BLAS (float64, or the float32 products of mixed
/// precision); measured, see docs/benchmarks.md.
Index narrow_crossover(ProductKernel kernel, bool single) noexcept;

/// The kernel for blocks of n columns: the environment variable
/// DESCRAMBLE_PRODUCT_KERNEL (blas | generic | avx2 | avx512 | auto; for
/// tests and benchmarks) when set, otherwise the fastest SIMD kernel the CPU
/// runs (AVX-512, then AVX2) when n <= its narrow_crossover, otherwise the
/// BLAS. A forced kernel the CPU cannot run gives runnable(kernel).
ProductKernel choose_product_kernel(Index n, bool single);

/// Memory to fetch into cache while a product runs (the next rows to pack):
/// `rows` rows of `row_bytes` bytes, `row_stride` bytes apart. Reading the
/// stream overlaps the arithmetic instead of following it.
struct Prefetch {
  const char* base = nullptr;
  Index row_stride = 0;
  Index rows = 0;
  Index row_bytes = 0;
};

/// lower(C) += A^T A: A is rows x n in the panels of `kernel` (see above);
/// C is column-major n x n with leading dimension ldc; its strict upper
/// triangle is not touched. `kernel` is generic, avx2 or avx512: the layout
/// is its own, and a SIMD kernel the CPU lacks runs as the generic kernel
/// on that layout (choose_product_kernel never picks one). The `prefetch` region's
/// cache lines are requested (into L2) spread over the product's tiles.
void narrow_rank_update(ProductKernel kernel, const double* a, Index rows, Index n, Index panel_stride, double* c,
                        Index ldc, const Prefetch& prefetch = {});

/// lower(C) += A^T A in float32 (panels of 8, or 16 for avx512).
void narrow_rank_update(ProductKernel kernel, const float* a, Index rows, Index n, Index panel_stride, float* c,
                        Index ldc, const Prefetch& prefetch = {});

/// The rows being packed: `rows` source rows of n contiguous values,
/// `row_stride` values apart, each shifted to y = (x - origin) - shift
/// (origin and shift of n values) and weighted by w (one weight a row, or
/// null for weight 1). (The AVX-512 packing into float32 panels forms
/// x - (origin + shift), scaled, in one FMA: the same up to one rounding of
/// the float64 sum origin + shift, far below float32's.)
template <class Source>
struct PackSource {
  const Source* x;
  Index row_stride;
  Index rows;
  Index n;
  const double* origin;
  const double* shift;
  const double* w;
};

/// Packs the rows with SIMD code (AVX-512 for the avx512 layout on a CPU
/// that has it, otherwise AVX2 when the CPU has it, for the avx2 and avx512
/// layouts): row i goes to panel row i as sqrt(w_i) y_i (float64, in the
/// panels of `kernel`), and sums[j] += w_i y_ij; the padding columns are set
/// to 0. Returns false, doing nothing, when no SIMD packing can run (the
/// caller packs).
bool narrow_pack(ProductKernel kernel, const PackSource<double>& source, double* panels, Index panel_stride,
                 double* sums);
bool narrow_pack(ProductKernel kernel, const PackSource<float>& source, double* panels, Index panel_stride,
                 double* sums);

/// The same into float32 panels (mixed precision): sqrt(w_i) y_i
/// times `scale` (a power of two), rounded to float32; also the largest
/// |sqrt(w_i) y_ij| (before scaling) into max_abs.
bool narrow_pack(ProductKernel kernel, const PackSource<double>& source, double scale, float* panels,
                 Index panel_stride, double* sums, double& max_abs);
bool narrow_pack(ProductKernel kernel, const PackSource<float>& source, double scale, float* panels,
                 Index panel_stride, double* sums, double& max_abs);

}  // namespace descramble::detail
