#include "descramble/moments.hpp"

#include <limits>
#include <stdexcept>
#include <string>

namespace descramble {

Moments::Moments(Index n, const Eigen::Ref<const Eigen::VectorXd>& origin)
    : shift(origin), mean(Eigen::VectorXd::Zero(n)), scatter(Eigen::MatrixXd::Zero(n, n)) {
  if (origin.size() != n) {
    throw std::invalid_argument("shift: expected " + std::to_string(n) + " entries, got " +
                                std::to_string(origin.size()));
  }
}

Moments::Moments(Index n) : Moments(n, Eigen::VectorXd::Zero(n)) {}

Eigen::VectorXd Moments::absolute_mean() const {
  if (weight > 0.0) return shift + mean;
  return Eigen::VectorXd::Constant(n_features(), std::numeric_limits<double>::quiet_NaN());
}

void Moments::merge(const Moments& other) {
  if (other.n_features() != n_features()) {
    throw std::invalid_argument("other: expected " + std::to_string(n_features()) +
                                " features, got " + std::to_string(other.n_features()));
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
