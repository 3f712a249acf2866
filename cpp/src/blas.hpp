// The core's dense kernels behind an optimised BLAS/LAPACK (scipy-openblas32)
// when the core was built with one (DESCRAMBLE_HAVE_OPENBLAS), Eigen otherwise.
#pragma once

#include <mutex>

#include <Eigen/Core>

#include "descramble/chunk.hpp"

namespace descramble::detail {

/// A dense block of `rows` x `cols` values, row-major (leading dimension
/// `ld` >= cols) or column-major (ld >= rows).
template <class T>
struct DenseBlock {
  const T* data;
  Index rows;
  Index cols;
  Index ld;
  bool row_major;
};

/// lower(C) += A^T A, with C column-major n x n (n = A.cols, leading dimension ldc).
/// The strict upper triangle of C is not touched.
void rank_update(const DenseBlock<double>& a, double* c, Index ldc);

/// lower(C) = A^T A (beta = 0), C column-major float, n x n.
void rank_update_overwrite(const DenseBlock<float>& a, float* c, Index ldc);

/// C = op(A) op(B), column-major.
void gemm(bool transpose_a, bool transpose_b, const Eigen::Ref<const Eigen::MatrixXd>& a,
          const Eigen::Ref<const Eigen::MatrixXd>& b, Eigen::Ref<Eigen::MatrixXd> c);

/// Symmetric eigendecomposition of `a` (lower triangle read), ascending
/// eigenvalues; `a` is overwritten by the eigenvectors. Returns false if the
/// algorithm did not converge.
bool symmetric_eigen(Eigen::MatrixXd& a, Eigen::VectorXd& values);

/// Thin (or full) SVD: a = u diag(s) vt. `a` is destroyed. Returns false if
/// the algorithm did not converge.
bool singular_value_decomposition(Eigen::MatrixXd& a, bool full_matrices, Eigen::MatrixXd& u, Eigen::VectorXd& s,
                                  Eigen::MatrixXd& vt);

/// Serialises the core's BLAS use and sets how many threads each call may
/// use for the scope: 1 where the core parallelises over blocks itself, every
/// core for LAPACK factorizations. The BLAS instance is the core's own, not NumPy's.
class BlasScope {
 public:
  explicit BlasScope(int threads);
  ~BlasScope() = default;
  BlasScope(const BlasScope&) = delete;
  BlasScope& operator=(const BlasScope&) = delete;

 private:
  std::unique_lock<std::mutex> lock_;
};

/// "OpenBLAS <config>" or "eigen".
const char* backend();

/// Threads to use for `requested` (0: every hardware thread).
int resolve_threads(int requested);

}  // namespace descramble::detail
