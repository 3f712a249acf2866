#include "rank_update.hpp"

#include <mutex>

#include <Eigen/Core>

#ifdef DESCRAMBLE_HAVE_OPENBLAS
#include <cblas.h>
// The scipy-openblas32 package prefixes every symbol with `scipy_`.
#define DESCRAMBLE_BLAS(name) scipy_##name
#endif

namespace descramble::detail {
namespace {

#ifdef DESCRAMBLE_HAVE_OPENBLAS
// For a row-major block A (rows x cols, ld), A^T A is the product B B^T of the
// column-major cols x rows matrix B with the same memory: NoTrans.
// For a column-major block, A^T A with A as stored: Trans.
template <class T, class Syrk>
void syrk(Syrk f, const DenseBlock<T>& a, T beta, T* c, Index ldc) {
  const auto trans = a.row_major ? CblasNoTrans : CblasTrans;
  f(CblasColMajor, CblasLower, trans, static_cast<blasint>(a.cols), static_cast<blasint>(a.rows), T(1), a.data,
    static_cast<blasint>(a.ld), beta, c, static_cast<blasint>(ldc));
}
#else
template <class T>
void eigen_rank_update(const DenseBlock<T>& a, T beta, T* c, Index ldc) {
  using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;
  Eigen::Map<Matrix, 0, Eigen::OuterStride<>> out(c, a.cols, a.cols, Eigen::OuterStride<>(ldc));
  if (beta == T(0)) out.template triangularView<Eigen::Lower>().setZero();
  if (a.row_major) {
    using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>> m(a.data, a.rows, a.cols, Eigen::OuterStride<>(a.ld));
    out.template selfadjointView<Eigen::Lower>().rankUpdate(m.transpose());
  } else {
    Eigen::Map<const Matrix, 0, Eigen::OuterStride<>> m(a.data, a.rows, a.cols, Eigen::OuterStride<>(a.ld));
    out.template selfadjointView<Eigen::Lower>().rankUpdate(m.transpose());
  }
}
#endif

}  // namespace

void rank_update(const DenseBlock<double>& a, double* c, Index ldc) {
  if (a.rows == 0) return;
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  syrk(DESCRAMBLE_BLAS(cblas_dsyrk), a, 1.0, c, ldc);
#else
  eigen_rank_update(a, 1.0, c, ldc);
#endif
}

void rank_update(const DenseBlock<float>& a, float* c, Index ldc) {
  if (a.rows == 0) return;
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  syrk(DESCRAMBLE_BLAS(cblas_ssyrk), a, 1.0f, c, ldc);
#else
  eigen_rank_update(a, 1.0f, c, ldc);
#endif
}

void rank_update_overwrite(const DenseBlock<float>& a, float* c, Index ldc) {
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  syrk(DESCRAMBLE_BLAS(cblas_ssyrk), a, 0.0f, c, ldc);
#else
  eigen_rank_update(a, 0.0f, c, ldc);
#endif
}

void use_single_threaded_blas() {
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  static std::once_flag once;
  std::call_once(once, [] { DESCRAMBLE_BLAS(openblas_set_num_threads)(1); });
#endif
}

const char* rank_update_backend() {
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  return DESCRAMBLE_BLAS(openblas_get_config)();
#else
  return "eigen";
#endif
}

}  // namespace descramble::detail
