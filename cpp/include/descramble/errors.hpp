// The core's exception types: each carries its data (a row, a column, an
// entry, a path), so that callers act on fields, never on message text.
// Every other error is a std::invalid_argument (bad argument, message naming
// it) or std::overflow_error (a result beyond float64).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace descramble {

using Index = std::ptrdiff_t;

/// A sample holds NaN or infinity, or overflows float64 once centred.
/// The message reads "<source>: row <row> <detail>".
class NonFiniteError : public std::invalid_argument {
 public:
  /// `column` is -1 when no single entry is at fault (a row that overflows once centred).
  NonFiniteError(std::string source, Index row, Index column, std::string detail)
      : std::invalid_argument(source + ": row " + std::to_string(row) + " " + detail),
        source_(std::move(source)), row_(row), column_(column), detail_(std::move(detail)) {}

  /// What was read: "chunk" (the array the core was handed), a quoted file
  /// path, or the name the caller gave its stream ("data", "x", ...).
  const std::string& source() const noexcept { return source_; }
  /// The offending row, counted from the start of `source()`.
  Index row() const noexcept { return row_; }
  /// The first non-finite column of that row, or -1 (overflow once centred).
  Index column() const noexcept { return column_; }
  /// What is wrong, e.g. "contains NaN (column 2); every value must be finite".
  const std::string& detail() const noexcept { return detail_; }

  /// The same error for a chunk whose row r is row `first_row + row_step * r`
  /// of `source` (a file or a stream; `row_step` 2 for every other row): the
  /// row there, not in the chunk.
  NonFiniteError shifted(std::string source, Index first_row, Index row_step = 1) const {
    return NonFiniteError(std::move(source), first_row + row_step * row_, column_, detail_);
  }

 private:
  std::string source_;
  Index row_;
  Index column_;
  std::string detail_;
};

/// A sample weight is negative, NaN, infinite or subnormal (0 < w < DBL_MIN).
/// The message reads "weights: entry <index> is <value>..." and says what is wrong.
class InvalidWeightError : public std::invalid_argument {
 public:
  InvalidWeightError(Index index, double value);

  /// The offending entry, counted from the start of the weights of the stream.
  Index index() const noexcept { return index_; }
  double value() const noexcept { return value_; }
  /// The same error for weights whose entry r is entry `first_row + row_step * r` of a stream.
  InvalidWeightError shifted(Index first_row, Index row_step = 1) const {
    return InvalidWeightError(first_row + row_step * index_, value_);
  }

 private:
  Index index_;
  double value_;
};

/// A file cannot be opened or read: the operating system's error code and the path.
class FileError : public std::system_error {
 public:
  FileError(int code, std::string path, const std::string& action)
      : std::system_error(code, std::generic_category(), action + " '" + path + "'"), path_(std::move(path)) {}

  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

}  // namespace descramble
