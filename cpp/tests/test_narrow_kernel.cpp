// The narrow-block kernel (cpp/src/narrow_kernel.cpp) against a plain
// reference, on awkward shapes, and reduce_chunk through every kernel.
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "check.hpp"
#include "descramble/moments.hpp"
#include "descramble/reduce.hpp"
#include "narrow_kernel.hpp"
#include "reference.hpp"

using namespace descramble;
using namespace descramble::testing;
using detail::ProductKernel;

namespace {

std::vector<ProductKernel> narrow_kernels() {
  // avx2 and avx512 run as the generic kernel (in their layouts) on a CPU
  // without them.
  return {ProductKernel::generic, ProductKernel::avx2, ProductKernel::avx512};
}

// Sets DESCRAMBLE_PRODUCT_KERNEL for the scope.
struct ForcedKernel {
  explicit ForcedKernel(const char* name) { setenv("DESCRAMBLE_PRODUCT_KERNEL", name, 1); }
  ~ForcedKernel() { unsetenv("DESCRAMBLE_PRODUCT_KERNEL"); }
};

// Every width 1 to 40, and the edges of AVX-512's groups of 3 vectors (24
// float64 and 48 float32 columns) and of its 8 broadcast columns.
std::vector<Index> awkward_widths() {
  std::vector<Index> widths;
  for (Index n = 1; n <= 40; ++n) widths.push_back(n);
  for (Index n : {47, 48, 49, 56, 63, 64, 65, 72, 97}) widths.push_back(n);
  return widths;
}

// x in the kernel's panels of W columns, `panel_stride` values apart; the
// padding (columns n.. of the last panel, rows beyond x.rows()) is NaN: the
// kernel reads it, and it must never reach the result.
template <class T>
std::vector<T> panel_block(const RowMatrix& x, Index W, Index panel_stride) {
  const Index panels = (x.cols() + W - 1) / W;
  std::vector<T> a(static_cast<std::size_t>(panels * panel_stride), std::numeric_limits<T>::quiet_NaN());
  for (Index i = 0; i < x.rows(); ++i)
    for (Index j = 0; j < x.cols(); ++j)
      a[static_cast<std::size_t>((j / W) * panel_stride + i * W + j % W)] = static_cast<T>(x(i, j));
  return a;
}

}  // namespace

TEST(narrow_kernel_float64_matches_reference_on_awkward_shapes) {
  for (ProductKernel kernel : narrow_kernels()) {
    const Index W = detail::narrow_panel_width(kernel, false);
    for (Index n : awkward_widths()) {
      for (Index rows : {0, 1, 2, 5, 33}) {
        const RowMatrix x = random_matrix(rows, n, 100u + static_cast<unsigned>(n * 7 + rows));
        for (Index stride : {W * rows, W * rows + 12}) {
          const std::vector<double> a = panel_block<double>(x, W, stride);
          const Index ldc = n + 3;
          // C starts at 1 (lower) and 7 (strict upper, which must stay 7).
          std::vector<double> c(static_cast<std::size_t>(ldc * n), 1.0);
          for (Index j = 0; j < n; ++j)
            for (Index i = 0; i < j; ++i) c[static_cast<std::size_t>(j * ldc + i)] = 7.0;
          detail::narrow_rank_update(kernel, a.data(), rows, n, stride, c.data(), ldc);
          const Eigen::MatrixXd expected = x.transpose() * x;
          double err = 0.0;
          bool upper_kept = true;
          for (Index j = 0; j < n; ++j) {
            for (Index i = 0; i < ldc; ++i) {
              const double v = c[static_cast<std::size_t>(j * ldc + i)];
              if (i < j) upper_kept = upper_kept && v == 7.0;
              else if (i < n) err = std::max(err, std::abs(v - 1.0 - expected(i, j)));
              else upper_kept = upper_kept && v == 1.0;  // rows n.. of the leading dimension
            }
          }
          CHECK(upper_kept);
          CHECK(err <= 1e-12 * (1.0 + static_cast<double>(rows)) * static_cast<double>(n * n));
        }
      }
    }
  }
}

TEST(narrow_kernel_float32_matches_reference_on_awkward_shapes) {
  for (ProductKernel kernel : narrow_kernels()) {
    const Index W = detail::narrow_panel_width(kernel, true);
    for (Index n : awkward_widths()) {
      for (Index rows : {0, 1, 3, 17}) {
        const RowMatrix x = random_matrix(rows, n, 300u + static_cast<unsigned>(n * 5 + rows));
        const Index stride = W * rows + 8;
        const std::vector<float> a = panel_block<float>(x, W, stride);
        std::vector<float> c(static_cast<std::size_t>(n * n), 5.0f);  // added to (lower), kept (upper)
        detail::narrow_rank_update(kernel, a.data(), rows, n, stride, c.data(), n);
        RowMatrix xf(rows, n);
        for (Index i = 0; i < rows; ++i)
          for (Index j = 0; j < n; ++j) xf(i, j) = static_cast<double>(a[static_cast<std::size_t>((j / W) * stride + i * W + j % W)]);
        const Eigen::MatrixXd expected = xf.transpose() * xf;
        const Eigen::MatrixXd magnitude = xf.cwiseAbs().transpose() * xf.cwiseAbs();
        for (Index j = 0; j < n; ++j) {
          for (Index i = 0; i < n; ++i) {
            const double v = c[static_cast<std::size_t>(j * n + i)];
            if (i < j) CHECK(v == 5.0);
            else CHECK_CLOSE(v - 5.0, expected(i, j), 1e-6 * (1.0 + static_cast<double>(rows)) * (5.0 + magnitude(i, j)));
          }
        }
      }
    }
  }
}

TEST(reduce_chunk_is_the_same_through_every_kernel) {
  // C order, Fortran order and a strided view (every other column), float64
  // and mixed, weighted and not: every kernel matches the long-double
  // reference, and the narrow kernels match the BLAS to rounding.
  for (Index n : {1, 3, 8, 13, 17, 33}) {
    const Index rows = 1500;
    const RowMatrix x = random_matrix(rows, 2 * n, 40u + static_cast<unsigned>(n), 3.0);
    const Eigen::MatrixXd fortran = x;  // column-major copy
    Eigen::VectorXd w(rows);
    for (Index i = 0; i < rows; ++i) w[i] = 0.5 + static_cast<double>(i % 7);
    RowMatrix every_other(rows, n);
    for (Index j = 0; j < n; ++j) every_other.col(j) = x.col(2 * j);
    const std::vector<ChunkView> views{
        ChunkView::of(x.data(), rows, n, 2 * n, 2),    // strided: every other column of the C-ordered x
        ChunkView::of(fortran.data(), rows, n, 1, rows * 2),  // Fortran order, every other column
        ChunkView::of(x.data(), rows, n, 2 * n, 1),    // the first n columns (row stride 2n)
    };
    RowMatrix first(rows, n);
    first = x.leftCols(n);
    const std::vector<const RowMatrix*> expected_data{&every_other, &every_other, &first};
    for (std::size_t v = 0; v < views.size(); ++v) {
      for (const double* weights : {static_cast<const double*>(nullptr), static_cast<const double*>(w.data())}) {
        const Eigen::MatrixXd reference =
            weights ? reference_scatter(*expected_data[v], w) : reference_scatter(*expected_data[v]);
        const double scale = reference.cwiseAbs().maxCoeff();
        for (Precision precision : {Precision::float64, Precision::mixed}) {
          const double tol = (precision == Precision::mixed ? 1e-5 : 1e-12) * scale;
          Eigen::MatrixXd blas_scatter;
          for (const char* name : {"blas", "generic", "avx2", "avx512"}) {
            const ForcedKernel forced(name);
            ReduceOptions options;
            options.precision = precision;
            options.threads = 2;
            options.block_rows = 256;
            const Moments m = reduce_chunk(views[v], weights, x.row(0).leftCols(n).transpose(), options);
            CHECK_CLOSE(m.scatter, reference, tol);
            CHECK(m.scatter == m.scatter.transpose());
            if (std::string(name) == "blas") blas_scatter = m.scatter;
            else CHECK_CLOSE(m.scatter, blas_scatter, tol);
          }
        }
      }
    }
  }
}

TEST(narrow_kernel_dispatch_keeps_blas_for_wide_blocks) {
  unsetenv("DESCRAMBLE_PRODUCT_KERNEL");  // the automatic choice, whatever the caller's environment says
  // The fastest kernel this CPU runs takes n up to its crossover, the BLAS the rest.
  const ProductKernel best = detail::runnable(ProductKernel::avx512);
  for (bool single : {false, true}) {
    if (best == ProductKernel::generic) break;
    CHECK(detail::choose_product_kernel(detail::narrow_crossover(best, single), single) == best);
    CHECK(detail::choose_product_kernel(detail::narrow_crossover(best, single) + 1, single) == ProductKernel::blas);
  }
  const ProductKernel narrow = detail::choose_product_kernel(128, false);
  CHECK(narrow == (detail::cpu_has_avx512()     ? ProductKernel::avx512
                   : detail::cpu_has_avx2_fma() ? ProductKernel::avx2
                                                : ProductKernel::blas));
  const ForcedKernel forced("generic");
  CHECK(detail::choose_product_kernel(4096, false) == ProductKernel::generic);
}
