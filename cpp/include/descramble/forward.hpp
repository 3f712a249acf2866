// One pass over the data through a stack of dense layers, accumulating the
// input's and every layer's pre- and post-activation second moments
// (docs/math.md §1: the hidden autocorrelations of non-linear layers).
#pragma once

#include <string>
#include <vector>

#include <Eigen/Core>

#include "descramble/autocorrelation.hpp"
#include "descramble/chunk.hpp"
#include "descramble/reduce.hpp"

namespace descramble {

enum class Activation { identity, relu, tanh, sigmoid };

/// Parses "identity", "relu", "tanh" or "sigmoid"; throws std::invalid_argument otherwise.
Activation parse_activation(const std::string& name);

/// y = activation(W x + b): W is (outputs x inputs), b has `outputs` entries.
struct DenseLayer {
  Eigen::MatrixXd weights;
  Eigen::VectorXd bias;
  Activation activation = Activation::identity;
};

/// Streams chunks of input rows through the layers (forward pass in float64,
/// one block of rows at a time) and accumulates the moments of the input
/// and of every layer's pre-activation (W x + b) and post-activation.
/// A chunk that fails anywhere (bad values, overflow) changes nothing.
class HiddenStatistics {
 public:
  /// Throws std::invalid_argument naming the layer whose shapes do not chain.
  explicit HiddenStatistics(std::vector<DenseLayer> layers, ReduceOptions options = {});

  /// Throws NonFiniteError naming the row of `chunk`: for a non-finite input
  /// its column; for a finite row that overflows in a layer (W x + b beyond
  /// float64) column -1 and a detail naming the layer. Sums that overflow
  /// are a std::overflow_error naming the layer.
  void update(const ChunkView& chunk);

  std::size_t layers() const noexcept { return layers_.size(); }
  const Autocorrelation& input() const noexcept { return input_; }
  const Autocorrelation& pre(std::size_t layer) const { return pre_.at(layer); }
  const Autocorrelation& post(std::size_t layer) const { return post_.at(layer); }

 private:
  std::vector<DenseLayer> layers_;
  ReduceOptions options_;
  Autocorrelation input_;
  std::vector<Autocorrelation> pre_;
  std::vector<Autocorrelation> post_;
};

}  // namespace descramble
