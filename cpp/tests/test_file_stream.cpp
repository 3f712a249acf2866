#include <cstdio>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>
#include <cerrno>
#include <system_error>

#include "check.hpp"
#include "descramble/file_stream.hpp"
#include "reference.hpp"

using namespace descramble;
using namespace descramble::testing;

namespace {

std::string write_file(const std::string& name, const void* data, std::size_t bytes, std::size_t header = 0) {
  const std::string path = std::string(P_tmpdir) + "/descramble_test_" + name;
  std::ofstream out(path, std::ios::binary);
  const std::string padding(header, 'h');
  out.write(padding.data(), static_cast<std::streamsize>(header));
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  return path;
}

}  // namespace

TEST(stream_file_matches_in_memory_for_both_orders_and_any_chunking) {
  const RowMatrix x = random_matrix(1001, 7, 17, 50.0);
  const Eigen::MatrixXd f = x;  // column-major copy
  const std::string c_path = write_file("c.bin", x.data(), sizeof(double) * 7007, 128);
  const std::string f_path = write_file("f.bin", f.data(), sizeof(double) * 7007, 128);
  Autocorrelation expected(7);
  expected.update(ChunkView::row_major(x.data(), 1001, 7));
  for (bool fortran : {false, true}) {
    for (Index chunk_rows : {0, 1, 10, 1000, 5000}) {
      Autocorrelation acc(7);
      const FileLayout layout{fortran ? f_path : c_path, 128, ScalarType::float64, 1001, 7, fortran};
      Index calls = 0;
      const Index rows = stream_file(acc, layout, chunk_rows, [&](Index done, Index total) {
        ++calls;
        CHECK(total == 1001 && done <= total);
      });
      CHECK(rows == 1001);
      CHECK(acc.count() == 1001);
      CHECK(calls >= 1);
      CHECK_CLOSE(acc.covariance(), expected.covariance(), 1e-10);
      CHECK_CLOSE(acc.mean(), expected.mean(), 1e-11);
    }
  }
  std::remove(c_path.c_str());
  std::remove(f_path.c_str());
}

TEST(stream_file_reads_float32_payloads) {
  std::vector<float> values(300);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 17) * 0.5f;
  const std::string path = write_file("f32.bin", values.data(), sizeof(float) * values.size());
  Autocorrelation acc(3), expected(3);
  stream_file(acc, {path, 0, ScalarType::float32, 100, 3, false}, 7);
  expected.update(ChunkView::row_major(values.data(), 100, 3));
  CHECK_CLOSE(acc.autocorrelation(), expected.autocorrelation(), 1e-12);
  std::remove(path.c_str());
}

TEST(stream_file_rejects_missing_and_truncated_files) {
  Autocorrelation acc(2);
  CHECK_THROWS_WITH(stream_file(acc, {"/nonexistent/descramble.bin", 0, ScalarType::float64, 10, 2, false}),
                    std::system_error, "cannot open");
  const double values[6] = {1, 2, 3, 4, 5, 6};
  const std::string path = write_file("short.bin", values, sizeof(values));
  CHECK_THROWS_WITH(stream_file(acc, {path, 0, ScalarType::float64, 4, 2, false}), std::invalid_argument,
                    "is truncated: 4 x 2 float64 values need 64 bytes, the file has 48");
  CHECK_THROWS_WITH(stream_file(acc, {path, 0, ScalarType::float64, 3, 3, false}), std::invalid_argument,
                    "expected 2 columns");
  CHECK(acc.count() == 0);
  std::remove(path.c_str());
}

TEST(stream_file_stopped_by_progress_keeps_committed_chunks) {
  const RowMatrix x = random_matrix(100, 2, 3);
  const std::string path = write_file("stop.bin", x.data(), sizeof(double) * 200);
  Autocorrelation acc(2);
  CHECK_THROWS_WITH(stream_file(acc, {path, 0, ScalarType::float64, 100, 2, false}, 30,
                                [](Index done, Index) {
                                  if (done >= 60) throw std::runtime_error("interrupted");
                                }),
                    std::runtime_error, "interrupted");
  CHECK(acc.count() == 60);
  const RowMatrix head = x.topRows(60);
  Autocorrelation expected(2);
  expected.update(ChunkView::row_major(head.data(), 60, 2));
  CHECK_CLOSE(acc.covariance(), expected.covariance(), 1e-12);
  std::remove(path.c_str());
}

TEST(stream_file_names_the_file_row_of_a_nan) {
  RowMatrix x = random_matrix(3000, 4, 5);
  x(2500, 1) = std::numeric_limits<double>::quiet_NaN();
  const std::string path = write_file("nan.bin", x.data(), sizeof(double) * 12000);
  Autocorrelation acc(4);
  // Chunks of 1000 rows: the NaN is row 500 of the third chunk, row 2500 of the file.
  CHECK_THROWS_WITH(stream_file(acc, {path, 0, ScalarType::float64, 3000, 4, false}, 1000), NonFiniteError,
                    "nan.bin': row 2500 contains NaN (column 1)");
  CHECK(acc.count() == 2000);  // the chunks before it are kept
  // The error carries its data: the file, the row of the file, the column.
  try {
    Autocorrelation again(4);
    stream_file(again, {path, 0, ScalarType::float64, 3000, 4, false}, 1000);
    CHECK(false);
  } catch (const NonFiniteError& e) {
    CHECK(e.row() == 2500);
    CHECK(e.column() == 1);
    CHECK(e.source() == "'" + path + "'");
  }
  std::remove(path.c_str());
}

TEST(file_errors_carry_the_path_and_the_system_error_code) {
  Autocorrelation acc(2);
  const std::string missing = "/nonexistent/descramble.bin";
  try {
    stream_file(acc, {missing, 0, ScalarType::float64, 10, 2, false});
    CHECK(false);
  } catch (const FileError& e) {
    CHECK(e.path() == missing);
    CHECK(e.code().value() == ENOENT);
  }
}
