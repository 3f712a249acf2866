// Argument checks shared by the core's translation units (internal header).
#pragma once

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include <Eigen/Core>

namespace descramble {
namespace detail {

/// "rows x cols", for error messages.
inline std::string shape(const Eigen::Ref<const Eigen::MatrixXd>& a) {
  return std::to_string(a.rows()) + " x " + std::to_string(a.cols());
}

inline void check_finite(const Eigen::Ref<const Eigen::MatrixXd>& a, const char* name) {
  if (!a.allFinite()) throw std::invalid_argument(std::string(name) + ": contains NaN or infinity");
}

inline double max_abs(const Eigen::Ref<const Eigen::MatrixXd>& a) { return a.size() ? a.cwiseAbs().maxCoeff() : 0.0; }

/// A square, finite matrix symmetric to `rtol` of its largest entry, symmetrised.
inline Eigen::MatrixXd as_symmetric(const Eigen::Ref<const Eigen::MatrixXd>& a, const char* name, double rtol) {
  if (a.rows() != a.cols()) {
    throw std::invalid_argument(std::string(name) + ": expected a square matrix, got " + shape(a));
  }
  if (a.rows() < 1) throw std::invalid_argument(std::string(name) + ": expected at least a 1 x 1 matrix, got 0 x 0");
  check_finite(a, name);
  const double scale = std::max(max_abs(a), std::numeric_limits<double>::min());
  if (max_abs(a - a.transpose()) > rtol * scale) {
    throw std::invalid_argument(std::string(name) + ": expected a symmetric matrix");
  }
  return 0.5 * a + 0.5 * a.transpose();  // not (a + a^T) / 2, which overflows near the float64 limit
}

}  // namespace detail
}  // namespace descramble
