#include "descramble/file_stream.hpp"

#include "descramble/errors.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace descramble {
namespace {

// An open file descriptor, closed on scope exit.
class File {
 public:
  explicit File(const std::string& path) : path_(path), fd_(::open(path.c_str(), O_RDONLY | O_CLOEXEC)) {
    if (fd_ < 0) {
      const int code = errno;  // before anything else can set it
      throw FileError(code, path, "cannot open");
    }
  }
  ~File() { ::close(fd_); }
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  std::uint64_t size() const {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      const int code = errno;
      throw FileError(code, path_, "cannot stat");
    }
    return static_cast<std::uint64_t>(st.st_size);
  }

  // Reads exactly `bytes` bytes at `offset`, or throws.
  void read_at(void* out, std::size_t bytes, std::uint64_t offset, const std::string& path) const {
    auto* p = static_cast<char*>(out);
    while (bytes > 0) {
      const ssize_t got = ::pread(fd_, p, bytes, static_cast<off_t>(offset));
      if (got < 0) {
        if (errno == EINTR) continue;
        const int code = errno;
        throw FileError(code, path, "cannot read");
      }
      if (got == 0) throw std::invalid_argument("'" + path + "' ended early: the file is truncated");
      p += got;
      bytes -= static_cast<std::size_t>(got);
      offset += static_cast<std::uint64_t>(got);
    }
  }

 private:
  std::string path_;
  int fd_;
};

std::uint64_t payload_bytes(const FileLayout& layout) {
  return static_cast<std::uint64_t>(layout.rows) * static_cast<std::uint64_t>(layout.cols) *
         scalar_size(layout.type);
}

// Reads rows [r0, r0 + nb) into `buffer`: row-major as stored for C order;
// for Fortran order one contiguous read per column, giving a column-major block.
void read_rows(const File& file, const FileLayout& layout, Index r0, Index nb, std::vector<char>& buffer) {
  const std::uint64_t size = scalar_size(layout.type);
  const auto row_bytes = static_cast<std::uint64_t>(layout.cols) * size;
  buffer.resize(static_cast<std::size_t>(static_cast<std::uint64_t>(nb) * row_bytes));
  if (!layout.fortran_order) {
    file.read_at(buffer.data(), buffer.size(), layout.offset + static_cast<std::uint64_t>(r0) * row_bytes,
                 layout.path);
    return;
  }
  const auto column_bytes = static_cast<std::uint64_t>(nb) * size;
  for (Index j = 0; j < layout.cols; ++j) {
    const std::uint64_t at = layout.offset + (static_cast<std::uint64_t>(j) * static_cast<std::uint64_t>(layout.rows) +
                                              static_cast<std::uint64_t>(r0)) * size;
    file.read_at(buffer.data() + static_cast<std::size_t>(j) * column_bytes, static_cast<std::size_t>(column_bytes),
                 at, layout.path);
  }
}

ChunkView view_of(const std::vector<char>& buffer, const FileLayout& layout, Index nb) {
  const auto size = static_cast<Index>(scalar_size(layout.type));
  ChunkView view{buffer.data(), layout.type, nb, layout.cols, layout.cols * size, size};
  if (layout.fortran_order) {
    view.row_stride = size;
    view.col_stride = nb * size;
  }
  return view;
}

}  // namespace

Index default_chunk_rows(const FileLayout& layout, std::uint64_t bytes) {
  const std::uint64_t row_bytes = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(layout.cols) * scalar_size(layout.type));
  return static_cast<Index>(std::max<std::uint64_t>(1, bytes / row_bytes));
}

void check_file(const FileLayout& layout) {
  if (layout.rows < 0 || layout.cols < 1) {
    throw std::invalid_argument("'" + layout.path + "': expected a shape (rows >= 0, columns >= 1)");
  }
  const File file(layout.path);
  const std::uint64_t need = layout.offset + payload_bytes(layout);
  const std::uint64_t have = file.size();
  if (have < need) {
    throw std::invalid_argument("'" + layout.path + "' is truncated: " + std::to_string(layout.rows) + " x " +
                                std::to_string(layout.cols) + " " + scalar_name(layout.type) + " values need " +
                                std::to_string(need) + " bytes, the file has " + std::to_string(have));
  }
}

Index stream_file(Autocorrelation& acc, const FileLayout& layout, Index chunk_rows, const StreamProgress& progress) {
  if (layout.cols != acc.n_features()) {
    throw std::invalid_argument("'" + layout.path + "': expected " + std::to_string(acc.n_features()) +
                                " columns (n_features), the file has " + std::to_string(layout.cols));
  }
  check_file(layout);
  const File file(layout.path);
  const Index step = chunk_rows > 0 ? chunk_rows : default_chunk_rows(layout);
  const Index rows = layout.rows;

  // Two buffers: the reader fills one while the accumulator reduces the other.
  // `pending` is declared after the buffers, so unwinding waits for the read
  // in flight before the buffers go away.
  std::vector<char> buffers[2];
  std::future<void> pending;
  auto read = [&](Index r0, int slot) {
    return std::async(std::launch::async, [&, r0, slot] {
      read_rows(file, layout, r0, std::min(step, rows - r0), buffers[slot]);
    });
  };
  if (rows > 0) pending = read(0, 0);
  int slot = 0;
  for (Index r0 = 0; r0 < rows; r0 += step, slot ^= 1) {
    pending.get();  // rethrows a failed read
    const Index nb = std::min(step, rows - r0);
    if (r0 + step < rows) pending = read(r0 + step, slot ^ 1);
    try {
      acc.update(view_of(buffers[slot], layout, nb));
    } catch (const NonFiniteError& error) {  // name the row of the file, not of the buffer
      throw error.shifted("'" + layout.path + "'", r0);
    }
    if (progress) progress(r0 + nb, rows);
  }
  return rows;
}

}  // namespace descramble
