#include "descramble/moments.hpp"

#include <cstdio>
#include <limits>
#include <stdexcept>
#include <string>

#if defined(__unix__) || defined(__APPLE__)
#include <unistd.h>
#endif

namespace descramble {

double physical_memory_bytes() noexcept {
#if defined(_SC_PHYS_PAGES) && defined(_SC_PAGE_SIZE)
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGE_SIZE);
  if (pages > 0 && page_size > 0) return static_cast<double>(pages) * static_cast<double>(page_size);
#endif
  return 1099511627776.0;  // 2^40 bytes (1 TiB) where the machine cannot tell
}

Index check_feature_count(Index n) {
  if (n < 0) throw std::invalid_argument("n_features: expected a non-negative integer, got " + std::to_string(n));
  // In double: n * n * 8 cannot overflow (n < 2^63 gives at most 2^129).
  const double bytes = 8.0 * static_cast<double>(n) * static_cast<double>(n);
  const double limit = physical_memory_bytes();
  if (bytes > limit) {
    char message[256];
    std::snprintf(message, sizeof message,
                  "n_features: %lld features need an N x N float64 state of %.3g GiB; more than this machine's "
                  "%.3g GiB of physical memory",
                  static_cast<long long>(n), bytes / 1073741824.0, limit / 1073741824.0);
    throw std::invalid_argument(message);
  }
  return n;
}

Moments::Moments(Index n, const Eigen::Ref<const Eigen::VectorXd>& origin)
    : shift(origin), mean(Eigen::VectorXd::Zero(check_feature_count(n))), scatter(Eigen::MatrixXd::Zero(n, n)) {
  if (origin.size() != n) {
    throw std::invalid_argument("shift: expected " + std::to_string(n) + " entries, got " +
                                std::to_string(origin.size()));
  }
}

Moments::Moments(Index n) : Moments(n, Eigen::VectorXd::Zero(check_feature_count(n))) {}

Eigen::VectorXd Moments::absolute_mean() const {
  if (weight > 0.0) return shift + mean;
  return Eigen::VectorXd::Constant(n_features(), std::numeric_limits<double>::quiet_NaN());
}

void Moments::merge(const Moments& other) {
  if (other.n_features() != n_features()) {
    throw std::invalid_argument("other: expected " + std::to_string(n_features()) +
                                " features, got " + std::to_string(other.n_features()));
  }
  if (other.count < 0 || count < 0 || other.count > std::numeric_limits<std::int64_t>::max() - count) {
    // Checked before anything changes: a wrapped count would corrupt the state
    // (and a checkpoint of it could not be loaded again).
    throw std::overflow_error("count: " + std::to_string(count) + " + " + std::to_string(other.count) +
                              " rows exceed the largest row count (2^63 - 1); the accumulator is unchanged");
  }
  const std::int64_t total_count = count + other.count;
  if (other.weight == 0.0) {  // rows of zero weight only: nothing but the count changes
    count = total_count;
    return;
  }
  if (weight == 0.0) {  // nothing of ours carries weight: take the other's statistics whole
    *this = other;
    count = total_count;
    return;
  }
  // Chan, Golub & LeVeque: with d the difference of the means,
  //   M2 = M2_a + M2_b + (W_a W_b / W) d d^T,   mean = mean_a + (W_b / W) d.
  // The other's mean is first moved to our origin; both origins are data
  // points, so their difference is small where the data share an offset.
  const double total = weight + other.weight;
  const Eigen::VectorXd delta = (other.mean + (other.shift - shift)) - mean;
  scatter += other.scatter;
  scatter.selfadjointView<Eigen::Lower>().rankUpdate(delta, weight * other.weight / total);
  scatter.triangularView<Eigen::StrictlyUpper>() = scatter.transpose();  // exactly symmetric
  mean += (other.weight / total) * delta;
  weight = total;
  count = total_count;
}

}  // namespace descramble
