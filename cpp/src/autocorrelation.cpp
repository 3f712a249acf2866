#include "descramble/autocorrelation.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <utility>

namespace descramble {
namespace {

void check_moments(const Moments& m) {
  const Index n = m.mean.size();
  if (n < 1) throw std::invalid_argument("moments: need at least one feature");
  if (m.shift.size() != n || m.scatter.rows() != n || m.scatter.cols() != n) {
    throw std::invalid_argument("moments: shift, mean and scatter sizes disagree");
  }
  if (m.count < 0 || !(m.weight >= 0.0) || !std::isfinite(m.weight)) {
    throw std::invalid_argument("moments: count and weight must be non-negative and finite");
  }
  if (!m.shift.allFinite() || !m.mean.allFinite() || !m.scatter.allFinite()) {
    throw std::invalid_argument("moments: shift, mean and scatter must be finite");
  }
  if (m.scatter != m.scatter.transpose()) {
    throw std::invalid_argument("moments: scatter must be symmetric");
  }
}

}  // namespace

Autocorrelation::Autocorrelation(Index n_features, ReduceOptions options)
    : n_features_(n_features), options_(options) {
  if (n_features < 1) {
    throw std::invalid_argument("n_features: expected a positive integer, got " +
                                std::to_string(n_features));
  }
  check_feature_count(n_features);  // before allocating anything of size n x n
  state_ = Moments(n_features);
}

Autocorrelation::Autocorrelation(Moments moments, ReduceOptions options)
    : n_features_(moments.mean.size()), options_(options) {
  check_moments(moments);
  state_ = std::move(moments);
}

Autocorrelation::Autocorrelation(const Autocorrelation& other) : n_features_(other.n_features_) {
  // Options and state are read together under the source's lock (set_options
  // and commit write them under it).
  std::lock_guard<std::mutex> lock(other.mutex_);
  options_ = other.options_;
  state_ = other.state_;
}

Autocorrelation& Autocorrelation::operator=(const Autocorrelation& other) {
  if (this == &other) return *this;
  // Both locks at once, in an order std::scoped_lock makes deadlock-free (a = b
  // and b = a may run concurrently).
  std::scoped_lock lock(mutex_, other.mutex_);
  n_features_ = other.n_features_;
  options_ = other.options_;
  state_ = other.state_;
  return *this;
}

ReduceOptions Autocorrelation::options() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return options_;
}

std::int64_t Autocorrelation::count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.count;
}

double Autocorrelation::weight_sum() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.weight;
}

Eigen::VectorXd Autocorrelation::mean() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.absolute_mean();
}

Eigen::MatrixXd Autocorrelation::scatter() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_.scatter;
}

Moments Autocorrelation::moments() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_;
}

Eigen::MatrixXd Autocorrelation::autocorrelation() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const double w = state_.weight;
  if (!(w > 0.0)) {
    throw std::domain_error("autocorrelation: no samples with positive weight have been accumulated");
  }
  // E[x x^T] = scatter / W + m m^T, with m the absolute mean (docs/math.md §1).
  const Eigen::VectorXd m = state_.shift + state_.mean;
  Eigen::MatrixXd result = state_.scatter / w;
  result.noalias() += m * m.transpose();
  return result;
}

Eigen::MatrixXd Autocorrelation::covariance(double ddof) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const double fact = state_.weight - ddof;
  if (!(fact > 0.0)) {
    throw std::domain_error("ddof: the weight sum (" + std::to_string(state_.weight) +
                            ") minus ddof (" + std::to_string(ddof) + ") must be positive");
  }
  return state_.scatter / fact;
}

void Autocorrelation::set_options(const ReduceOptions& options) {
  std::lock_guard<std::mutex> lock(mutex_);
  options_ = options;
}

void Autocorrelation::update(const ChunkView& chunk, const double* weights) {
  if (chunk.cols != n_features_) {
    throw std::invalid_argument("chunk: expected " + std::to_string(n_features_) +
                                " columns (n_features), got " + std::to_string(chunk.cols));
  }
  if (chunk.rows < 0) throw std::invalid_argument("chunk: negative number of rows");
  if (chunk.rows == 0) return;
  Eigen::VectorXd origin;
  ReduceOptions options;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    options = options_;
    if (state_.weight > 0.0) origin = state_.shift;
  }
  // A fresh accumulator measures everything from the chunk's first row, so
  // data with a large common offset are centred exactly (docs/math.md §7).
  if (origin.size() == 0) origin = read_row(chunk, 0);
  if (!origin.allFinite()) origin.setZero();  // reduce_chunk reports row 0 precisely
  commit(reduce_chunk(chunk, weights, origin, options));  // no lock held while reducing
}

void Autocorrelation::merge(const Autocorrelation& other) {
  if (other.n_features_ != n_features_) {
    throw std::invalid_argument("other: expected an accumulator of " + std::to_string(n_features_) +
                                " features, got " + std::to_string(other.n_features_));
  }
  commit(other.moments());  // snapshot first: merging with itself cannot deadlock
}

void Autocorrelation::commit(const Moments& part) {
  std::lock_guard<std::mutex> lock(mutex_);
  Moments merged = state_;
  merged.merge(part);
  if (!merged.scatter.allFinite() || !merged.mean.allFinite() || !std::isfinite(merged.weight)) {
    throw std::overflow_error("chunk: accumulated sums overflow float64; rescale the data");
  }
  state_ = std::move(merged);  // only a complete, finite result replaces the state
}

}  // namespace descramble
