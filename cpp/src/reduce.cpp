#include "descramble/reduce.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "blas.hpp"
#include "narrow_kernel.hpp"

namespace descramble {
namespace {

template <class T>
inline double load(const char* p) noexcept {
  T value;
  std::memcpy(&value, p, sizeof(T));  // strides need not respect alignment
  return static_cast<double>(value);
}

// A NumPy bool is one byte that reads True whenever it is not zero (a legal
// array may hold 2 or 255 there, e.g. a uint8 array viewed as bool): the
// value is byte != 0, never the byte itself.
struct BoolByte {
  std::uint8_t byte;
};
static_assert(sizeof(BoolByte) == 1, "a bool element is one byte");

template <>
inline double load<BoolByte>(const char* p) noexcept {
  return *reinterpret_cast<const unsigned char*>(p) != 0 ? 1.0 : 0.0;
}

// One worker's scratch space for a block of rows, laid out like the source
// (row-major for C-ordered chunks, column-major otherwise) so that reading the
// chunk walks memory contiguously.
struct Block {
  Index capacity;  // rows
  Index n;
  bool row_major;
  std::vector<double> values;  // x - origin, then centred (and scaled by sqrt(w))
  std::vector<float> values32;  // the centred block rounded to float32 (mixed precision)
  std::vector<float> product32;  // n x n float32 block product (mixed precision)
  std::vector<double> sums;      // weighted column sums of x - origin
  std::vector<double> root_weights;
  double max_abs = 0.0;  // mixed precision: max |x - origin| over the block (pass 1)
  int exponent = 0;      // mixed precision: the float32 values are the centred ones times 2^-exponent

  Block(Index rows, Index cols, bool rm, Precision precision)
      : capacity(rows), n(cols), row_major(rm), values(static_cast<std::size_t>(rows * cols)),
        sums(static_cast<std::size_t>(cols)), root_weights(static_cast<std::size_t>(rows)) {
    if (precision == Precision::mixed) {
      values32.resize(values.size());
      product32.resize(static_cast<std::size_t>(cols * cols));
    }
  }
  Index ld() const noexcept { return row_major ? n : capacity; }
  double& at(Index i, Index j) noexcept {
    return values[static_cast<std::size_t>(row_major ? i * n + j : j * capacity + i)];
  }
};

// Reads buffer rows [i0, i0 + count) of the block starting at chunk row r0
// (that is, chunk rows r0 + i0, ...) minus the origin, and forms their
// (weighted) column sums into `sums` in the same pass. `w` points at the
// weight of chunk row r0 (or is null).
template <class T>
void load_block(const ChunkView& chunk, Index r0, Index i0, Index count, const double* origin, const double* w,
                Block& b, double* sums) {
  const char* base = static_cast<const char*>(chunk.data);
  const Index rs = chunk.row_stride;
  const Index cs = chunk.col_stride;
  const Index n = chunk.cols;
  constexpr Index size = static_cast<Index>(sizeof(T));
  if (b.row_major) {
    std::fill(sums, sums + n, 0.0);
    for (Index i = i0; i < i0 + count; ++i) {
      const char* row = base + (r0 + i) * rs;
      double* out = b.values.data() + i * n;
      if (cs == size) {  // contiguous row: lets the compiler vectorise
        for (Index j = 0; j < n; ++j) out[j] = load<T>(row + j * size) - origin[j];
      } else {
        for (Index j = 0; j < n; ++j) out[j] = load<T>(row + j * cs) - origin[j];
      }
      const double wi = w ? w[i] : 1.0;
      for (Index j = 0; j < n; ++j) sums[j] += wi * out[j];
    }
  } else {
    for (Index j = 0; j < n; ++j) {
      const char* column = base + (r0 + i0) * rs + j * cs;
      double* out = b.values.data() + j * b.capacity + i0;
      const double o = origin[j];
      if (rs == size) {
        for (Index i = 0; i < count; ++i) out[i] = load<T>(column + i * size) - o;
      } else {
        for (Index i = 0; i < count; ++i) out[i] = load<T>(column + i * rs) - o;
      }
      double s = 0.0;
      if (w) {
        for (Index i = 0; i < count; ++i) s += w[i0 + i] * out[i];
      } else {
        for (Index i = 0; i < count; ++i) s += out[i];
      }
      sums[j] = s;
    }
  }
}

// Calls f(T{}) with T the C++ type of the chunk's elements.
template <class F>
void dispatch(ScalarType type, F&& f) {
  switch (type) {
    case ScalarType::float64: return f(double{});
    case ScalarType::float32: return f(float{});
    case ScalarType::int8: return f(std::int8_t{});
    case ScalarType::int16: return f(std::int16_t{});
    case ScalarType::int32: return f(std::int32_t{});
    case ScalarType::int64: return f(std::int64_t{});
    case ScalarType::uint8: return f(std::uint8_t{});
    case ScalarType::uint16: return f(std::uint16_t{});
    case ScalarType::uint32: return f(std::uint32_t{});
    case ScalarType::uint64: return f(std::uint64_t{});
    case ScalarType::boolean: return f(BoolByte{});
  }
  throw std::invalid_argument("chunk: unsupported scalar type");
}

Index element_size(ScalarType type) {
  Index size = 0;
  dispatch(type, [&](auto tag) { size = static_cast<Index>(sizeof(tag)); });
  return size;
}

void load_block_any(const ChunkView& chunk, Index r0, Index i0, Index count, const double* origin, const double* w,
                    Block& b, double* sums) {
  dispatch(chunk.type, [&](auto tag) { load_block<decltype(tag)>(chunk, r0, i0, count, origin, w, b, sums); });
}

// Mixed precision, pass 1: the (weighted) column sums of x - origin over
// buffer rows [i0, i0 + count), read straight from the chunk (nothing stored),
// and the largest |x - origin| into `max_abs` (which chooses the block's scale)
// over the rows of non-zero weight: a row of weight 0 may hold any finite
// value, and a huge one would scale the others' float32 values to 0.
template <class T>
void sum_rows(const ChunkView& chunk, Index r0, Index i0, Index count, const double* origin, const double* w,
              bool row_major, double* sums, double& max_abs) {
  double largest = 0.0;
  const char* base = static_cast<const char*>(chunk.data);
  const Index rs = chunk.row_stride;
  const Index cs = chunk.col_stride;
  const Index n = chunk.cols;
  if (row_major) {
    std::fill(sums, sums + n, 0.0);
    for (Index i = i0; i < i0 + count; ++i) {
      const char* row = base + (r0 + i) * rs;
      const double wi = w ? w[i] : 1.0;
      for (Index j = 0; j < n; ++j) {
        const double v = load<T>(row + j * cs) - origin[j];
        sums[j] += wi * v;
        if (wi != 0.0) largest = std::max(largest, std::abs(v));
      }
    }
  } else {
    for (Index j = 0; j < n; ++j) {
      const char* column = base + (r0 + i0) * rs + j * cs;
      const double o = origin[j];
      double s = 0.0;
      for (Index i = 0; i < count; ++i) {
        const double v = load<T>(column + i * rs) - o;
        const double wi = w ? w[i0 + i] : 1.0;
        s += wi * v;
        if (wi != 0.0) largest = std::max(largest, std::abs(v));
      }
      sums[j] = s;
    }
  }
  max_abs = largest;
}

// Mixed precision: the power of two 2^e that brings the block's centred,
// weighted values to at most about 2 in magnitude (|x - origin - mean| <=
// 2 max |x - origin|, times sqrt(max w)), so that their float32 products
// neither overflow nor underflow whatever the data's magnitude. Scaling by a
// power of two is exact; the float64 result is scaled back by 2^(2e).
int block_exponent(double max_abs, const double* w, Index nb) {
  double max_w = 1.0;
  if (w) max_w = *std::max_element(w, w + nb);
  const double bound = 2.0 * max_abs * std::sqrt(max_w);
  if (!(bound > 0.0) || !std::isfinite(bound)) return 0;
  return std::clamp(std::ilogb(bound), -1022, 1023);
}

// Mixed precision, pass 2: ((x - origin) - mean) * sqrt(w), rounded to
// float32, straight from the chunk into the float32 block (no float64 copy).
template <class T>
void centre_rows_to_float32(const ChunkView& chunk, Index r0, Index i0, Index count, const double* origin,
                            const double* mean, Block& b) {
  const char* base = static_cast<const char*>(chunk.data);
  const Index rs = chunk.row_stride;
  const Index cs = chunk.col_stride;
  const Index n = chunk.cols;
  const double* rw = b.root_weights.data();
  const double scale = std::ldexp(1.0, -b.exponent);  // exact: a power of two
  if (b.row_major) {
    for (Index i = i0; i < i0 + count; ++i) {
      const char* row = base + (r0 + i) * rs;
      float* out = b.values32.data() + i * n;
      const double s = rw[i];
      for (Index j = 0; j < n; ++j)
        out[j] = static_cast<float>(((load<T>(row + j * cs) - origin[j]) - mean[j]) * s * scale);
    }
  } else {
    for (Index j = 0; j < n; ++j) {
      const char* column = base + (r0 + i0) * rs + j * cs;
      float* out = b.values32.data() + j * b.capacity + i0;
      const double o = origin[j];
      const double m = mean[j];
      for (Index i = 0; i < count; ++i)
        out[i] = static_cast<float>(((load<T>(column + i * rs) - o) - m) * rw[i0 + i] * scale);
    }
  }
}

// Subtracts the block mean from buffer rows [i0, i0 + count), in place, and
// scales row i by sqrt(w_i): sum_i w_i c_i c_i^T = (sqrt(w) c)^T (sqrt(w) c).
void centre_block(Block& b, Index i0, Index count, const double* mean, const double* w) {
  const Index n = b.n;
  double* rw = b.root_weights.data();
  for (Index i = i0; i < i0 + count; ++i) rw[i] = w ? std::sqrt(w[i]) : 1.0;
  if (b.row_major) {
    for (Index i = i0; i < i0 + count; ++i) {
      double* row = b.values.data() + i * n;
      const double s = rw[i];
      for (Index j = 0; j < n; ++j) row[j] = (row[j] - mean[j]) * s;
    }
  } else {
    for (Index j = 0; j < n; ++j) {
      double* column = b.values.data() + j * b.capacity;
      const double m = mean[j];
      for (Index i = i0; i < i0 + count; ++i) column[i] = (column[i] - m) * rw[i];
    }
  }
}

// Pass 1 over buffer rows [i0, i0 + count): column sums of x - origin into
// `sums`; in float64 the shifted values are kept in the block for pass 2.
// (mixed: the largest |x - origin| into `max_abs`).
void gather_rows(const ChunkView& chunk, Index r0, Index i0, Index count, const double* origin, const double* w,
                 Block& b, double* sums, bool mixed, double& max_abs) {
  if (!mixed) return load_block_any(chunk, r0, i0, count, origin, w, b, sums);
  dispatch(chunk.type,
           [&](auto tag) { sum_rows<decltype(tag)>(chunk, r0, i0, count, origin, w, b.row_major, sums, max_abs); });
}

// Pass 2 over buffer rows [i0, i0 + count): centre (and weight) the rows, in
// place in float64, or from the chunk into the float32 block (mixed).
void centre_rows(const ChunkView& chunk, Index r0, Index i0, Index count, const double* origin, const double* mean,
                 const double* w, Block& b, bool mixed) {
  if (!mixed) return centre_block(b, i0, count, mean, w);
  for (Index i = i0; i < i0 + count; ++i) b.root_weights[static_cast<std::size_t>(i)] = w ? std::sqrt(w[i]) : 1.0;
  dispatch(chunk.type,
           [&](auto tag) { centre_rows_to_float32<decltype(tag)>(chunk, r0, i0, count, origin, mean, b); });
}

// The first non-finite row of the block (buffer index), reading the chunk again.
Index locate_non_finite_row(const ChunkView& chunk, Index r0, Index nb, const double* origin, Block& b) {
  load_block_any(chunk, r0, 0, nb, origin, nullptr, b, b.sums.data());
  Index bad = 0;
  auto finite_row = [&](Index i) {
    for (Index j = 0; j < b.n; ++j)
      if (!std::isfinite(b.values[static_cast<std::size_t>(b.row_major ? i * b.n + j : j * b.capacity + i)]))
        return false;
    return true;
  };
  while (bad < nb && finite_row(bad)) ++bad;
  return bad;
}

// The lower triangle of a float32 n x n product of values scaled by 2^-e,
// scaled back by 2^(2e) into (Add: added to) the lower triangle of `to`,
// exactly (one multiplication when 2^(2e) is a normal double).
template <bool Add>
void widen_lower(const float* product, Index n, int exponent, double* to) {
  const int e2 = 2 * exponent;
  const bool direct = e2 >= -1022 && e2 <= 1023;
  const double factor = direct ? std::ldexp(1.0, e2) : 1.0;
  for (Index j = 0; j < n; ++j) {
    const float* from = product + j * n;
    double* column = to + j * n;
    for (Index i = j; i < n; ++i) {
      const double v = direct ? static_cast<double>(from[i]) * factor : std::ldexp(static_cast<double>(from[i]), e2);
      if (Add) column[i] += v;
      else column[i] = v;
    }
  }
}

// Adds the block's scatter about its own mean to the lower triangle of
// `scatter`: float64 syrk, or (mixed) float32 syrk then a float64 sum.
void add_block_product(Block& b, Index nb, bool mixed, Eigen::MatrixXd& scatter) {
  const Index n = b.n;
  if (mixed) {
    detail::rank_update_overwrite({b.values32.data(), nb, n, b.ld(), b.row_major}, b.product32.data(), n);
    widen_lower<true>(b.product32.data(), n, b.exponent, scatter.data());
  } else {
    detail::rank_update({b.values.data(), nb, n, b.ld(), b.row_major}, scatter.data(), n);
  }
}

// The Chan-Golub-LeVeque correction for a block of weight `block_weight` and
// mean `block_mean` whose centred scatter is already in part.scatter's lower
// triangle (docs/math.md §7).
void merge_block_mean(Moments& part, const Eigen::VectorXd& block_mean, double block_weight, Index nb,
                      Eigen::VectorXd& delta) {
  const double total = part.weight + block_weight;
  delta = block_mean - part.mean;
  if (part.weight > 0.0) {
    part.scatter.selfadjointView<Eigen::Lower>().rankUpdate(delta, part.weight * block_weight / total);
  }
  part.mean += (block_weight / total) * delta;
  part.weight = total;
  part.count += nb;
}

// --- The narrow path: each block read once (docs/math.md §7) ---------------
// For narrow blocks (n up to detail::narrow_crossover) the block of rows is
// read from the chunk once: its rows are shifted by an estimate s of the
// block's mean as they are packed into the narrow kernel's panels, a few
// hundred rows at a time (detail::narrow_panel_rows), and the kernel adds
// their product to R = sum_i w_i y_i y_i^T (y = (x - origin) - s) while they
// are in cache. With m = sum_i w_i y_i / W the block mean's offset from s,
// the block's scatter about its own mean is R - W m m^T. The subtraction
// loses accuracy only when m is large against the spread: wherever
// W m_j^2 > R_jj / 4 the block is formed again about its own mean, and if
// that fails too, the two-pass way (centred about its own mean, as for wide
// blocks), so the error stays within 8/3 of the two-pass one. s is the
// linear extrapolation of the worker's previous two block means (stationary
// streams: |m| ~ spread / sqrt(rows), far inside the bound; a steady trend is
// followed), or, for a worker's first block, the mean of its first rows.

// Packs `count` rows of the chunk, from chunk row `r0`, into panels of W
// columns (float64; or float32, scaled by `scale`): value
// sqrt(w_i) ((x_ij - origin_j) - shift_j), padding columns 0; adds
// w_i y_ij to sums[j]; (float32) the largest |sqrt(w_i) y_ij| into max_abs.
template <class T, class Out>
void pack_rows(const ChunkView& chunk, Index r0, Index count, const double* origin, const double* shift,
               const double* w, double scale, Out* panels, Index W, Index ps, double* sums, double& max_abs) {
  constexpr bool single = sizeof(Out) == 4;
  const char* base = static_cast<const char*>(chunk.data) + r0 * chunk.row_stride;
  const Index rs = chunk.row_stride;
  const Index cs = chunk.col_stride;
  const Index n = chunk.cols;
  double largest = 0.0;
  auto put = [&](Index i, Index j, double y, double wi, double root) {
    sums[j] += wi * y;
    const double v = y * root;
    if (single) largest = std::max(largest, std::abs(v));
    panels[(j / W) * ps + i * W + j % W] = static_cast<Out>(single ? v * scale : v);
  };
  for (Index i = 0; i < count; ++i) {  // row by row (the narrow path takes row-major chunks only)
    const char* row = base + i * rs;
    const double wi = w ? w[i] : 1.0;
    const double root = w ? std::sqrt(wi) : 1.0;
    for (Index j = 0; j < n; ++j) put(i, j, (load<T>(row + j * cs) - origin[j]) - shift[j], wi, root);
  }
  for (Index j = n; j < (n + W - 1) / W * W; ++j)
    for (Index i = 0; i < count; ++i) panels[(j / W) * ps + i * W + j % W] = Out(0);
  max_abs = std::max(max_abs, largest);
}

// One worker's state on the narrow path.
struct NarrowBlock {
  detail::ProductKernel kernel;
  Index n;
  bool mixed;
  Index kc;                       // rows packed at once
  Index W;                        // panel width (detail::narrow_panel_width)
  Index ps;                       // panel stride: kc rows and 64 bytes (panels 4 KiB apart would alias)
  std::vector<double> panels;     // kc rows in panels of W (float64)
  std::vector<float> panels32;    // kc rows in panels of W (mixed)
  Eigen::MatrixXd product;        // R of the block (lower triangle)
  std::vector<float> product32;   // the float32 R of the block (mixed)
  std::vector<double> sums;       // sum_i w_i y_i
  Eigen::VectorXd shift;          // s, relative to the origin
  // The means of this worker's last two blocks (relative to the origin) and
  // their first rows (-1: none yet): the next block's shift is their linear
  // extrapolation, so a steady trend (a time stamp, sorted data) stays
  // inside the bound instead of making every block run twice.
  Eigen::VectorXd last_mean, previous_mean;
  Index last_row = -1, previous_row = -1;
  int exponent = 0;               // mixed: the float32 values are sqrt(w) y times 2^-exponent
  double max_abs = 0.0;           // mixed: the block's largest |sqrt(w) y|

  NarrowBlock(detail::ProductKernel k, Index cols, bool mixed_precision)
      : kernel(k), n(cols), mixed(mixed_precision), kc(detail::narrow_panel_rows(cols, mixed_precision)),
        W(detail::narrow_panel_width(k, mixed_precision)), ps(kc * W + (mixed_precision ? 16 : 8)),
        product(Eigen::MatrixXd::Zero(cols, cols)), sums(static_cast<std::size_t>(cols)),
        shift(Eigen::VectorXd::Zero(cols)) {
    const auto size = static_cast<std::size_t>(ps * detail::narrow_padded_cols(cols) / W);
    if (mixed) {
      panels32.assign(size, 0.0f);
      product32.assign(static_cast<std::size_t>(cols * cols), 0.0f);
    } else {
      panels.assign(size, 0.0);
    }
  }

  // Packs rows [r0, r0 + count) of the chunk (count <= kc) and adds their
  // product, fetching rows [r0 + count, r0 + count + next) meanwhile.
  void add_rows(const ChunkView& chunk, Index r0, Index count, Index next, const double* origin, const double* w) {
    const double* s = shift.data();
    const double scale = std::ldexp(1.0, -exponent);
    // The SIMD packing reads float64 and float32 rows of contiguous values.
    auto simd_pack = [&](auto tag) {
      using T = decltype(tag);
      constexpr Index size = static_cast<Index>(sizeof(T));
      if (chunk.col_stride != size || chunk.row_stride % size != 0) return false;
      const detail::PackSource<T> source{static_cast<const T*>(chunk.data) + r0 * (chunk.row_stride / size),
                                         chunk.row_stride / size, count, n, origin, s, w};
      return mixed ? detail::narrow_pack(kernel, source, scale, panels32.data(), ps, sums.data(), max_abs)
                   : detail::narrow_pack(kernel, source, panels.data(), ps, sums.data());
    };
    const bool packed = chunk.type == ScalarType::float64   ? simd_pack(double{})
                        : chunk.type == ScalarType::float32 ? simd_pack(float{})
                                                            : false;
    if (!packed) {
      dispatch(chunk.type, [&](auto tag) {
        using T = decltype(tag);
        if (mixed) pack_rows<T>(chunk, r0, count, origin, s, w, scale, panels32.data(), W, ps, sums.data(), max_abs);
        else pack_rows<T>(chunk, r0, count, origin, s, w, 1.0, panels.data(), W, ps, sums.data(), max_abs);
      });
    }
    detail::Prefetch ahead;
    if (next > 0 && chunk.col_stride > 0) {  // (reversed views: left to the hardware prefetcher)
      const Index span = (n - 1) * chunk.col_stride + element_size(chunk.type);
      ahead = {static_cast<const char*>(chunk.data) + (r0 + count) * chunk.row_stride, chunk.row_stride, next, span};
    }
    if (mixed) detail::narrow_rank_update(kernel, panels32.data(), count, n, ps, product32.data(), n, ahead);
    else detail::narrow_rank_update(kernel, panels.data(), count, n, ps, product.data(), n, ahead);
  }

  // For a worker's first block: s = the (weighted) mean of x - origin over
  // its first rows. Rows of weight 0 take no part: they may hold any finite
  // value (a huge one would push s, and R about it, out of range).
  void estimate_shift(const ChunkView& chunk, Index r0, Index count, const double* origin, const double* w) {
    Eigen::VectorXd row(n);
    shift.setZero();
    double total = 0.0;
    for (Index i = 0; i < count; ++i) {
      const double wi = w ? w[i] : 1.0;
      if (wi == 0.0) continue;
      copy_rows(chunk, r0 + i, 1, row.data());
      shift += wi * (row - Eigen::Map<const Eigen::VectorXd>(origin, n));
      total += wi;
    }
    if (total > 0.0) shift /= total;
    if (!shift.allFinite()) shift.setZero();  // the block's sums report the bad value
  }

  // A block starting at row r0 of the chunk is done: its mean.
  void record(const Eigen::VectorXd& mean, Index r0) {
    previous_mean.swap(last_mean);
    previous_row = last_row;
    last_mean = mean;
    last_row = r0;
  }

  // The shift for the block starting at row r0, from the last two blocks.
  void predict(Index r0) {
    shift = last_mean;
    if (previous_row >= 0 && last_row != previous_row) {
      shift += (last_mean - previous_mean) *
               (static_cast<double>(r0 - last_row) / static_cast<double>(last_row - previous_row));
      if (!shift.allFinite()) shift = last_mean;
    }
  }

  // Mixed: the exponent that brings the largest |sqrt(w_i) y_ij| of the
  // first rows to about 1/4 (a block's largest value is then within 2^16).
  void estimate_exponent(const ChunkView& chunk, Index r0, Index count, const double* origin, const double* w) {
    Eigen::VectorXd row(n);
    double largest = 0.0;
    for (Index i = 0; i < count; ++i) {
      copy_rows(chunk, r0 + i, 1, row.data());
      const double root = w ? std::sqrt(w[i]) : 1.0;
      largest = std::max(largest, root * (row - Eigen::Map<const Eigen::VectorXd>(origin, n) - shift).cwiseAbs().maxCoeff());
    }
    exponent = exponent_for(largest);
  }

  // One pass over the block: R and the sums about the current shift.
  void pass(const ChunkView& chunk, Index r0, Index nb, const double* origin, const double* w) {
    std::fill(sums.begin(), sums.end(), 0.0);
    max_abs = 0.0;
    if (mixed) std::fill(product32.begin(), product32.end(), 0.0f);
    else product.setZero();
    for (Index i0 = 0; i0 < nb; i0 += kc) {
      const Index count = std::min(kc, nb - i0);
      // The next rows of the chunk (the next block's too: a worker's blocks mostly follow each other).
      const Index next = std::min(kc, chunk.rows - (r0 + i0 + count));
      add_rows(chunk, r0 + i0, count, next, origin, w ? w + i0 : nullptr);
    }
  }

  // Mixed: the exponent that brings `largest` to about 1/4.
  static int exponent_for(double largest) {
    return std::isfinite(largest) && largest > 0.0 ? std::clamp(std::ilogb(4.0 * largest), -1022, 1023) : 0;
  }
};

// Narrow path for one block: true when its scatter and mean are merged into
// `part`. A pass about the shift s whose R - W m m^T would cancel (or, mixed,
// whose values left the float32 scale's range 2^-4 to 2^16, where the
// products neither overflow nor lose small values to underflow) is repeated
// once about the block's own mean (and the scale of its first rows); false
// when that fails too (redo the block the two-pass way) or when a value is
// NaN or infinite or the sums overflow (`non_finite`).
bool narrow_block(NarrowBlock& nbk, const ChunkView& chunk, Index r0, Index nb, const double* origin,
                  const double* w, Moments& part, Eigen::VectorXd& delta, bool& non_finite) {
  const Index n = nbk.n;
  const Index first_rows = std::min<Index>(nb, 32);  // |m| ~ spread / sqrt(32) about their mean
  if (nbk.last_row < 0) {
    nbk.estimate_shift(chunk, r0, first_rows, origin, w);
    if (nbk.mixed) nbk.estimate_exponent(chunk, r0, first_rows, origin, w);
  } else {
    nbk.predict(r0);
  }
  const double weight = w ? Eigen::Map<const Eigen::VectorXd>(w, nb).sum() : static_cast<double>(nb);
  for (int attempt = 0; attempt < 2; ++attempt) {
    nbk.pass(chunk, r0, nb, origin, w);
    const Eigen::Map<const Eigen::VectorXd> sums(nbk.sums.data(), n);
    non_finite = !sums.allFinite();
    if (non_finite) return false;
    if (weight == 0.0) {
      part.count += nb;
      return true;
    }
    const Eigen::VectorXd m = sums / weight;
    bool accurate = true;
    if (nbk.mixed) {
      const double scaled = std::ldexp(nbk.max_abs, -nbk.exponent);
      accurate = nbk.max_abs == 0.0 || (scaled >= 0x1p-4 && scaled <= 0x1p16);
      if (accurate) widen_lower<false>(nbk.product32.data(), n, nbk.exponent, nbk.product.data());
    }
    // R - W m m^T cancels where W m_j^2 is comparable to R_jj (and is
    // meaningless where R_jj overflowed about s: then the block is redone).
    for (Index j = 0; j < n && accurate; ++j)
      accurate = std::isfinite(nbk.product(j, j)) && weight * m[j] * m[j] <= 0.25 * nbk.product(j, j);
    nbk.shift += m;  // the block's mean (this block's shift on a second pass)
    if (accurate) {
      nbk.product.selfadjointView<Eigen::Lower>().rankUpdate(m, -weight);
      part.scatter.triangularView<Eigen::Lower>() += nbk.product;
      merge_block_mean(part, nbk.shift, weight, nb, delta);
      nbk.record(nbk.shift, r0);
      // Mixed: the next block starts from this block's scale.
      if (nbk.mixed && nbk.max_abs > 0.0) nbk.exponent = NarrowBlock::exponent_for(nbk.max_abs);
      return true;
    }
    if (nbk.mixed) nbk.estimate_exponent(chunk, r0, first_rows, origin, w);
  }
  return false;
}

// Explains why row `row` of the chunk gave a non-finite value.
NonFiniteError bad_row_error(const ChunkView& chunk, Index row) {
  const Eigen::VectorXd values = read_row(chunk, row);
  std::ostringstream detail;
  Index column = -1;
  if (!values.allFinite()) {
    column = 0;
    while (std::isfinite(values[column])) ++column;
    detail << "contains " << (std::isnan(values[column]) ? "NaN" : "infinity") << " (column " << column
           << "); every value must be finite";
  } else {
    detail << "overflows float64 once centred; rescale the data (values near the float64 limit)";
  }
  return NonFiniteError("chunk", row, column, detail.str());
}

Index default_block_rows(Index n, Precision precision) {
  // 512 KiB to 4 MiB of float64 per block (n x 2048 rows at most): enough rows
  // for an efficient rank-k update, few enough to stay in cache, and the
  // per-block merge (O(n^2)) is negligible against the product (O(rows n^2)).
  const Index rows = std::clamp<Index>((Index{1} << 19) / std::max<Index>(n, 1), 256, 2048);
  // float32 products are twice as fast, so they need twice the rows per call
  // to amortise it; the float32 sums stay at most 2048 terms long (see
  // Precision::mixed for the bound this gives).
  return precision == Precision::mixed ? std::clamp<Index>(2 * rows, 512, 2048) : rows;
}

// Every worker keeps an n x n partial scatter (float64) and, on the narrow
// path, its block's product too (float64, and float32 in mixed precision):
// at most this many workers fit in 1 GiB.
int memory_cap(Index n, bool narrow, bool mixed) {
  const double matrices = narrow ? (mixed ? 2.5 : 2.0) : 1.0;
  const double bytes = matrices * 8.0 * static_cast<double>(n) * static_cast<double>(n);
  return static_cast<int>(std::max(1.0, (1024.0 * 1024 * 1024) / bytes));
}

int choose_workers(int threads, Index blocks, Index rows, Index n, bool narrow, bool mixed) {
  // Small chunks are not worth a thread start.
  const double work = static_cast<double>(rows) * static_cast<double>(n) * static_cast<double>(n);
  if (work < 4.0e6) return 1;
  return std::max(1, std::min({threads, memory_cap(n, narrow, mixed),
                               static_cast<int>(std::min<Index>(blocks, 1 << 20))}));
}

}  // namespace

const char* product_backend() { return detail::backend(); }

namespace {
bool subnormal_weight(double w) noexcept { return w > 0.0 && w < std::numeric_limits<double>::min(); }

std::string weight_message(Index index, double value) {
  std::ostringstream message;
  message << "weights: entry " << index << " is " << value;
  if (subnormal_weight(value)) {
    // sqrt(w) scales the rows; below DBL_MIN it (and w * x) lose bits, so
    // such a weight would silently be off by up to a few percent.
    message << ", a subnormal number; subnormal weights (positive, below " << std::numeric_limits<double>::min()
            << ") are not supported: use 0, or rescale all weights";
  } else {
    message << "; weights must be finite and non-negative";
  }
  return message.str();
}
}  // namespace

InvalidWeightError::InvalidWeightError(Index index, double value)
    : std::invalid_argument(weight_message(index, value)), index_(index), value_(value) {}

void validate_weights(const double* weights, Index count) {
  for (Index i = 0; i < count; ++i) {
    const double w = weights[i];
    if (!(std::isfinite(w) && w >= 0.0) || subnormal_weight(w)) throw InvalidWeightError(i, w);
  }
}

Eigen::VectorXd read_row(const ChunkView& chunk, Index row) {
  Eigen::VectorXd values(chunk.cols);
  copy_rows(chunk, row, 1, values.data());
  return values;
}

namespace {

// Parallelism::within_block: one (large) column-major block at a time; the
// threads load, sum and centre disjoint row ranges, then one threaded BLAS
// call forms the block product into the single shared result.
Moments reduce_within_blocks(const ChunkView& chunk, const double* weights, const Eigen::VectorXd& shift,
                             const ReduceOptions& options) {
  const Index n = chunk.cols;
  const Index rows = chunk.rows;
  const bool mixed = options.precision == Precision::mixed;
  const int threads = detail::resolve_threads(options.threads);
  Index block_rows = options.block_rows;
  if (block_rows <= 0) {  // 16 to 64 MiB per block: long enough for the threaded BLAS to scale
    block_rows = std::clamp<Index>((Index{1} << 23) / std::max<Index>(n, 1), 256, 8192);
    if (mixed) block_rows = std::min<Index>(block_rows, 2048);
  }
  Block b(std::min(block_rows, rows), n, /*row_major=*/false, options.precision);
  std::vector<std::vector<double>> sums(static_cast<std::size_t>(threads), std::vector<double>(n));
  std::vector<double> max_abs(static_cast<std::size_t>(threads));
  Moments part(n, shift);
  Eigen::VectorXd block_mean(n);
  Eigen::VectorXd delta(n);
  const detail::BlasScope blas(threads);

  // Runs body(t, i0, count) over `threads` row ranges of [0, nb) in parallel.
  auto parallel_rows = [&](Index nb, auto&& body) {
    const Index per = (nb + threads - 1) / threads;
    std::vector<std::thread> pool;
    std::exception_ptr failure;
    std::mutex failure_mutex;
    auto run = [&](int t) {
      try {
        const Index i0 = std::min<Index>(nb, t * per);
        body(t, i0, std::min<Index>(per, nb - i0));
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!failure) failure = std::current_exception();
      }
    };
    for (int t = 1; t < threads && t * per < nb; ++t) pool.emplace_back(run, t);
    run(0);
    for (auto& thread : pool) thread.join();
    if (failure) std::rethrow_exception(failure);
  };

  for (Index r0 = 0; r0 < rows; r0 += block_rows) {
    const Index nb = std::min(block_rows, rows - r0);
    const double* w = weights ? weights + r0 : nullptr;
    for (auto& s : sums) std::fill(s.begin(), s.end(), 0.0);
    std::fill(max_abs.begin(), max_abs.end(), 0.0);
    parallel_rows(nb, [&](int t, Index i0, Index count) {
      const auto tt = static_cast<std::size_t>(t);
      if (count > 0) gather_rows(chunk, r0, i0, count, shift.data(), w, b, sums[tt].data(), mixed, max_abs[tt]);
    });
    Eigen::VectorXd total = Eigen::VectorXd::Zero(n);
    for (const auto& s : sums) total += Eigen::Map<const Eigen::VectorXd>(s.data(), n);
    if (!total.allFinite()) {
      const Index bad = locate_non_finite_row(chunk, r0, nb, shift.data(), b);
      if (bad == nb) throw std::overflow_error("chunk: column sums overflow float64; rescale the data");
      throw bad_row_error(chunk, r0 + bad);
    }
    const double block_weight = w ? Eigen::Map<const Eigen::VectorXd>(w, nb).sum() : static_cast<double>(nb);
    if (block_weight == 0.0) {
      part.count += nb;
      continue;
    }
    block_mean = total / block_weight;
    if (mixed) b.exponent = block_exponent(*std::max_element(max_abs.begin(), max_abs.end()), w, nb);
    parallel_rows(nb, [&](int, Index i0, Index count) {
      centre_rows(chunk, r0, i0, count, shift.data(), block_mean.data(), w, b, mixed);
    });
    add_block_product(b, nb, mixed, part.scatter);
    merge_block_mean(part, block_mean, block_weight, nb, delta);
  }
  part.scatter.triangularView<Eigen::StrictlyUpper>() = part.scatter.transpose();
  return part;
}

// The blocks of a chunk dealt to the workers: worker t owns a contiguous
// range of blocks and takes them from its front, so that it reads one
// stream of rows (which the prefetching, in software and in hardware,
// follows); a worker done with its range helps the others, taking from
// theirs. Every block is taken exactly once.
class BlockRanges {
 public:
  BlockRanges(Index blocks, int workers)
      : workers_(workers), ends_(static_cast<std::size_t>(workers)), cursors_(new std::atomic<Index>[workers]) {
    for (int t = 0; t < workers; ++t) {
      cursors_[t].store(blocks * t / workers);
      ends_[static_cast<std::size_t>(t)] = blocks * (t + 1) / workers;
    }
  }
  // The next block for `worker`, or -1 when every block has been taken.
  Index take(int worker) {
    for (int k = 0; k < workers_; ++k) {
      const int t = (worker + k) % workers_;
      const Index end = ends_[static_cast<std::size_t>(t)];
      if (cursors_[t].load(std::memory_order_relaxed) >= end) continue;
      const Index block = cursors_[t].fetch_add(1);
      if (block < end) return block;
    }
    return -1;
  }

 private:
  int workers_;
  std::vector<Index> ends_;
  std::unique_ptr<std::atomic<Index>[]> cursors_;
};

// Parallelism::blocks: workers take blocks of rows (BlockRanges), each
// reducing into its own partial result; the partials are merged at the end.
Moments reduce_across_blocks(const ChunkView& chunk, const double* weights, const Eigen::VectorXd& shift,
                             const ReduceOptions& options) {
  const Index n = chunk.cols;
  const Index rows = chunk.rows;
  const bool mixed = options.precision == Precision::mixed;
  const bool row_major = !(std::abs(chunk.row_stride) < std::abs(chunk.col_stride));
  // The narrow path packs rows; a column-major chunk (Fortran order) keeps
  // the two-pass BLAS path, which reads it column by column (measured
  // faster: 10.8 against 8.0 GFLOP/s at n = 64).
  const detail::ProductKernel kernel =
      row_major ? detail::choose_product_kernel(n, mixed) : detail::ProductKernel::blas;
  const bool narrow = kernel != detail::ProductKernel::blas;
  // Narrow blocks: 2048 rows (the float32 sums' bound; the per-block O(n^2)
  // steps are then under 1% of the product).
  const Index block_rows = options.block_rows > 0 ? options.block_rows
                           : narrow                ? 2048
                                                   : default_block_rows(n, options.precision);
  const Index blocks = (rows + block_rows - 1) / block_rows;
  const int workers = choose_workers(detail::resolve_threads(options.threads), blocks, rows, n, narrow, mixed);
  const detail::BlasScope blas(1);  // the workers parallelise over blocks of rows instead

  std::vector<Moments> partials(static_cast<std::size_t>(workers), Moments(n, shift));
  BlockRanges ranges(blocks, workers);
  std::atomic<bool> stop{false};
  // The first block holding a bad value or that failed (threw), found so
  // far: blocks after it are skipped, blocks before it are still finished
  // (one may hold an earlier bad value or fail earlier), so the error
  // reported is the first in the chunk, as with one worker.
  std::atomic<Index> bad_block{blocks};
  std::mutex error_mutex;
  Index first_bad_row = std::numeric_limits<Index>::max();
  std::exception_ptr failure;
  Index failure_block = blocks;  // the block `failure` came from (-1: none, before any block)

  auto work = [&](int worker, Moments& part) {
    Index block = -1;  // the block being reduced (-1: none)
    try {
      std::optional<NarrowBlock> narrow_state;
      if (narrow) narrow_state.emplace(kernel, n, mixed);
      std::optional<Block> two_pass;  // wide blocks, and narrow ones redone (or with a bad value)
      Eigen::VectorXd block_mean(n);
      Eigen::VectorXd delta(n);
      // Every block before the first bad one is finished, so the smallest
      // bad row reported is the first in the chunk.
      while (!stop.load(std::memory_order_relaxed)) {
        block = ranges.take(worker);
        if (block < 0) break;
        if (block > bad_block.load(std::memory_order_relaxed)) continue;
        const Index r0 = block * block_rows;
        const Index nb = std::min(block_rows, rows - r0);
        const double* w = weights ? weights + r0 : nullptr;
        bool non_finite = false;
        if (narrow_state && narrow_block(*narrow_state, chunk, r0, nb, shift.data(), w, part, delta, non_finite)) {
          continue;
        }
        if (!two_pass) two_pass.emplace(std::min(block_rows, rows), n, row_major, options.precision);
        Block& b = *two_pass;
        gather_rows(chunk, r0, 0, nb, shift.data(), w, b, b.sums.data(), mixed, b.max_abs);
        const Eigen::Map<const Eigen::VectorXd> sums(b.sums.data(), n);
        if (!sums.allFinite()) {  // some value is NaN or infinite, or the sums overflow
          const Index bad = locate_non_finite_row(chunk, r0, nb, shift.data(), b);
          if (bad == nb) throw std::overflow_error("chunk: column sums overflow float64; rescale the data");
          std::lock_guard<std::mutex> lock(error_mutex);
          first_bad_row = std::min(first_bad_row, r0 + bad);
          bad_block.store(std::min(bad_block.load(), block));
          continue;
        }
        const double block_weight =
            w ? Eigen::Map<const Eigen::VectorXd>(w, nb).sum() : static_cast<double>(nb);
        if (block_weight == 0.0) {
          part.count += nb;
          continue;
        }
        block_mean = sums / block_weight;
        if (mixed) b.exponent = block_exponent(b.max_abs, w, nb);
        centre_rows(chunk, r0, 0, nb, shift.data(), block_mean.data(), w, b, mixed);
        add_block_product(b, nb, mixed, part.scatter);  // scatter about the block's own mean ...
        merge_block_mean(part, block_mean, block_weight, nb, delta);  // ... moved to the running mean
        if (narrow_state) narrow_state->record(block_mean, r0);  // for the next narrow block's shift
      }
      block = -1;
      part.scatter.triangularView<Eigen::StrictlyUpper>() = part.scatter.transpose();
    } catch (...) {
      // A failed block ends this worker; the others still finish the blocks
      // before it (taking over this worker's range). A failure outside any
      // block stops them all.
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!failure || block < failure_block) failure = std::current_exception(), failure_block = block;
      if (block < 0) stop.store(true);
      else bad_block.store(std::min(bad_block.load(), block));
    }
  };

  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(workers - 1));
  try {
    for (int t = 1; t < workers; ++t) pool.emplace_back(work, t, std::ref(partials[static_cast<std::size_t>(t)]));
  } catch (...) {
    stop.store(true);
    for (auto& thread : pool) thread.join();
    throw;
  }
  work(0, partials[0]);
  for (auto& thread : pool) thread.join();

  // The first of the bad row and the failed block (never the same block: a
  // block with a bad value does not throw).
  if (first_bad_row != std::numeric_limits<Index>::max() && !(failure && failure_block < first_bad_row / block_rows)) {
    throw bad_row_error(chunk, first_bad_row);
  }
  if (failure) std::rethrow_exception(failure);
  Moments result = std::move(partials[0]);
  for (std::size_t t = 1; t < partials.size(); ++t) result.merge(partials[t]);
  return result;
}

}  // namespace

void copy_rows(const ChunkView& chunk, Index r0, Index count, double* out) {
  const char* base = static_cast<const char*>(chunk.data);
  dispatch(chunk.type, [&](auto tag) {
    using T = decltype(tag);
    for (Index i = 0; i < count; ++i) {
      const char* row = base + (r0 + i) * chunk.row_stride;
      for (Index j = 0; j < chunk.cols; ++j) out[i * chunk.cols + j] = load<T>(row + j * chunk.col_stride);
    }
  });
}

Moments reduce_chunk(const ChunkView& chunk, const double* weights, const Eigen::Ref<const Eigen::VectorXd>& origin,
                     const ReduceOptions& options) {
  const Index n = chunk.cols;
  const Index rows = chunk.rows;
  if (rows < 0 || n < 0) throw std::invalid_argument("chunk: negative shape");
  if (origin.size() != n) {
    throw std::invalid_argument("origin: expected " + std::to_string(n) + " entries, got " +
                                std::to_string(origin.size()));
  }
  const Eigen::VectorXd shift = origin;
  if (rows == 0) return Moments(n, shift);
  if (chunk.data == nullptr) throw std::invalid_argument("chunk: null data pointer");
  if (weights != nullptr) validate_weights(weights, rows);

  // Per-worker partials scale best (measured); they are only given up when
  // their memory would leave a single worker for a multi-threaded request.
  const int requested = detail::resolve_threads(options.threads);
  const bool memory_bound = requested > 1 && memory_cap(n, false, false) == 1 &&
                            static_cast<double>(rows) * static_cast<double>(n) * static_cast<double>(n) >= 4.0e6;
  const bool within_block = options.parallelism == Parallelism::within_block ||
                            (options.parallelism == Parallelism::automatic && memory_bound);
  Moments result = within_block ? reduce_within_blocks(chunk, weights, shift, options)
                                : reduce_across_blocks(chunk, weights, shift, options);
  if (!result.scatter.allFinite() || !result.mean.allFinite()) {
    throw std::overflow_error("chunk: sums of squares overflow float64; rescale the data");
  }
  return result;
}

}  // namespace descramble
