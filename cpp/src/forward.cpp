#include "descramble/forward.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <utility>

#include "blas.hpp"
#include "descramble/errors.hpp"

namespace descramble {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void activate(RowMatrix& z, Activation activation) {
  switch (activation) {
    case Activation::identity: return;
    case Activation::relu: z = z.cwiseMax(0.0); return;
    case Activation::tanh: z = z.array().tanh(); return;
    case Activation::sigmoid: z = (1.0 + (-z.array()).exp()).inverse(); return;
  }
}

std::vector<Autocorrelation> accumulators(const std::vector<DenseLayer>& layers, const ReduceOptions& options) {
  std::vector<Autocorrelation> out;
  out.reserve(layers.size());
  for (const auto& layer : layers) out.emplace_back(layer.weights.rows(), options);
  return out;
}

// Adds a layer's pre-activations or outputs for rows r0, r0 + 1, ... of the
// chunk. Their errors name the row of the chunk (not of the 4096-row block)
// and the layer: the data row itself is finite (it passed the input
// accumulator), so no column of it is at fault.
void add_layer_rows(Autocorrelation& acc, const RowMatrix& z, Index r0, std::size_t layer, const char* what) {
  const std::string where = "layers[" + std::to_string(layer) + "] " + what;
  try {
    acc.update(ChunkView::row_major(z.data(), z.rows(), z.cols()));
  } catch (const NonFiniteError& e) {
    const std::string unit = e.column() >= 0 ? " of unit " + std::to_string(e.column()) : "";
    throw NonFiniteError("chunk", r0 + e.row(), -1,
                         "overflows float64 in " + where + ": the value" + unit +
                             (e.column() >= 0 ? " is not finite" : " overflows once centred") +
                             "; rescale the weights or the data");
  } catch (const std::overflow_error& e) {
    std::string message = e.what();
    const std::string prefix = "chunk: ";
    if (message.compare(0, prefix.size(), prefix) == 0) message.erase(0, prefix.size());
    throw std::overflow_error("chunk: " + where + ": " + message);
  }
}

}  // namespace

Activation parse_activation(const std::string& name) {
  if (name == "identity" || name == "linear") return Activation::identity;
  if (name == "relu") return Activation::relu;
  if (name == "tanh") return Activation::tanh;
  if (name == "sigmoid") return Activation::sigmoid;
  throw std::invalid_argument("activation: expected 'identity', 'relu', 'tanh' or 'sigmoid', got '" + name + "'");
}

HiddenStatistics::HiddenStatistics(std::vector<DenseLayer> layers, ReduceOptions options)
    : layers_(std::move(layers)),
      options_(options),
      input_(layers_.empty() ? 1 : layers_.front().weights.cols(), options) {
  if (layers_.empty()) throw std::invalid_argument("layers: expected at least one layer");
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const auto& layer = layers_[i];
    const std::string name = "layers[" + std::to_string(i) + "]";
    if (layer.weights.rows() < 1 || layer.weights.cols() < 1) throw std::invalid_argument(name + ": empty weights");
    if (layer.bias.size() != layer.weights.rows()) {
      throw std::invalid_argument(name + ": the bias has " + std::to_string(layer.bias.size()) +
                                  " entries, the weights " + std::to_string(layer.weights.rows()) + " rows");
    }
    if (i > 0 && layer.weights.cols() != layers_[i - 1].weights.rows()) {
      throw std::invalid_argument(name + ": the weights have " + std::to_string(layer.weights.cols()) +
                                  " columns, the previous layer has " +
                                  std::to_string(layers_[i - 1].weights.rows()) + " outputs");
    }
    if (!layer.weights.allFinite() || !layer.bias.allFinite()) {
      throw std::invalid_argument(name + ": contains NaN or infinity");
    }
  }
  pre_ = accumulators(layers_, options_);
  post_ = accumulators(layers_, options_);
}

void HiddenStatistics::update(const ChunkView& chunk) {
  if (chunk.cols != input_.n_features()) {
    throw std::invalid_argument("chunk: expected " + std::to_string(input_.n_features()) +
                                " columns (the first layer's inputs), got " + std::to_string(chunk.cols));
  }
  // Everything goes into fresh accumulators first; only a chunk that passed
  // through every layer is merged into the running ones.
  Autocorrelation input(input_.n_features(), options_);
  std::vector<Autocorrelation> pre = accumulators(layers_, options_);
  std::vector<Autocorrelation> post = accumulators(layers_, options_);
  input.update(chunk);
  const Index block = 4096;
  for (Index r0 = 0; r0 < chunk.rows; r0 += block) {
    const Index nb = std::min(block, chunk.rows - r0);
    RowMatrix x(nb, chunk.cols);
    copy_rows(chunk, r0, nb, x.data());
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      const DenseLayer& layer = layers_[l];
      RowMatrix z(nb, layer.weights.rows());
      {
        // z^T = W x^T (column-major views of the row-major blocks).
        const detail::BlasScope blas(options_.threads);
        Eigen::Map<Eigen::MatrixXd> zt(z.data(), z.cols(), z.rows());
        const Eigen::Map<const Eigen::MatrixXd> xt(x.data(), x.cols(), x.rows());
        detail::gemm(false, false, layer.weights, xt, zt);
      }
      z.rowwise() += layer.bias.transpose();
      add_layer_rows(pre[l], z, r0, l, "pre-activation");
      activate(z, layer.activation);
      add_layer_rows(post[l], z, r0, l, "output");
      x = std::move(z);
    }
  }
  input_.merge(input);
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    pre_[l].merge(pre[l]);
    post_[l].merge(post[l]);
  }
}

}  // namespace descramble
