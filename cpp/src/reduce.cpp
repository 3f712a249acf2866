#include "descramble/reduce.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace descramble {
namespace {

template <class T>
inline double load(const char* p) noexcept {
  T value;
  std::memcpy(&value, p, sizeof(T));  // strides need not respect alignment
  return static_cast<double>(value);
}

// Copies rows [r0, r0 + nb) of the chunk into the top of `buffer`, minus the
// origin, walking memory in whichever order is contiguous in the source.
template <class T>
void load_block(const ChunkView& chunk, Index r0, Index nb, const double* origin,
                Eigen::MatrixXd& buffer) {
  const char* base = static_cast<const char*>(chunk.data);
  const Index rs = chunk.row_stride;
  const Index cs = chunk.col_stride;
  const Index n = chunk.cols;
  if (std::abs(rs) < std::abs(cs)) {  // samples adjacent in memory (Fortran order, X.T views)
    for (Index j = 0; j < n; ++j) {
      const char* p = base + r0 * rs + j * cs;
      double* out = buffer.col(j).data();
      const double o = origin[j];
      for (Index i = 0; i < nb; ++i) out[i] = load<T>(p + i * rs) - o;
    }
  } else {  // features adjacent in memory (C order)
    for (Index i = 0; i < nb; ++i) {
      const char* p = base + (r0 + i) * rs;
      for (Index j = 0; j < n; ++j) buffer(i, j) = load<T>(p + j * cs) - origin[j];
    }
  }
}

void load_block_any(const ChunkView& chunk, Index r0, Index nb, const double* origin,
                    Eigen::MatrixXd& buffer) {
  switch (chunk.type) {
    case ScalarType::float64: return load_block<double>(chunk, r0, nb, origin, buffer);
    case ScalarType::float32: return load_block<float>(chunk, r0, nb, origin, buffer);
    case ScalarType::int8: return load_block<std::int8_t>(chunk, r0, nb, origin, buffer);
    case ScalarType::int16: return load_block<std::int16_t>(chunk, r0, nb, origin, buffer);
    case ScalarType::int32: return load_block<std::int32_t>(chunk, r0, nb, origin, buffer);
    case ScalarType::int64: return load_block<std::int64_t>(chunk, r0, nb, origin, buffer);
    case ScalarType::uint8: return load_block<std::uint8_t>(chunk, r0, nb, origin, buffer);
    case ScalarType::uint16: return load_block<std::uint16_t>(chunk, r0, nb, origin, buffer);
    case ScalarType::uint32: return load_block<std::uint32_t>(chunk, r0, nb, origin, buffer);
    case ScalarType::uint64: return load_block<std::uint64_t>(chunk, r0, nb, origin, buffer);
    case ScalarType::boolean: return load_block<std::uint8_t>(chunk, r0, nb, origin, buffer);
  }
  throw std::invalid_argument("chunk: unsupported scalar type");
}

// Explains why row `row` of the chunk gave a non-finite value.
std::string describe_bad_row(const ChunkView& chunk, Index row) {
  const Eigen::VectorXd values = read_row(chunk, row);
  std::ostringstream message;
  if (!values.allFinite()) {
    Index column = 0;
    while (std::isfinite(values[column])) ++column;
    message << "chunk: row " << row << " contains " << (std::isnan(values[column]) ? "NaN" : "infinity")
            << " (column " << column << "); every value must be finite";
  } else {
    message << "chunk: row " << row
            << " overflows float64 once centred; rescale the data (values near the float64 limit)";
  }
  return message.str();
}

Index default_block_rows(Index n) {
  // About 256 KiB of float64 per block buffer: large enough for an efficient
  // rank-k update, small enough to stay in cache and to keep the per-block
  // merge (O(n^2)) negligible against the product (O(block_rows n^2)).
  const Index rows = (Index{1} << 15) / std::max<Index>(n, 1);
  return std::clamp<Index>(rows, 64, 1024);
}

int choose_threads(const ReduceOptions& options, Index blocks, Index rows, Index n) {
  int threads = options.threads > 0 ? options.threads
                                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Small chunks are not worth a thread start; every thread keeps an n x n
  // partial scatter, so bound their total memory too (512 MiB).
  const double work = static_cast<double>(rows) * static_cast<double>(n) * static_cast<double>(n);
  if (work < 4.0e6) threads = 1;
  const double partial_bytes = 8.0 * static_cast<double>(n) * static_cast<double>(n);
  const int memory_cap = static_cast<int>(std::max(1.0, (512.0 * 1024 * 1024) / partial_bytes));
  threads = std::min({threads, memory_cap, static_cast<int>(std::min<Index>(blocks, 1 << 20))});
  return std::max(threads, 1);
}

}  // namespace

void validate_weights(const double* weights, Index count) {
  for (Index i = 0; i < count; ++i) {
    const double w = weights[i];
    if (!(std::isfinite(w) && w >= 0.0)) {
      std::ostringstream message;
      message << "weights: entry " << i << " is " << w
              << "; weights must be finite and non-negative";
      throw std::invalid_argument(message.str());
    }
  }
}

Eigen::VectorXd read_row(const ChunkView& chunk, Index row) {
  Eigen::MatrixXd buffer(1, chunk.cols);
  const Eigen::VectorXd zero = Eigen::VectorXd::Zero(chunk.cols);
  load_block_any(chunk, row, 1, zero.data(), buffer);
  return buffer.row(0).transpose();
}

Moments reduce_chunk(const ChunkView& chunk, const double* weights,
                     const Eigen::Ref<const Eigen::VectorXd>& origin, const ReduceOptions& options) {
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

  const Index block_rows = options.block_rows > 0 ? options.block_rows : default_block_rows(n);
  const Index blocks = (rows + block_rows - 1) / block_rows;
  const int threads = choose_threads(options, blocks, rows, n);

  std::vector<Moments> partials(static_cast<std::size_t>(threads), Moments(n, shift));
  std::atomic<Index> next_block{0};
  std::atomic<bool> stop{false};
  std::mutex error_mutex;
  Index first_bad_row = std::numeric_limits<Index>::max();
  std::exception_ptr failure;

  auto work = [&](Moments& part) {
    try {
      Eigen::MatrixXd buffer(block_rows, n);
      Eigen::VectorXd block_mean(n);
      Eigen::VectorXd delta(n);
      // Blocks are handed out in increasing order and every taken block is
      // finished, so the smallest bad row reported is the first in the chunk.
      while (!stop.load(std::memory_order_relaxed)) {
        const Index block = next_block.fetch_add(1);
        if (block >= blocks) break;
        const Index r0 = block * block_rows;
        const Index nb = std::min(block_rows, rows - r0);
        load_block_any(chunk, r0, nb, shift.data(), buffer);
        auto x = buffer.topRows(nb);
        if (!x.allFinite()) {
          Index bad = 0;
          while (x.row(bad).allFinite()) ++bad;
          std::lock_guard<std::mutex> lock(error_mutex);
          first_bad_row = std::min(first_bad_row, r0 + bad);
          stop.store(true);
          break;
        }
        double block_weight;
        if (weights != nullptr) {
          const Eigen::Map<const Eigen::VectorXd> w(weights + r0, nb);
          block_weight = w.sum();
          if (block_weight == 0.0) {
            part.count += nb;
            continue;
          }
          block_mean.noalias() = x.transpose() * w;
          block_mean /= block_weight;
          x.rowwise() -= block_mean.transpose();
          x = w.cwiseSqrt().asDiagonal() * x;  // sum_i w_i c_i c_i^T = (sqrt(w) c)^T (sqrt(w) c)
        } else {
          block_weight = static_cast<double>(nb);
          block_mean = x.colwise().mean().transpose();
          x.rowwise() -= block_mean.transpose();
        }
        // Scatter about the block's own mean (lower triangle only) ...
        part.scatter.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose());
        // ... then the Chan-Golub-LeVeque correction for the shift of means (MATH.md §7).
        const double total = part.weight + block_weight;
        delta = block_mean - part.mean;
        if (part.weight > 0.0) {
          part.scatter.selfadjointView<Eigen::Lower>().rankUpdate(delta, part.weight * block_weight / total);
        }
        part.mean += (block_weight / total) * delta;
        part.weight = total;
        part.count += nb;
      }
      part.scatter.triangularView<Eigen::StrictlyUpper>() = part.scatter.transpose();
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!failure) failure = std::current_exception();
      stop.store(true);
    }
  };

  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads - 1));
  try {
    for (int t = 1; t < threads; ++t) pool.emplace_back(work, std::ref(partials[static_cast<std::size_t>(t)]));
  } catch (...) {
    stop.store(true);
    for (auto& thread : pool) thread.join();
    throw;
  }
  work(partials[0]);
  for (auto& thread : pool) thread.join();

  if (failure) std::rethrow_exception(failure);
  if (first_bad_row != std::numeric_limits<Index>::max()) {
    throw NonFiniteError(describe_bad_row(chunk, first_bad_row));
  }
  Moments result = std::move(partials[0]);
  for (std::size_t t = 1; t < partials.size(); ++t) result.merge(partials[t]);
  if (!result.scatter.allFinite() || !result.mean.allFinite()) {
    throw std::overflow_error("chunk: sums of squares overflow float64; rescale the data");
  }
  return result;
}

}  // namespace descramble
