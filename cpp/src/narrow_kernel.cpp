#include "narrow_kernel.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DESCRAMBLE_X86_KERNELS 1
#include <immintrin.h>
#define DESCRAMBLE_TARGET_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace descramble::detail {
namespace {

// The micro-kernel's tile: MR columns of A broadcast (the columns p of C)
// times NV vectors of W columns (the rows q of C), summed over every row of
// the block in registers, then added to (or stored in) C once.
constexpr int MR = 4;
constexpr int max_vectors = 3;

// Adds (overwrite: stores) a finished tile row: value[l] is C(q0 + l, p) for
// l < width; only the lower triangle (q >= p) inside n x n is written.
template <class T, bool overwrite>
inline void store_lanes(const T* value, int width, Index p, Index q0, Index n, T* column) {
  for (int l = 0; l < width; ++l) {
    const Index q = q0 + l;
    if (q >= p && q < n) {
      if (overwrite) column[q] = value[l];
      else column[q] += value[l];
    }
  }
}

// --- The portable kernel: the same blocking in plain C++ -------------------

template <class T, int W, int NV, bool overwrite>
void generic_tile(const T* a, Index rows, Index ps, Index p0, Index q0, Index n, T* c, Index ldc) {
  T acc[MR][NV * W] = {};
  const T* pp = a + (p0 / W) * ps + p0 % W;
  const T* qp = a + (q0 / W) * ps;
  for (Index k = 0; k < rows; ++k, pp += W, qp += W) {
    for (int i = 0; i < MR; ++i) {
      const T x = pp[i];
      for (int v = 0; v < NV; ++v)
        for (int l = 0; l < W; ++l) acc[i][v * W + l] += x * qp[v * ps + l];
    }
  }
  for (int i = 0; i < MR && p0 + i < n; ++i) {
    store_lanes<T, overwrite>(acc[i], NV * W, p0 + i, q0, n, c + (p0 + i) * ldc);
  }
}

#ifdef DESCRAMBLE_X86_KERNELS
// --- AVX2 + FMA ----------------------------------------------------------
// The accumulators are MR x NV named vectors (at most 12 of the 16
// registers; named variables rather than an array, which GCC would keep in
// memory), the NV column vectors of the current row and one broadcast take
// the rest. The finished tile goes through an aligned buffer to C.

// Defines avx2_tile for one element type: VEC the vector type, W its lanes.
#define DESCRAMBLE_AVX2_TILE(T, VEC, W, SETZERO, LOADU, BCAST, FMADD, STORE)                                    \
  template <int NV, bool overwrite>                                                                            \
  DESCRAMBLE_TARGET_AVX2 void avx2_tile(const T* a, Index rows, Index ps, Index p0, Index q0, Index n, T* c,     \
                                        Index ldc) {                                                           \
    VEC c00 = SETZERO(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;                                \
    VEC c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;                                      \
    const T* pp = a + (p0 / W) * ps + p0 % W;                                                                  \
    const T* qp = a + (q0 / W) * ps;                                                                           \
    const T* row = pp; /* the MR broadcast values of row k */                                                  \
    for (Index k = 0; k < rows; ++k, row += W, qp += W) {                                                      \
      const VEC b0 = LOADU(qp);                                                                                \
      const VEC b1 = NV > 1 ? LOADU(qp + ps) : b0;                                                             \
      const VEC b2 = NV > 2 ? LOADU(qp + 2 * ps) : b0;                                                         \
      VEC x = BCAST(row);                                                                                 \
      c00 = FMADD(x, b0, c00);                                                                                 \
      if (NV > 1) c01 = FMADD(x, b1, c01);                                                                     \
      if (NV > 2) c02 = FMADD(x, b2, c02);                                                                     \
      x = BCAST(row + 1);                                                                                 \
      c10 = FMADD(x, b0, c10);                                                                                 \
      if (NV > 1) c11 = FMADD(x, b1, c11);                                                                     \
      if (NV > 2) c12 = FMADD(x, b2, c12);                                                                     \
      x = BCAST(row + 2);                                                                                 \
      c20 = FMADD(x, b0, c20);                                                                                 \
      if (NV > 1) c21 = FMADD(x, b1, c21);                                                                     \
      if (NV > 2) c22 = FMADD(x, b2, c22);                                                                     \
      x = BCAST(row + 3);                                                                                 \
      c30 = FMADD(x, b0, c30);                                                                                 \
      if (NV > 1) c31 = FMADD(x, b1, c31);                                                                     \
      if (NV > 2) c32 = FMADD(x, b2, c32);                                                                     \
    }                                                                                                          \
    alignas(32) T tile[MR][max_vectors * W];                                                                   \
    STORE(tile[0], c00), STORE(tile[0] + W, c01), STORE(tile[0] + 2 * W, c02);                                 \
    STORE(tile[1], c10), STORE(tile[1] + W, c11), STORE(tile[1] + 2 * W, c12);                                 \
    STORE(tile[2], c20), STORE(tile[2] + W, c21), STORE(tile[2] + 2 * W, c22);                                 \
    STORE(tile[3], c30), STORE(tile[3] + W, c31), STORE(tile[3] + 2 * W, c32);                                 \
    for (int i = 0; i < MR && p0 + i < n; ++i) {                                                               \
      const Index p = p0 + i;                                                                                  \
      T* column = c + p * ldc;                                                                                 \
      for (int v = 0; v < NV; ++v) {                                                                           \
        const Index q = q0 + W * v;                                                                            \
        if (q >= p && q + W <= n) {                                                                            \
          for (int l = 0; l < W; ++l) {                                                                        \
            if (overwrite) column[q + l] = tile[i][W * v + l];                                                 \
            else column[q + l] += tile[i][W * v + l];                                                          \
          }                                                                                                    \
        } else {                                                                                               \
          store_lanes<T, overwrite>(tile[i] + W * v, W, p, q, n, column);                                      \
        }                                                                                                      \
      }                                                                                                        \
    }                                                                                                          \
  }

DESCRAMBLE_AVX2_TILE(double, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_broadcast_sd, _mm256_fmadd_pd,
                     _mm256_store_pd)
DESCRAMBLE_AVX2_TILE(float, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_broadcast_ss, _mm256_fmadd_ps,
                     _mm256_store_ps)
#undef DESCRAMBLE_AVX2_TILE
#endif

// Walks the lower triangle of C in tiles: for each group of MR columns p,
// the vectors of rows q from the group's first vector down to n, at most
// max_vectors at a time. A group's MR columns of the block stay in L1 while
// its tiles stream the other columns.
template <class T, int W, bool overwrite>
void for_each_tile(ProductKernel kernel, const T* a, Index rows, Index n, Index ps, T* c, Index ldc) {
  for (Index p0 = 0; p0 < n; p0 += MR) {
    for (Index q0 = p0 / W * W; q0 < n; q0 += max_vectors * W) {
      const Index vectors = std::min<Index>(max_vectors, (n - q0 + W - 1) / W);
#ifdef DESCRAMBLE_X86_KERNELS
      if (kernel == ProductKernel::avx2) {
        if (vectors == 3) avx2_tile<3, overwrite>(a, rows, ps, p0, q0, n, c, ldc);
        else if (vectors == 2) avx2_tile<2, overwrite>(a, rows, ps, p0, q0, n, c, ldc);
        else avx2_tile<1, overwrite>(a, rows, ps, p0, q0, n, c, ldc);
        continue;
      }
#else
      (void)kernel;
#endif
      if (vectors == 3) generic_tile<T, W, 3, overwrite>(a, rows, ps, p0, q0, n, c, ldc);
      else if (vectors == 2) generic_tile<T, W, 2, overwrite>(a, rows, ps, p0, q0, n, c, ldc);
      else generic_tile<T, W, 1, overwrite>(a, rows, ps, p0, q0, n, c, ldc);
    }
  }
}

ProductKernel runnable(ProductKernel kernel) noexcept {
  return kernel == ProductKernel::avx2 && !cpu_has_avx2_fma() ? ProductKernel::generic : kernel;
}

}  // namespace

bool cpu_has_avx2_fma() noexcept {
#ifdef DESCRAMBLE_X86_KERNELS
  static const bool supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return supported;
#else
  return false;
#endif
}

// Measured end to end (descramble_bench roofline, "x blas", two runs on the
// loaded 2-core machine): the narrow kernel gains 1.0-1.3x at n = 128 and
// 256 in both precisions; below about 96 columns the block loads dominate
// and the packed layout measured 0.88-0.97x (n = 16, 64), and at 512 the
// float32 path measured 0.81-0.91x: there the BLAS stays.
Index narrow_crossover(bool single) noexcept { return single ? 256 : 256; }

Index narrow_lower_bound() noexcept { return 96; }

ProductKernel choose_product_kernel(Index n, bool single) {
  if (const char* forced = std::getenv("DESCRAMBLE_PRODUCT_KERNEL")) {
    const std::string name(forced);
    if (name == "blas") return ProductKernel::blas;
    if (name == "generic") return ProductKernel::generic;
    if (name == "avx2") return runnable(ProductKernel::avx2);
  }
  return cpu_has_avx2_fma() && n >= narrow_lower_bound() && n <= narrow_crossover(single) ? ProductKernel::avx2
                                                                                           : ProductKernel::blas;
}

void narrow_rank_update(ProductKernel kernel, const double* a, Index rows, Index n, Index panel_stride, double* c,
                        Index ldc) {
  if (rows == 0) return;
  for_each_tile<double, 4, false>(runnable(kernel), a, rows, n, panel_stride, c, ldc);
}

void narrow_rank_update_overwrite(ProductKernel kernel, const float* a, Index rows, Index n, Index panel_stride,
                                  float* c, Index ldc) {
  for_each_tile<float, 8, true>(runnable(kernel), a, rows, n, panel_stride, c, ldc);
}

}  // namespace descramble::detail
