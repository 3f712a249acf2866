#include "blas.hpp"

#include <algorithm>
#include <thread>

#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#ifdef DESCRAMBLE_HAVE_OPENBLAS
#include <cblas.h>
#include <lapacke.h>
// The scipy-openblas32 package prefixes every symbol with `scipy_`.
#define DESCRAMBLE_BLAS(name) scipy_##name
#endif

namespace descramble::detail {
namespace {

std::mutex& blas_mutex() {
  static std::mutex mutex;
  return mutex;
}

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

int resolve_threads(int requested) {
  return requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

BlasScope::BlasScope(int threads) : lock_(blas_mutex()) {
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  static int current = -1;  // guarded by blas_mutex()
  const int wanted = resolve_threads(threads);
  if (wanted != current) {
    DESCRAMBLE_BLAS(openblas_set_num_threads)(wanted);
    current = wanted;
  }
#else
  (void)threads;
#endif
}

void rank_update(const DenseBlock<double>& a, double* c, Index ldc) {
  if (a.rows == 0) return;
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  syrk(DESCRAMBLE_BLAS(cblas_dsyrk), a, 1.0, c, ldc);
#else
  eigen_rank_update(a, 1.0, c, ldc);
#endif
}

void rank_update_overwrite(const DenseBlock<float>& a, float* c, Index ldc) {
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  syrk(DESCRAMBLE_BLAS(cblas_ssyrk), a, 0.0f, c, ldc);
#else
  eigen_rank_update(a, 0.0f, c, ldc);
#endif
}

void gemm(bool transpose_a, bool transpose_b, const Eigen::Ref<const Eigen::MatrixXd>& a,
          const Eigen::Ref<const Eigen::MatrixXd>& b, Eigen::Ref<Eigen::MatrixXd> c) {
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  const Index m = transpose_a ? a.cols() : a.rows();
  const Index k = transpose_a ? a.rows() : a.cols();
  const Index n = transpose_b ? b.rows() : b.cols();
  DESCRAMBLE_BLAS(cblas_dgemm)(CblasColMajor, transpose_a ? CblasTrans : CblasNoTrans,
                               transpose_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m),
                               static_cast<blasint>(n), static_cast<blasint>(k), 1.0, a.data(),
                               static_cast<blasint>(a.outerStride()), b.data(), static_cast<blasint>(b.outerStride()),
                               0.0, c.data(), static_cast<blasint>(c.outerStride()));
#else
  if (transpose_a && transpose_b) c.noalias() = a.transpose() * b.transpose();
  else if (transpose_a) c.noalias() = a.transpose() * b;
  else if (transpose_b) c.noalias() = a * b.transpose();
  else c.noalias() = a * b;
#endif
}

bool symmetric_eigen(Eigen::MatrixXd& a, Eigen::VectorXd& values) {
  const Index n = a.rows();
  values.resize(n);
  if (n == 0) return true;
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  const lapack_int info = DESCRAMBLE_BLAS(LAPACKE_dsyevd)(LAPACK_COL_MAJOR, 'V', 'L', static_cast<lapack_int>(n),
                                                          a.data(), static_cast<lapack_int>(n), values.data());
  return info == 0;
#else
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> solver(a);
  if (solver.info() != Eigen::Success) return false;
  values = solver.eigenvalues();
  a = solver.eigenvectors();
  return true;
#endif
}

bool singular_value_decomposition(Eigen::MatrixXd& a, bool full_matrices, Eigen::MatrixXd& u, Eigen::VectorXd& s,
                                  Eigen::MatrixXd& vt) {
  const Index m = a.rows();
  const Index n = a.cols();
  const Index k = std::min(m, n);
  u.resize(m, full_matrices ? m : k);
  vt.resize(full_matrices ? n : k, n);
  s.resize(k);
  if (k == 0) {
    u.setIdentity();
    vt.setIdentity();
    return true;
  }
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  const lapack_int info = DESCRAMBLE_BLAS(LAPACKE_dgesdd)(
      LAPACK_COL_MAJOR, full_matrices ? 'A' : 'S', static_cast<lapack_int>(m), static_cast<lapack_int>(n), a.data(),
      static_cast<lapack_int>(m), s.data(), u.data(), static_cast<lapack_int>(m), vt.data(),
      static_cast<lapack_int>(vt.rows()));
  return info == 0;
#else
  Eigen::BDCSVD<Eigen::MatrixXd> svd(a, full_matrices ? (Eigen::ComputeFullU | Eigen::ComputeFullV)
                                                      : (Eigen::ComputeThinU | Eigen::ComputeThinV));
  if (svd.info() != Eigen::Success) return false;
  u = svd.matrixU();
  s = svd.singularValues();
  vt = svd.matrixV().transpose();
  return true;
#endif
}

const char* backend() {
#ifdef DESCRAMBLE_HAVE_OPENBLAS
  return DESCRAMBLE_BLAS(openblas_get_config)();
#else
  return "eigen";
#endif
}

}  // namespace descramble::detail
