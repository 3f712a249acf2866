#include "narrow_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DESCRAMBLE_X86_KERNELS 1
#include <immintrin.h>
#define DESCRAMBLE_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define DESCRAMBLE_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif

namespace descramble::detail {
namespace {

// The micro-kernel's tile: MR columns of A broadcast (the columns p of C;
// 4, or 8 with the 32 registers of AVX-512) times NV vectors of W columns
// (the rows q of C), summed over every row of the panel block in registers,
// then added to C once.
constexpr int max_vectors = 3;

// Adds a finished tile row: value[l] is added to C(q0 + l, p) for l < width;
// only the lower triangle (q >= p) inside n x n is written.
template <class T>
inline void add_lanes(const T* value, int width, Index p, Index q0, Index n, T* column) {
  for (int l = 0; l < width; ++l) {
    const Index q = q0 + l;
    if (q >= p && q < n) column[q] += value[l];
  }
}

// True when the tile's every entry is inside the lower triangle of n x n:
// then the accumulators go to C as whole vectors.
template <int MR>
inline bool interior_tile(Index p0, Index q0, int vectors, Index W, Index n) {
  return q0 >= p0 + MR - 1 && p0 + MR <= n && q0 + vectors * W <= n;
}

// The prefetch region (the next rows to pack) split evenly over the loops
// of one product, each taking its part with next(): contiguous rows only
// (the hardware prefetcher follows other layouts as they are read). `count`
// (called only when there is a region) gives the number of loops.
class PrefetchParts {
 public:
  template <class Count>
  PrefetchParts(const Prefetch& prefetch, Count&& count) {
    if (prefetch.base == nullptr || prefetch.rows <= 0 || prefetch.row_stride != prefetch.row_bytes) return;
    const Index parts = count(), bytes = prefetch.rows * prefetch.row_bytes;
    pf_ = prefetch.base;
    end_ = pf_ + bytes;
    per_part_ = ((bytes + parts - 1) / parts + 63) / 64 * 64;
  }
  // The next loop's part: [first, second).
  std::pair<const char*, const char*> next() {
    const char* begin = pf_;
    pf_ = pf_ == nullptr ? pf_ : std::min(pf_ + per_part_, end_);
    return {begin, pf_};
  }

 private:
  const char* pf_ = nullptr;
  const char* end_ = nullptr;
  Index per_part_ = 0;
};

// --- The portable kernel: the same blocking in plain C++ -------------------

template <class T, int W, int MR, int NV>
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
  for (int i = 0; i < MR && p0 + i < n; ++i) add_lanes(acc[i], NV * W, p0 + i, q0, n, c + (p0 + i) * ldc);
}

#ifdef DESCRAMBLE_X86_KERNELS
// --- AVX2 + FMA ----------------------------------------------------------
// The accumulators are MR x NV named vectors (at most 12 of the 16
// registers; named variables rather than an array, which GCC would keep in
// memory), the NV column vectors of the current row and one broadcast take
// the rest. Every tile starts from 0 and sums its rows in registers (so a
// float32 sum runs over one group of rows, not the whole block); an
// interior tile then adds them to C as whole vectors (add_to), an edge tile
// through an aligned buffer.

// *p += v for one vector of C (unaligned).
DESCRAMBLE_TARGET_AVX2 inline void add_to(double* p, __m256d v) {
  _mm256_storeu_pd(p, _mm256_add_pd(_mm256_loadu_pd(p), v));
}
DESCRAMBLE_TARGET_AVX2 inline void add_to(float* p, __m256 v) {
  _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), v));
}

// One row of the block into the tile: the NV column vectors at Q times the
// MR broadcast values at R (uses ps, NV and the accumulators c00..c32).
#define DESCRAMBLE_TILE_ROW(VEC, LOADU, BCAST, FMADD, R, Q)                                                        \
  {                                                                                                                \
    const VEC b0 = LOADU(Q);                                                                                       \
    const VEC b1 = NV > 1 ? LOADU((Q) + ps) : b0;                                                                  \
    const VEC b2 = NV > 2 ? LOADU((Q) + 2 * ps) : b0;                                                              \
    VEC x = BCAST(R);                                                                                              \
    c00 = FMADD(x, b0, c00);                                                                                       \
    if (NV > 1) c01 = FMADD(x, b1, c01);                                                                           \
    if (NV > 2) c02 = FMADD(x, b2, c02);                                                                           \
    x = BCAST((R) + 1);                                                                                            \
    c10 = FMADD(x, b0, c10);                                                                                       \
    if (NV > 1) c11 = FMADD(x, b1, c11);                                                                           \
    if (NV > 2) c12 = FMADD(x, b2, c12);                                                                           \
    x = BCAST((R) + 2);                                                                                            \
    c20 = FMADD(x, b0, c20);                                                                                       \
    if (NV > 1) c21 = FMADD(x, b1, c21);                                                                           \
    if (NV > 2) c22 = FMADD(x, b2, c22);                                                                           \
    x = BCAST((R) + 3);                                                                                            \
    c30 = FMADD(x, b0, c30);                                                                                       \
    if (NV > 1) c31 = FMADD(x, b1, c31);                                                                           \
    if (NV > 2) c32 = FMADD(x, b2, c32);                                                                           \
  }

// Defines avx2_tile for one element type: VEC the vector type, W its lanes.
#define DESCRAMBLE_AVX2_TILE(T, VEC, W, SETZERO, LOADU, BCAST, FMADD, STORE)                                    \
  template <int NV>                                                                                            \
  DESCRAMBLE_TARGET_AVX2 void avx2_tile(const T* a, Index rows, Index ps, Index p0, Index q0, Index n, T* c,     \
                                        Index ldc, const char* pf, const char* pf_end) {                       \
    constexpr int MR = 4;                                                                                      \
    const bool interior = interior_tile<MR>(p0, q0, NV, W, n);                                                 \
    T* c0 = c + p0 * ldc + q0;                                                                                 \
    VEC c00 = SETZERO(), c01 = c00, c02 = c00, c10 = c00, c11 = c00, c12 = c00;                                \
    VEC c20 = c00, c21 = c00, c22 = c00, c30 = c00, c31 = c00, c32 = c00;                                      \
    const T* row = a + (p0 / W) * ps + p0 % W; /* the MR broadcast values of row k */                          \
    const T* qp = a + (q0 / W) * ps;                                                                           \
    Index k = 0;                                                                                                   \
    for (; k + 2 <= rows; k += 2, row += 2 * W, qp += 2 * W) { /* two rows a trip */                               \
      if (pf < pf_end) { /* one line of the next rows every other row: spread, not a burst */                      \
        _mm_prefetch(pf, _MM_HINT_T0);                                                                             \
        pf += 64;                                                                                                  \
      }                                                                                                            \
      DESCRAMBLE_TILE_ROW(VEC, LOADU, BCAST, FMADD, row, qp)                                                       \
      DESCRAMBLE_TILE_ROW(VEC, LOADU, BCAST, FMADD, row + W, qp + W)                                               \
    }                                                                                                              \
    if (k < rows) DESCRAMBLE_TILE_ROW(VEC, LOADU, BCAST, FMADD, row, qp)                                           \
    if (interior) { /* the tile's sums over these rows, added to C as whole vectors */                         \
      add_to(c0, c00), add_to(c0 + ldc, c10), add_to(c0 + 2 * ldc, c20), add_to(c0 + 3 * ldc, c30);           \
      if (NV > 1) {                                                                                            \
        add_to(c0 + W, c01), add_to(c0 + ldc + W, c11);                                                        \
        add_to(c0 + 2 * ldc + W, c21), add_to(c0 + 3 * ldc + W, c31);                                         \
      }                                                                                                        \
      if (NV > 2) {                                                                                            \
        add_to(c0 + 2 * W, c02), add_to(c0 + ldc + 2 * W, c12);                                                \
        add_to(c0 + 2 * ldc + 2 * W, c22), add_to(c0 + 3 * ldc + 2 * W, c32);                                 \
      }                                                                                                        \
      return;                                                                                                  \
    }                                                                                                          \
    alignas(32) T tile[MR][max_vectors * W];                                                                   \
    STORE(tile[0], c00), STORE(tile[0] + W, c01), STORE(tile[0] + 2 * W, c02);                                 \
    STORE(tile[1], c10), STORE(tile[1] + W, c11), STORE(tile[1] + 2 * W, c12);                                 \
    STORE(tile[2], c20), STORE(tile[2] + W, c21), STORE(tile[2] + 2 * W, c22);                                 \
    STORE(tile[3], c30), STORE(tile[3] + W, c31), STORE(tile[3] + 2 * W, c32);                                 \
    for (int i = 0; i < MR && p0 + i < n; ++i) add_lanes(tile[i], NV * W, p0 + i, q0, n, c + (p0 + i) * ldc);   \
  }

DESCRAMBLE_AVX2_TILE(double, __m256d, 4, _mm256_setzero_pd, _mm256_loadu_pd, _mm256_broadcast_sd, _mm256_fmadd_pd,
                     _mm256_store_pd)
DESCRAMBLE_AVX2_TILE(float, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_broadcast_ss, _mm256_fmadd_ps,
                     _mm256_store_ps)
#undef DESCRAMBLE_AVX2_TILE
#undef DESCRAMBLE_TILE_ROW

// --- AVX-512 ---------------------------------------------------------------
// 8 columns broadcast x up to 3 vectors: at most 24 accumulators of the 32
// registers, the NV column vectors of the current row and one broadcast
// take the rest; per row of the block, NV loads and 8 broadcasts for 8 NV
// FMAs (broadcasts folded into the FMAs as memory operands, one load per
// FMA, measured 25% slower). As in the AVX2 kernel, every tile starts from
// 0 and adds its sums to C at the end. The tiles cover the blocks off the
// diagonal; the diagonal blocks go by lane rotation (avx512_diagonal).
// Avx512<T>: the intrinsics of one element type, so that one tile template
// serves float64 and float32.
template <class T>
struct Avx512;
template <>
struct Avx512<double> {
  using V = __m512d;
  static constexpr int W = 8;
  DESCRAMBLE_TARGET_AVX512 static V zero() { return _mm512_setzero_pd(); }
  DESCRAMBLE_TARGET_AVX512 static V load(const double* p) { return _mm512_loadu_pd(p); }
  DESCRAMBLE_TARGET_AVX512 static void store(double* p, V v) { _mm512_store_pd(p, v); }
  DESCRAMBLE_TARGET_AVX512 static V broadcast(const double* p) { return _mm512_set1_pd(*p); }
  DESCRAMBLE_TARGET_AVX512 static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  // Lane l of the result is lane (l + K) % 8 of v.
  template <int K>
  DESCRAMBLE_TARGET_AVX512 static V rotate(V v) {
    const __m512i i = _mm512_castpd_si512(v);
    return _mm512_castsi512_pd(_mm512_maskz_alignr_epi64(0xff, i, i, K));
  }
  DESCRAMBLE_TARGET_AVX512 static void add_to(double* p, V v) { _mm512_storeu_pd(p, _mm512_add_pd(_mm512_loadu_pd(p), v)); }
  // *p += v in the lanes of `mask` (the others are neither read nor written).
  DESCRAMBLE_TARGET_AVX512 static void add_masked(double* p, unsigned mask, V v) {
    const auto m = static_cast<__mmask8>(mask);
    _mm512_mask_storeu_pd(p, m, _mm512_add_pd(_mm512_maskz_loadu_pd(m, p), v));
  }
};
template <>
struct Avx512<float> {
  using V = __m512;
  static constexpr int W = 16;
  DESCRAMBLE_TARGET_AVX512 static V zero() { return _mm512_setzero_ps(); }
  DESCRAMBLE_TARGET_AVX512 static V load(const float* p) { return _mm512_loadu_ps(p); }
  DESCRAMBLE_TARGET_AVX512 static void store(float* p, V v) { _mm512_store_ps(p, v); }
  DESCRAMBLE_TARGET_AVX512 static V broadcast(const float* p) { return _mm512_set1_ps(*p); }
  DESCRAMBLE_TARGET_AVX512 static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  template <int K>
  DESCRAMBLE_TARGET_AVX512 static V rotate(V v) {
    const __m512i i = _mm512_castps_si512(v);
    return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0xffff, i, i, K));
  }
  DESCRAMBLE_TARGET_AVX512 static void add_to(float* p, V v) { _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), v)); }
  DESCRAMBLE_TARGET_AVX512 static void add_masked(float* p, unsigned mask, V v) {
    const auto m = static_cast<__mmask16>(mask);
    _mm512_mask_storeu_ps(p, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, p), v));
  }
};

// One cache line of the loop's prefetch part (a row of the loop).
inline void prefetch_line(const char*& pf, const char* pf_end) {
  if (pf < pf_end) {
    _mm_prefetch(pf, _MM_HINT_T0);
    pf += 64;
  }
}

template <class T, int NV>
DESCRAMBLE_TARGET_AVX512 void avx512_tile(const T* a, Index rows, Index ps, Index p0, Index q0, Index n, T* c,
                                          Index ldc, const char* pf, const char* pf_end) {
  using A = Avx512<T>;
  using V = typename A::V;
  constexpr int W = A::W;
  constexpr int MR = 8;
  V acc[MR][NV];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) acc[i][v] = A::zero();
  const T* row = a + (p0 / W) * ps + p0 % W;  // the MR broadcast values of row k
  const T* qp = a + (q0 / W) * ps;
  for (Index k = 0; k < rows; ++k, row += W, qp += W) {
    prefetch_line(pf, pf_end);  // one line of the next rows a row
    V b[NV];
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) b[v] = A::load(qp + v * ps);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const V x = A::broadcast(row + i);
#pragma GCC unroll 3
      for (int v = 0; v < NV; ++v) acc[i][v] = A::fmadd(x, b[v], acc[i][v]);
    }
  }
  // The tile's sums into C: whole vectors inside the lower triangle, and on
  // its edges (the diagonal, column n) only the lanes q with p <= q < n.
  const bool interior = interior_tile<MR>(p0, q0, NV, W, n);
  T* c0 = c + p0 * ldc + q0;
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 3
    for (int v = 0; v < NV; ++v) {
      if (interior) {
        A::add_to(c0 + i * ldc + v * W, acc[i][v]);
      } else if (p0 + i < n) {
        const Index first = q0 + v * W;  // the vector's first q
        const Index lo = std::clamp<Index>(p0 + i - first, 0, W), hi = std::clamp<Index>(n - first, 0, W);
        const unsigned mask = hi > lo ? ((1u << hi) - 1u) & ~((1u << lo) - 1u) : 0u;
        if (mask != 0u) A::add_masked(c0 + i * ldc + v * W, mask, acc[i][v]);
      }
    }
  }
}

// The diagonal blocks of C (W x W, one panel against itself) without
// broadcasts: with v a row of panel d and rot_k(v) its lanes rotated by k,
// lane l of v * rot_k(v) is the product of columns l and (l + k) % W, so
// k = 0 .. W / 2 cover every pair of the block once (k = W / 2 twice: lanes
// l and l + W / 2 hold the same pair), in W / 2 + 1 FMAs and W / 2
// rotations a row against W broadcasts and W FMAs, of which barely more
// than half were needed. D consecutive blocks from panel d0 go at once, so
// that there are enough independent sums (D x (W / 2 + 1) of them).
template <class T, int K>
DESCRAMBLE_TARGET_AVX512 inline typename Avx512<T>::V rotated_product(typename Avx512<T>::V v,
                                                                      typename Avx512<T>::V acc) {
  using A = Avx512<T>;
  if constexpr (K == 0) return A::fmadd(v, v, acc);
  else return A::fmadd(v, A::template rotate<K>(v), acc);
}

template <class T, int D, int... K>
DESCRAMBLE_TARGET_AVX512 void avx512_diagonal_rows(const T* a, Index rows, Index ps, Index d0,
                                                   typename Avx512<T>::V (&acc)[D][sizeof...(K)], const char* pf,
                                                   const char* pf_end, std::integer_sequence<int, K...>) {
  using A = Avx512<T>;
  constexpr int W = A::W;
  const T* row = a + d0 * ps;
  for (Index r = 0; r < rows; ++r, row += W) {
    prefetch_line(pf, pf_end);  // one line of the next rows a row
#pragma GCC unroll 4
    for (int d = 0; d < D; ++d) {
      const typename A::V v = A::load(row + d * ps);
      ((acc[d][K] = rotated_product<T, K>(v, acc[d][K])), ...);
    }
  }
}

template <class T, int D>
DESCRAMBLE_TARGET_AVX512 void avx512_diagonal(const T* a, Index rows, Index ps, Index d0, Index n, T* c, Index ldc,
                                              const char* pf, const char* pf_end) {
  using A = Avx512<T>;
  constexpr int W = A::W;
  constexpr int K = W / 2 + 1;
  typename A::V acc[D][K];
#pragma GCC unroll 4
  for (int d = 0; d < D; ++d)
#pragma GCC unroll 9
    for (int k = 0; k < K; ++k) acc[d][k] = A::zero();
  avx512_diagonal_rows<T, D>(a, rows, ps, d0, acc, pf, pf_end, std::make_integer_sequence<int, K>{});
  alignas(64) T lanes[K][W];
  for (int d = 0; d < D; ++d) {
    for (int k = 0; k < K; ++k) A::store(lanes[k], acc[d][k]);
    const Index base = (d0 + d) * W;
    for (int k = 0; k < K; ++k) {
      for (int l = 0; l < (k == W / 2 ? W / 2 : W); ++l) {
        const Index p = base + l, q = base + (l + k) % W;
        const Index lo = std::min(p, q), hi = std::max(p, q);
        if (hi < n) c[lo * ldc + hi] += lanes[k][l];
      }
    }
  }
}
#endif

// The vectors of rows q of C in the group starting at q0: 3, except that
// 4 left over go as 2 + 2 (a group of 1 vector needs 5 loads for 4 FMAs).
inline Index group_vectors(Index q0, Index n, Index W) {
  const Index left = (n - q0 + W - 1) / W;
  return left == 4 ? 2 : std::min<Index>(max_vectors, left);
}

// Walks the lower triangle of C in tiles, column vectors outermost: for each
// group of (at most) max_vectors vectors of rows q of C, the groups of MR
// columns p <= q. The group's column vectors of the block (at most
// 3 x 64 bytes a row) stay in L1 while the tiles stream the p columns.
// `run` is the kernel that runs (runnable() of the layout's kernel): avx2 or
// generic (the AVX-512 kernel walks its own way: for_each_avx512_tile).
template <class T, int W, int MR>
void for_each_tile(ProductKernel run, const T* a, Index rows, Index n, Index ps, T* c, Index ldc,
                   const Prefetch& prefetch) {
  PrefetchParts parts(prefetch, [&] {  // one part a tile
    Index tiles = 0;
    for (Index q0 = 0; q0 < n; q0 += group_vectors(q0, n, W) * W)
      tiles += (std::min<Index>(n, q0 + group_vectors(q0, n, W) * W) + MR - 1) / MR;
    return tiles;
  });
  for (Index q0 = 0; q0 < n; q0 += group_vectors(q0, n, W) * W) {
    const Index vectors = group_vectors(q0, n, W);
    const Index p_end = std::min<Index>(n, q0 + vectors * W);
    for (Index p0 = 0; p0 < p_end; p0 += MR) {
      const auto [tile_pf, tile_pf_end] = parts.next();
      if (p0 + MR < p_end) {  // the next tile's part of C (wide C lives in L3)
        const T* next = c + (p0 + MR) * ldc + q0;
        for (int i = 0; i < MR; ++i) {
          __builtin_prefetch(next + i * ldc, 1, 3);
          __builtin_prefetch(next + i * ldc + max_vectors * W - 1, 1, 3);
        }
      }
      // Skip the vectors wholly above the diagonal for this p group.
      const Index skip = std::max<Index>(0, (p0 - q0) / W);
      const Index q = q0 + skip * W;
      const Index nv = vectors - skip;
#ifdef DESCRAMBLE_X86_KERNELS
      if constexpr (MR == 4) {
        if (run == ProductKernel::avx2) {
          if (nv == 3) avx2_tile<3>(a, rows, ps, p0, q, n, c, ldc, tile_pf, tile_pf_end);
          else if (nv == 2) avx2_tile<2>(a, rows, ps, p0, q, n, c, ldc, tile_pf, tile_pf_end);
          else avx2_tile<1>(a, rows, ps, p0, q, n, c, ldc, tile_pf, tile_pf_end);
          continue;
        }
      }
#endif
      (void)run, (void)tile_pf;
      if (nv == 3) generic_tile<T, W, MR, 3>(a, rows, ps, p0, q, n, c, ldc);
      else if (nv == 2) generic_tile<T, W, MR, 2>(a, rows, ps, p0, q, n, c, ldc);
      else generic_tile<T, W, MR, 1>(a, rows, ps, p0, q, n, c, ldc);
    }
  }
}

#ifdef DESCRAMBLE_X86_KERNELS
// The AVX-512 kernel's walk: the diagonal blocks (panel d against itself)
// in groups of up to 4 (float64) or 3 (float32) by avx512_diagonal, then
// the rest of the lower triangle in tiles, groups of MR columns p
// outermost: for each, the vectors past p's own (the diagonal block's), 3
// at a time (4 left as 2 + 2). At n = 32 (float64) a row then costs 20 + 48
// FMAs instead of 80 (tiles 3 + 2 + 1 vectors against for_each_tile's
// 2 + 1 + 2 + 2 + 2 + 1). Consecutive tiles go down the same MR columns of
// C, in order, so there is no prefetch of the next tile's part of C as in
// for_each_tile (n = 2048 ran 10% faster than with that walk).
template <class T>
void for_each_avx512_tile(const T* a, Index rows, Index n, Index ps, T* c, Index ldc, const Prefetch& prefetch) {
  constexpr int W = Avx512<T>::W;
  constexpr int MR = 8;
  constexpr Index most_blocks = std::is_same_v<T, float> ? 3 : 4;
  const Index blocks = (n + W - 1) / W;  // = the vectors of a row
  // Calls f(p0, q0, vectors) for each tile: per group of MR columns p, the
  // vectors past p's own (the diagonal block's), 3 at a time (4 left as 2 + 2).
  auto tiles = [&](auto&& f) {
    for (Index p0 = 0; p0 < n; p0 += MR) {
      for (Index v = p0 / W + 1; v < blocks;) {
        const Index nv = group_vectors(v * W, n, W);
        f(p0, v * W, nv);
        v += nv;
      }
    }
  };
  PrefetchParts parts(prefetch, [&] {  // one part a group of diagonal blocks, one a tile
    Index count = (blocks + most_blocks - 1) / most_blocks;
    tiles([&](Index, Index, Index) { ++count; });
    return count;
  });
  for (Index d0 = 0; d0 < blocks; d0 += most_blocks) {
    const auto [b, e] = parts.next();
    switch (std::min(most_blocks, blocks - d0)) {
      case 1: avx512_diagonal<T, 1>(a, rows, ps, d0, n, c, ldc, b, e); break;
      case 2: avx512_diagonal<T, 2>(a, rows, ps, d0, n, c, ldc, b, e); break;
      case 3: avx512_diagonal<T, 3>(a, rows, ps, d0, n, c, ldc, b, e); break;
      default: avx512_diagonal<T, most_blocks>(a, rows, ps, d0, n, c, ldc, b, e); break;
    }
  }
  tiles([&](Index p0, Index q0, Index nv) {
    const auto [b, e] = parts.next();
    if (nv == 3) avx512_tile<T, 3>(a, rows, ps, p0, q0, n, c, ldc, b, e);
    else if (nv == 2) avx512_tile<T, 2>(a, rows, ps, p0, q0, n, c, ldc, b, e);
    else avx512_tile<T, 1>(a, rows, ps, p0, q0, n, c, ldc, b, e);
  });
}
#endif

// lower(C) += A^T A in the layout of `kernel`, by runnable(kernel).
template <class T>
void rank_update(ProductKernel kernel, const T* a, Index rows, Index n, Index ps, T* c, Index ldc,
                 const Prefetch& prefetch) {
  constexpr bool single = std::is_same_v<T, float>;
  const ProductKernel run = runnable(kernel);
#ifdef DESCRAMBLE_X86_KERNELS
  if (run == ProductKernel::avx512) {
    for_each_avx512_tile<T>(a, rows, n, ps, c, ldc, prefetch);
    return;
  }
#endif
  if (kernel == ProductKernel::avx512)
    for_each_tile<T, narrow_panel_width(ProductKernel::avx512, single), 8>(run, a, rows, n, ps, c, ldc, prefetch);
  else
    for_each_tile<T, narrow_panel_width(ProductKernel::avx2, single), 4>(run, a, rows, n, ps, c, ldc, prefetch);
}

#ifdef DESCRAMBLE_X86_KERNELS
// --- Packing with AVX2 ------------------------------------------------------
// y = (x - origin) - shift for 4 values of a row, read as float64.
DESCRAMBLE_TARGET_AVX2 inline __m256d load4(const double* x) { return _mm256_loadu_pd(x); }
DESCRAMBLE_TARGET_AVX2 inline __m256d load4(const float* x) { return _mm256_cvtps_pd(_mm_loadu_ps(x)); }

template <class Source>
DESCRAMBLE_TARGET_AVX2 inline __m256d shifted4(const Source* row, const double* origin, const double* shift,
                                               Index j) {
  return _mm256_sub_pd(_mm256_sub_pd(load4(row + j), _mm256_loadu_pd(origin + j)), _mm256_loadu_pd(shift + j));
}

template <class Source>
inline double shifted1(const Source* row, const double* origin, const double* shift, Index j) {
  Source x;
  std::memcpy(&x, row + j, sizeof(Source));  // the chunk need not be aligned
  return (static_cast<double>(x) - origin[j]) - shift[j];
}

// Row i's part of the last, partial panel of PW columns (from column `full`;
// the padding columns are set to 0), value by value, for the SIMD packers:
// sqrt(w_i) y_ij (float32: times `scale`) and sums[j] += w_i y_ij; returns
// the largest |sqrt(w_i) y_ij| of the part.
template <class Out, class Source>
double pack_partial_panel_row(const PackSource<Source>& s, Index i, Index full, Index PW, double scale, Out* out,
                              double* sums) {
  constexpr bool single = std::is_same_v<Out, float>;
  const Source* row = s.x + i * s.row_stride;
  const double wi = s.w ? s.w[i] : 1.0;
  const double root = s.w ? std::sqrt(wi) : 1.0;
  double largest = 0.0;
  for (Index l = 0; l < PW; ++l) {
    const Index j = full + l;
    double v = 0.0;
    if (j < s.n) {
      const double y = shifted1(row, s.origin, s.shift, j);
      sums[j] += wi * y;
      v = y * root;
      largest = std::max(largest, std::abs(v));
    }
    out[l] = static_cast<Out>(single ? v * scale : v);
  }
  return largest;
}

// The 8 values lo, hi times scale, rounded to float32.
DESCRAMBLE_TARGET_AVX2 inline __m256 to_float8(__m256d lo, __m256d hi, __m256d scale) {
  const __m128 lo32 = _mm256_cvtpd_ps(_mm256_mul_pd(lo, scale));
  const __m128 hi32 = _mm256_cvtpd_ps(_mm256_mul_pd(hi, scale));
  return _mm256_insertf128_ps(_mm256_castps128_ps256(lo32), hi32, 1);
}

// Packs the rows into panels of PW values: float64 (Out = double; PW = 4 or
// 8), or float32 (PW = 8 or 16) scaled by `scale`, with the largest
// |sqrt(w) y| into max_abs. A panel row is PW / 4 vectors of 4 float64.
template <class Out, int PW, class Source>
DESCRAMBLE_TARGET_AVX2 void avx2_pack(const PackSource<Source>& s, double scale, Out* panels, Index ps, double* sums,
                                      double& max_abs) {
  constexpr bool single = std::is_same_v<Out, float>;
  constexpr int quads = PW / 4;
  const Index n = s.n;
  const Index full = n / PW * PW;
  const double* origin = s.origin;
  const double* shift = s.shift;
  const double* w = s.w;
  const __m256d sign = _mm256_set1_pd(-0.0);
  const __m256d scale4 = _mm256_set1_pd(scale);
  __m256d largest = _mm256_setzero_pd();
  double largest_tail = 0.0;
  // A panel row of y (quads vectors of 4) to the panels: float64 as it is,
  // float32 scaled, rounded and its largest |y| into `largest`.
  auto put = [&](const __m256d* y, Out* out) DESCRAMBLE_TARGET_AVX2 {
    if constexpr (single) {
      for (int h = 0; h < quads; h += 2) {
        largest = _mm256_max_pd(largest, _mm256_max_pd(_mm256_andnot_pd(sign, y[h]), _mm256_andnot_pd(sign, y[h + 1])));
        _mm256_storeu_ps(out + 4 * h, to_float8(y[h], y[h + 1], scale4));
      }
    } else {
      for (int h = 0; h < quads; ++h) _mm256_storeu_pd(out + 4 * h, y[h]);
    }
  };
  // Two rows at a time (n a multiple of PW): one load of origin, shift and
  // the sums serves both.
  Index i = 0;
  for (; i + 2 <= s.rows && full == n; i += 2) {
    const Source* row0 = s.x + i * s.row_stride;
    const Source* row1 = row0 + s.row_stride;
    const __m256d w0 = _mm256_set1_pd(w ? w[i] : 1.0), w1 = _mm256_set1_pd(w ? w[i + 1] : 1.0);
    const __m256d r0 = _mm256_sqrt_pd(w0), r1 = _mm256_sqrt_pd(w1);
    Out* out = panels + i * PW;
    for (Index j = 0; j < n; j += PW, out += ps) {
      __m256d y0[quads], y1[quads];
      for (int h = 0; h < quads; ++h) {
        const Index c = j + 4 * h;
        const __m256d o = _mm256_loadu_pd(origin + c), sh = _mm256_loadu_pd(shift + c);
        y0[h] = _mm256_sub_pd(_mm256_sub_pd(load4(row0 + c), o), sh);
        y1[h] = _mm256_sub_pd(_mm256_sub_pd(load4(row1 + c), o), sh);
        const __m256d sum = _mm256_loadu_pd(sums + c);
        if (w) {
          _mm256_storeu_pd(sums + c, _mm256_add_pd(sum, _mm256_fmadd_pd(w1, y1[h], _mm256_mul_pd(w0, y0[h]))));
          y0[h] = _mm256_mul_pd(y0[h], r0), y1[h] = _mm256_mul_pd(y1[h], r1);
        } else {
          _mm256_storeu_pd(sums + c, _mm256_add_pd(sum, _mm256_add_pd(y0[h], y1[h])));
        }
      }
      put(y0, out);
      put(y1, out + PW);
    }
  }
  for (; i < s.rows; ++i) {
    const Source* row = s.x + i * s.row_stride;
    const double wi = w ? w[i] : 1.0;
    const double root = w ? std::sqrt(wi) : 1.0;
    const __m256d w4 = _mm256_set1_pd(wi);
    const __m256d r4 = _mm256_set1_pd(root);
    Out* out = panels + i * PW;
    for (Index j = 0; j < full; j += PW, out += ps) {
      __m256d y[quads];
      for (int h = 0; h < quads; ++h) {
        const Index c = j + 4 * h;
        y[h] = shifted4(row, origin, shift, c);
        const __m256d sum = _mm256_loadu_pd(sums + c);
        _mm256_storeu_pd(sums + c, w ? _mm256_fmadd_pd(w4, y[h], sum) : _mm256_add_pd(sum, y[h]));
        if (w) y[h] = _mm256_mul_pd(y[h], r4);
      }
      put(y, out);
    }
    if (full < n) largest_tail = std::max(largest_tail, pack_partial_panel_row(s, i, full, PW, scale, out, sums));
  }
  if constexpr (single) {
    alignas(32) double lanes[4];
    _mm256_store_pd(lanes, largest);
    // NaN compares false with max: the sums (which the caller checks) carry it.
    max_abs = std::max({max_abs, largest_tail, lanes[0], lanes[1], lanes[2], lanes[3]});
  }
}

// --- Packing with AVX-512 (its own layout: panels of 8 float64 or 16 float32)
DESCRAMBLE_TARGET_AVX512 inline __m512d load8(const double* x) { return _mm512_loadu_pd(x); }
DESCRAMBLE_TARGET_AVX512 inline __m512d load8(const float* x) { return _mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(x)); }

// A group of G whole panels (from column j0) packed row by row, as
// avx2_pack does: each row's G panel rows (G x 64 bytes of float64 panels)
// are read in one go, contiguously, while the group's origin, shift and
// column sums stay in registers. (Panel by panel instead, the rows being
// packed, which the kernel fetched into L2 while it ran, were read 64 bytes
// a row, one panel at a time: measured 6.3 against 3.1 ns a row at n = 32.)
// A panel row is 1 float64 or 2 float32 vectors of 8 float64.
template <class Out, int G, class Source>
DESCRAMBLE_TARGET_AVX512 void avx512_pack_group(const PackSource<Source>& s, Index j0, double scale, Out* panels,
                                                Index ps, double* sums, __m512d& largest) {
  constexpr bool single = std::is_same_v<Out, float>;
  constexpr int PW = single ? 16 : 8;
  constexpr int octs = PW / 8;
  constexpr int V = G * octs;  // vectors of 8 a row
  const __m512d scale8 = _mm512_set1_pd(scale);
  // float64: y = (x - origin) - shift. float32 (mixed precision), whose
  // values are rounded to float32 anyway: y scaled at once, as
  // x * scale - (origin + shift) * scale in one FMA (the scale is a power of
  // two, so the scaling itself is exact), the sums and the largest value
  // unscaled at the end: 1 operation for 3, the packing's cost at n = 64
  // (mixed precision, whole product, medians) from 3.57 to 3.22 ms.
  __m512d origin[V], shift[V], sum[V];
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) {
    origin[v] = _mm512_loadu_pd(s.origin + j0 + 8 * v);
    shift[v] = _mm512_loadu_pd(s.shift + j0 + 8 * v);
    if constexpr (single) origin[v] = _mm512_mul_pd(_mm512_add_pd(origin[v], shift[v]), scale8);
    sum[v] = _mm512_setzero_pd();
  }
  const double* w = s.w;
  const Index rows = s.rows, stride = s.row_stride;
  Out* out = panels + (j0 / PW) * ps;
  const Source* x = s.x + j0;
  __m512d big = _mm512_setzero_pd();
  for (Index i = 0; i < rows; ++i, x += stride, out += PW) {
    __m512d y[V];
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v) {
      if constexpr (single) y[v] = _mm512_fmsub_pd(load8(x + 8 * v), scale8, origin[v]);
      else y[v] = _mm512_sub_pd(_mm512_sub_pd(load8(x + 8 * v), origin[v]), shift[v]);
    }
    if (w) {
      const __m512d wi = _mm512_set1_pd(w[i]), root = _mm512_set1_pd(std::sqrt(w[i]));
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) sum[v] = _mm512_fmadd_pd(wi, y[v], sum[v]), y[v] = _mm512_mul_pd(y[v], root);
    } else {
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) sum[v] = _mm512_add_pd(sum[v], y[v]);
    }
#pragma GCC unroll 8
    for (int g = 0; g < G; ++g) {
      Out* o = out + g * ps;
      if constexpr (single) {
        // (The maskz forms with every lane set: GCC 12 warns that the plain
        // _mm512_max_pd and _mm512_cvtpd_ps read an uninitialised vector.)
        const __m512d a = y[2 * g], b = y[2 * g + 1];
        big = _mm512_maskz_max_pd(0xff, big, _mm512_maskz_max_pd(0xff, _mm512_abs_pd(a), _mm512_abs_pd(b)));
        _mm256_storeu_ps(o, _mm512_maskz_cvtpd_ps(0xff, a));
        _mm256_storeu_ps(o + 8, _mm512_maskz_cvtpd_ps(0xff, b));
      } else {
        _mm512_storeu_pd(o, y[g]);
      }
    }
  }
  const __m512d unscale = _mm512_set1_pd(single ? 1.0 / scale : 1.0);
  largest = _mm512_maskz_max_pd(0xff, largest, _mm512_mul_pd(big, unscale));
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) {
    const __m512d total = single ? _mm512_mul_pd(sum[v], unscale) : sum[v];
    _mm512_storeu_pd(sums + j0 + 8 * v, _mm512_add_pd(_mm512_loadu_pd(sums + j0 + 8 * v), total));
  }
}

// As avx2_pack, in the AVX-512 layout (panels of 8 float64 or 16 float32
// values): the whole panels in groups of up to 4 (float64; 2 float32
// panels), row by row, and the last, partial panel value by value.
template <class Out, class Source>
DESCRAMBLE_TARGET_AVX512 void avx512_pack(const PackSource<Source>& s, double scale, Out* panels, Index ps,
                                          double* sums, double& max_abs) {
  constexpr bool single = std::is_same_v<Out, float>;
  constexpr int PW = single ? 16 : 8;
  constexpr Index most = single ? 2 : 4;  // panels a group: 4 vectors of 8 a row
  const Index n = s.n;
  const Index panels_full = n / PW;
  __m512d largest = _mm512_setzero_pd();
  for (Index p = 0; p < panels_full; p += most) {
    const Index j0 = p * PW;
    switch (std::min(most, panels_full - p)) {
      case 1: avx512_pack_group<Out, 1>(s, j0, scale, panels, ps, sums, largest); break;
      case 2: avx512_pack_group<Out, 2>(s, j0, scale, panels, ps, sums, largest); break;
      case 3:
        if constexpr (!single) avx512_pack_group<Out, 3>(s, j0, scale, panels, ps, sums, largest);
        break;
      default: avx512_pack_group<Out, single ? 2 : 4>(s, j0, scale, panels, ps, sums, largest); break;
    }
  }
  const Index full = panels_full * PW;
  double largest_tail = 0.0;
  if (full < n) {  // the last, partial panel, row by row
    Out* out = panels + (full / PW) * ps;
    for (Index i = 0; i < s.rows; ++i, out += PW)
      largest_tail = std::max(largest_tail, pack_partial_panel_row(s, i, full, PW, scale, out, sums));
  }
  if constexpr (single) {
    alignas(64) double lanes[8];
    _mm512_store_pd(lanes, largest);
    // NaN compares false with max: the sums (which the caller checks) carry it.
    max_abs = std::max({max_abs, largest_tail, lanes[0], lanes[1], lanes[2], lanes[3], lanes[4], lanes[5], lanes[6],
                        lanes[7]});
  }
}
#endif

// Packs with AVX-512 in its layout on a CPU that has it, otherwise with AVX2
// (any SIMD layout, on a CPU with AVX2 + FMA).
template <class Out, class Source>
bool pack(ProductKernel kernel, const PackSource<Source>& source, double scale, Out* panels, Index ps, double* sums,
          double& max_abs) {
#ifdef DESCRAMBLE_X86_KERNELS
  constexpr bool single = std::is_same_v<Out, float>;
  if (kernel == ProductKernel::avx512 && cpu_has_avx512()) {
    avx512_pack<Out>(source, scale, panels, ps, sums, max_abs);
    return true;
  }
  if (kernel == ProductKernel::avx512 && cpu_has_avx2_fma()) {
    avx2_pack<Out, narrow_panel_width(ProductKernel::avx512, single)>(source, scale, panels, ps, sums, max_abs);
    return true;
  }
  if (kernel == ProductKernel::avx2 && cpu_has_avx2_fma()) {
    avx2_pack<Out, narrow_panel_width(ProductKernel::avx2, single)>(source, scale, panels, ps, sums, max_abs);
    return true;
  }
#endif
  (void)kernel, (void)source, (void)scale, (void)panels, (void)ps, (void)sums, (void)max_abs;
  return false;
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

bool cpu_has_avx512() noexcept {
#ifdef DESCRAMBLE_X86_KERNELS
  static const bool supported = cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f");
  return supported;
#else
  return false;
#endif
}

ProductKernel runnable(ProductKernel kernel) noexcept {
  if (kernel == ProductKernel::avx512 && !cpu_has_avx512()) kernel = ProductKernel::avx2;
  if (kernel == ProductKernel::avx2 && !cpu_has_avx2_fma()) kernel = ProductKernel::generic;
  return kernel;
}

// Up to n = 128 the product C (at most 128 KiB) stays in L2 beside 128 KiB
// of panels. Wider, C lives in L3 and every tile goes there and back once a
// group of rows, so the groups are longer: 384 KiB of panels, at most 192
// rows (measured, median of 5 interleaved rounds, two threads, float64: 56.9
// against 48.6 GFLOP/s at n = 256 with 192 rows against 64; 55.4 against
// 49.7 at n = 384 with 128 rows against 40; at n = 128, 256 rows instead of
// 128 lost: 43.7 against 53.0).
Index narrow_panel_rows(Index n, bool single) noexcept {
  const Index bytes = single ? 4 : 8;
  const bool wide = n > 128;
  const Index budget = wide ? Index{3} << 17 : Index{1} << 17;
  const Index rows = budget / (bytes * narrow_padded_cols(std::max<Index>(n, 1)));
  return std::clamp<Index>(rows / 8 * 8, 32, wide ? 192 : 256);
}

// Measured end to end on the 2-core machines (the narrow kernel forced
// against the BLAS, two threads; see docs/benchmarks.md). AVX2 on AMD EPYC
// Zen 3: at n = 384 1.05-1.40x (float64) and 1.20-1.63x (mixed) the BLAS
// path, at 512 0.70-0.72x and 0.56-0.82x. AVX-512 on AMD EPYC Zen 5 (OpenBLAS
// runs its SkylakeX kernels there): 1.25x and 1.22x at n = 1024 (100,000
// rows), 1.13x and 1.34x at 3072 (40,000 rows), 0.87x and 0.86x at 4096.
Index narrow_crossover(ProductKernel kernel, bool /*single*/) noexcept {
  return kernel == ProductKernel::avx512 ? 3072 : 384;
}

ProductKernel choose_product_kernel(Index n, bool single) {
  if (const char* forced = std::getenv("DESCRAMBLE_PRODUCT_KERNEL")) {
    const std::string name(forced);
    if (name == "blas") return ProductKernel::blas;
    if (name == "generic") return ProductKernel::generic;
    if (name == "avx2") return runnable(ProductKernel::avx2);
    if (name == "avx512") return runnable(ProductKernel::avx512);
  }
  for (ProductKernel kernel : {ProductKernel::avx512, ProductKernel::avx2})
    if (runnable(kernel) == kernel) return n <= narrow_crossover(kernel, single) ? kernel : ProductKernel::blas;
  return ProductKernel::blas;
}

void narrow_rank_update(ProductKernel kernel, const double* a, Index rows, Index n, Index panel_stride, double* c,
                        Index ldc, const Prefetch& prefetch) {
  if (rows > 0) rank_update(kernel, a, rows, n, panel_stride, c, ldc, prefetch);
}

void narrow_rank_update(ProductKernel kernel, const float* a, Index rows, Index n, Index panel_stride, float* c,
                        Index ldc, const Prefetch& prefetch) {
  if (rows > 0) rank_update(kernel, a, rows, n, panel_stride, c, ldc, prefetch);
}

bool narrow_pack(ProductKernel kernel, const PackSource<double>& source, double* panels, Index panel_stride,
                 double* sums) {
  double unused = 0.0;
  return pack(kernel, source, 1.0, panels, panel_stride, sums, unused);
}
bool narrow_pack(ProductKernel kernel, const PackSource<float>& source, double* panels, Index panel_stride,
                 double* sums) {
  double unused = 0.0;
  return pack(kernel, source, 1.0, panels, panel_stride, sums, unused);
}
bool narrow_pack(ProductKernel kernel, const PackSource<double>& source, double scale, float* panels,
                 Index panel_stride, double* sums, double& max_abs) {
  return pack(kernel, source, scale, panels, panel_stride, sums, max_abs);
}
bool narrow_pack(ProductKernel kernel, const PackSource<float>& source, double scale, float* panels,
                 Index panel_stride, double* sums, double& max_abs) {
  return pack(kernel, source, scale, panels, panel_stride, sums, max_abs);
}

}  // namespace descramble::detail
