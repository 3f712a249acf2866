// The hot product of the core: C(lower) += A^T A for a block A of rows, in
// float64 or float32, through an optimised BLAS (syrk) when the core was
// built with one (DESCRAMBLE_HAVE_OPENBLAS), through Eigen otherwise.
#pragma once

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
void rank_update(const DenseBlock<float>& a, float* c, Index ldc);

/// lower(C) = A^T A (beta = 0), C column-major float, n x n.
void rank_update_overwrite(const DenseBlock<float>& a, float* c, Index ldc);

/// Makes the BLAS run each call on the calling thread only (once per
/// process): the core parallelises over blocks of rows itself, and a threaded
/// BLAS called from several workers at once would oversubscribe the cores.
/// The BLAS instance is the core's own (scipy-openblas32), not NumPy's.
void use_single_threaded_blas();

/// "openblas <version/config>" or "eigen".
const char* rank_update_backend();

}  // namespace descramble::detail
