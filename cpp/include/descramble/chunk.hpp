// A read-only, type-erased view of a block of samples (rows = samples).
//
// The core never copies a caller's chunk: it reads the elements in place,
// through byte strides, whatever their scalar type and memory order (C order,
// Fortran order, transposed or sliced views), converting to float64 as it goes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace descramble {

using Index = std::ptrdiff_t;

/// The element types a chunk may hold.
enum class ScalarType {
  float64,
  float32,
  int8,
  int16,
  int32,
  int64,
  uint8,
  uint16,
  uint32,
  uint64,
  boolean,
};

/// Size in bytes of one element of type `t`.
std::size_t scalar_size(ScalarType t) noexcept;

/// Human-readable name of `t` ("float64", "int32", ...).
const char* scalar_name(ScalarType t) noexcept;

/// Maps a C++ arithmetic type to its ScalarType.
template <class T>
constexpr ScalarType scalar_type_of() noexcept {
  if constexpr (std::is_same_v<T, double>) return ScalarType::float64;
  else if constexpr (std::is_same_v<T, float>) return ScalarType::float32;
  else if constexpr (std::is_same_v<T, bool>) return ScalarType::boolean;
  else if constexpr (std::is_same_v<T, std::int8_t>) return ScalarType::int8;
  else if constexpr (std::is_same_v<T, std::int16_t>) return ScalarType::int16;
  else if constexpr (std::is_same_v<T, std::int32_t>) return ScalarType::int32;
  else if constexpr (std::is_same_v<T, std::int64_t>) return ScalarType::int64;
  else if constexpr (std::is_same_v<T, std::uint8_t>) return ScalarType::uint8;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return ScalarType::uint16;
  else if constexpr (std::is_same_v<T, std::uint32_t>) return ScalarType::uint32;
  else if constexpr (std::is_same_v<T, std::uint64_t>) return ScalarType::uint64;
  else static_assert(sizeof(T) == 0, "unsupported scalar type");
}

/// A (rows x cols) matrix of samples held elsewhere. Element (i, j) lives at
/// `static_cast<const char*>(data) + i * row_stride + j * col_stride`.
/// Strides are in bytes and may be negative or zero.
struct ChunkView {
  const void* data = nullptr;
  ScalarType type = ScalarType::float64;
  Index rows = 0;
  Index cols = 0;
  Index row_stride = 0;
  Index col_stride = 0;

  /// A view of `rows x cols` elements of type T with strides counted in elements.
  template <class T>
  static ChunkView of(const T* data, Index rows, Index cols, Index row_stride_elements,
                      Index col_stride_elements) noexcept {
    const auto size = static_cast<Index>(sizeof(T));
    return ChunkView{data, scalar_type_of<T>(), rows, cols, row_stride_elements * size,
                     col_stride_elements * size};
  }

  /// A view of a C-ordered (row-major, contiguous) `rows x cols` array.
  template <class T>
  static ChunkView row_major(const T* data, Index rows, Index cols) noexcept {
    return of(data, rows, cols, cols, 1);
  }
};

}  // namespace descramble
