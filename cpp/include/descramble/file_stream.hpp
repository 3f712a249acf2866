// Streams a matrix stored in a file (a .npy payload or raw binary) into an
// Autocorrelation, reading at file offsets in a background thread while the
// previous chunk is being reduced, with memory bounded by two chunks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "descramble/autocorrelation.hpp"
#include "descramble/chunk.hpp"

namespace descramble {

/// Where and how a (rows x cols) matrix of samples is stored in a file.
struct FileLayout {
  std::string path;
  std::uint64_t offset = 0;  ///< bytes before the first element (the .npy header)
  ScalarType type = ScalarType::float64;
  Index rows = 0;
  Index cols = 0;
  bool fortran_order = false;  ///< column-major storage (a .npy with fortran_order)
};

/// Called after every committed chunk with (rows streamed so far, rows in
/// total). It may throw to stop the stream (for example on Ctrl-C); every
/// chunk committed before stays in the accumulator.
using StreamProgress = std::function<void(Index, Index)>;

/// Default rows per chunk: about `bytes` bytes of file data per chunk.
Index default_chunk_rows(const FileLayout& layout, std::uint64_t bytes = std::uint64_t{32} << 20);

/// Checks that the file exists and holds at least the bytes the layout
/// needs; throws std::invalid_argument (std::system_error if it cannot be
/// opened) with a message naming the file otherwise.
void check_file(const FileLayout& layout);

/// Adds every row of the file to `acc`, `chunk_rows` rows at a time (0: the
/// default). Returns the number of rows streamed.
Index stream_file(Autocorrelation& acc, const FileLayout& layout, Index chunk_rows = 0,
                  const StreamProgress& progress = {});

}  // namespace descramble
