// Spectral kernels: symmetric eigendecomposition and SVD (full, and a
// randomised truncated SVD for large matrices), LAPACK-backed (dsyevd,
// dgesdd) when the core has LAPACK, Eigen otherwise (docs/math.md §3).
//
// Sign convention (deterministic results): every eigenvector, and every left
// singular vector, has its largest-magnitude entry positive (the first such
// entry on ties); the matching right singular vector follows its sign.
#pragma once

#include <cstdint>

#include <Eigen/Core>

#include "descramble/chunk.hpp"

namespace descramble {

/// a = vectors * diag(values) * vectors^T with `values` ascending.
struct EighResult {
  Eigen::VectorXd values;
  Eigen::MatrixXd vectors;
};

/// a = u * diag(s) * vt with `s` descending.
struct SvdResult {
  Eigen::MatrixXd u;
  Eigen::VectorXd s;
  Eigen::MatrixXd vt;
};

/// Eigendecomposition of the symmetric matrix `a` (its lower triangle is
/// read). `threads`: 0 for automatic (one thread below about 384^3 flops,
/// where threads cost more than they save, every core above). Throws std::invalid_argument for a
/// non-square or non-finite matrix, std::runtime_error if LAPACK fails.
EighResult eigh(const Eigen::Ref<const Eigen::MatrixXd>& a, int threads = 0);

/// Singular value decomposition; thin (u: m x k, vt: k x n, k = min(m, n))
/// unless `full_matrices`. `threads` as for eigh (the size is
/// max(m, n) min(m, n)^2).
SvdResult svd(const Eigen::Ref<const Eigen::MatrixXd>& a, bool full_matrices = false, int threads = 0);

/// The leading `k` singular triplets by randomised subspace iteration
/// (Halko, Martinsson & Tropp 2011, algorithm 4.4): a Gaussian test matrix of
/// k + oversampling columns drawn from `seed`, `power_iterations` rounds of
/// re-orthonormalised power iteration, then an exact SVD of the small
/// projected matrix. Deterministic for a given seed.
SvdResult truncated_svd(const Eigen::Ref<const Eigen::MatrixXd>& a, Index k, std::uint64_t seed,
                        Index oversampling = 10, int power_iterations = 4, int threads = 0);

/// Applies the sign convention: flips columns of `u` (and the matching rows
/// of `vt`, when given) so that each column's largest-magnitude entry is positive.
void canonicalize_signs(Eigen::Ref<Eigen::MatrixXd> u, Eigen::MatrixXd* vt = nullptr);

}  // namespace descramble
