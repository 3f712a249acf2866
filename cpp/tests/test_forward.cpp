// HiddenStatistics (forward.cpp): the input's and every layer's pre- and
// post-activation autocorrelations from one streamed forward pass, checked
// against a direct Eigen forward pass and E[x x^T] = X^T X / N; chunking
// invariance; shape, activation and non-finite errors leave no trace.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "check.hpp"
#include "descramble/autocorrelation.hpp"
#include "descramble/forward.hpp"
#include "reference.hpp"

using namespace descramble;
using namespace descramble::testing;

namespace {

DenseLayer dense(Index outputs, Index inputs, unsigned seed, Activation activation, double scale = 1.0) {
  DenseLayer layer;
  layer.weights = random_matrix(outputs, inputs, seed) * (scale / std::sqrt(static_cast<double>(inputs)));
  layer.bias = Eigen::VectorXd::LinSpaced(outputs, -0.5, 0.7);
  layer.activation = activation;
  return layer;
}

Eigen::MatrixXd apply(const Eigen::MatrixXd& z, Activation activation) {
  switch (activation) {
    case Activation::identity: return z;
    case Activation::relu: return z.cwiseMax(0.0);
    case Activation::tanh: return z.array().tanh().matrix();
    case Activation::sigmoid: return (1.0 / (1.0 + (-z.array()).exp())).matrix();
  }
  return z;
}

Eigen::MatrixXd second_moment(const Eigen::MatrixXd& x) {
  return x.transpose() * x / static_cast<double>(x.rows());
}

double relative(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return INFINITY;
  return (a - b).cwiseAbs().maxCoeff() / std::max(1.0, b.cwiseAbs().maxCoeff());
}

// Every accumulator's moments, exactly.
bool same_moments(const Moments& a, const Moments& b) {
  return a.count == b.count && a.weight == b.weight && a.shift == b.shift &&
         ((a.mean.array() == b.mean.array()) || (a.mean.array().isNaN() && b.mean.array().isNaN())).all() &&
         a.scatter == b.scatter;
}

bool same_state(const HiddenStatistics& a, const HiddenStatistics& b) {
  if (a.layers() != b.layers() || !same_moments(a.input().moments(), b.input().moments())) return false;
  for (std::size_t l = 0; l < a.layers(); ++l) {
    if (!same_moments(a.pre(l).moments(), b.pre(l).moments())) return false;
    if (!same_moments(a.post(l).moments(), b.post(l).moments())) return false;
  }
  return true;
}

std::vector<DenseLayer> two_layers(Activation first, Activation second) {
  return {dense(7, 5, 11, first), dense(4, 7, 12, second)};
}

}  // namespace

TEST(forward_parse_activation) {
  CHECK(parse_activation("identity") == Activation::identity);
  CHECK(parse_activation("linear") == Activation::identity);
  CHECK(parse_activation("relu") == Activation::relu);
  CHECK(parse_activation("tanh") == Activation::tanh);
  CHECK(parse_activation("sigmoid") == Activation::sigmoid);
  CHECK_THROWS_WITH(parse_activation("gelu"), std::invalid_argument, "got 'gelu'");
  CHECK_THROWS_WITH(parse_activation("ReLU"), std::invalid_argument, "expected 'identity'");
  CHECK_THROWS_WITH(parse_activation(""), std::invalid_argument, "activation:");
}

TEST(forward_two_layers_match_a_direct_forward_pass) {
  const Activation all[] = {Activation::identity, Activation::relu, Activation::tanh, Activation::sigmoid};
  const RowMatrix x = random_matrix(5000, 5, 21, 0.3);  // more than one 4096-row block
  for (const Activation first : all) {
    for (const Activation second : all) {
      const auto layers = two_layers(first, second);
      HiddenStatistics stats(layers);
      stats.update(ChunkView::row_major(x.data(), x.rows(), x.cols()));
      CHECK(stats.layers() == 2);

      const Eigen::MatrixXd x0 = x;
      const Eigen::MatrixXd z1 = (x0 * layers[0].weights.transpose()).rowwise() + layers[0].bias.transpose();
      const Eigen::MatrixXd h1 = apply(z1, first);
      const Eigen::MatrixXd z2 = (h1 * layers[1].weights.transpose()).rowwise() + layers[1].bias.transpose();
      const Eigen::MatrixXd h2 = apply(z2, second);

      CHECK(stats.input().count() == x.rows());
      CHECK(stats.pre(1).count() == x.rows());
      CHECK(relative(stats.input().autocorrelation(), second_moment(x0)) < 1e-12);
      CHECK(relative(stats.pre(0).autocorrelation(), second_moment(z1)) < 1e-12);
      CHECK(relative(stats.post(0).autocorrelation(), second_moment(h1)) < 1e-12);
      CHECK(relative(stats.pre(1).autocorrelation(), second_moment(z2)) < 1e-12);
      CHECK(relative(stats.post(1).autocorrelation(), second_moment(h2)) < 1e-12);
      CHECK(stats.pre(0).n_features() == 7 && stats.post(1).n_features() == 4);
    }
  }
  // The activations did something: relu's post differs from its pre.
  HiddenStatistics relu(two_layers(Activation::relu, Activation::identity));
  relu.update(ChunkView::row_major(x.data(), x.rows(), x.cols()));
  CHECK(relative(relu.post(0).autocorrelation(), relu.pre(0).autocorrelation()) > 1e-3);
  CHECK(relative(relu.post(1).autocorrelation(), relu.pre(1).autocorrelation()) == 0.0);
}

TEST(forward_chunking_does_not_matter) {
  const RowMatrix x = random_matrix(9000, 5, 22, -0.2);
  const auto layers = two_layers(Activation::tanh, Activation::relu);
  HiddenStatistics whole(layers);
  whole.update(ChunkView::row_major(x.data(), x.rows(), x.cols()));
  HiddenStatistics pieces(layers);
  const Index sizes[] = {1, 0, 17, 4095, 4097, 3, 700};  // uneven, across block edges, one empty
  Index r0 = 0;
  for (const Index n : sizes) {
    pieces.update(ChunkView::row_major(x.row(r0).data(), n, x.cols()));
    r0 += n;
  }
  pieces.update(ChunkView::row_major(x.row(r0).data(), x.rows() - r0, x.cols()));
  CHECK(pieces.input().count() == x.rows());
  CHECK(relative(pieces.input().autocorrelation(), whole.input().autocorrelation()) < 1e-12);
  for (std::size_t l = 0; l < 2; ++l) {
    CHECK(pieces.pre(l).count() == whole.pre(l).count());
    CHECK(relative(pieces.pre(l).autocorrelation(), whole.pre(l).autocorrelation()) < 1e-12);
    CHECK(relative(pieces.post(l).autocorrelation(), whole.post(l).autocorrelation()) < 1e-12);
    CHECK(relative(pieces.post(l).scatter(), whole.post(l).scatter()) < 1e-11);
  }
}

TEST(forward_input_equals_a_plain_autocorrelation) {
  const RowMatrix x = random_matrix(3000, 5, 23, 2.0);
  HiddenStatistics stats(two_layers(Activation::sigmoid, Activation::tanh));
  Autocorrelation plain(5);
  // A strided, column-major view (transposed storage) read in place by both.
  const Eigen::MatrixXd xc = x;
  const ChunkView view = ChunkView::of(xc.data(), xc.rows(), xc.cols(), 1, xc.rows());
  stats.update(view);
  plain.update(view);
  CHECK(stats.input().count() == plain.count());
  CHECK(stats.input().weight_sum() == plain.weight_sum());
  CHECK_CLOSE(stats.input().mean(), plain.mean(), 1e-14);
  CHECK_CLOSE(stats.input().scatter(), plain.scatter(), 1e-12 * plain.scatter().cwiseAbs().maxCoeff());
  CHECK_CLOSE(stats.input().autocorrelation(), plain.autocorrelation(), 1e-13);
  CHECK(relative(plain.scatter(), reference_scatter(x)) < 1e-12);
}

TEST(forward_shapes_that_do_not_chain_throw) {
  using L = std::vector<DenseLayer>;
  CHECK_THROWS_WITH(HiddenStatistics(L{}), std::invalid_argument, "at least one layer");
  CHECK_THROWS_WITH(HiddenStatistics(L{dense(7, 5, 1, Activation::relu), dense(4, 6, 2, Activation::relu)}),
                    std::invalid_argument, "layers[1]: the weights have 6 columns, the previous layer has 7 outputs");
  CHECK_THROWS_WITH(
      HiddenStatistics(L{dense(3, 2, 1, Activation::relu), dense(3, 3, 2, Activation::relu),
                         dense(2, 4, 3, Activation::tanh)}),
      std::invalid_argument, "layers[2]: the weights have 4 columns, the previous layer has 3 outputs");
  DenseLayer bad_bias = dense(4, 3, 4, Activation::relu);
  bad_bias.bias = Eigen::VectorXd::Zero(3);
  CHECK_THROWS_WITH(HiddenStatistics(L{bad_bias}), std::invalid_argument,
                    "layers[0]: the bias has 3 entries, the weights 4 rows");
  DenseLayer no_outputs = dense(2, 3, 9, Activation::relu);
  no_outputs.weights.resize(0, 3);
  no_outputs.bias.resize(0);
  CHECK_THROWS_WITH(HiddenStatistics(L{no_outputs}), std::invalid_argument, "layers[0]: empty weights");
  DenseLayer no_inputs = dense(2, 3, 9, Activation::relu);
  no_inputs.weights.resize(2, 0);
  CHECK_THROWS_WITH(HiddenStatistics(L{no_inputs}), std::invalid_argument, "");  // (from the input accumulator)
  DenseLayer hidden_empty = dense(2, 3, 9, Activation::relu);
  hidden_empty.weights.resize(0, 7);
  hidden_empty.bias.resize(0);
  CHECK_THROWS_WITH(HiddenStatistics(L{dense(7, 5, 1, Activation::relu), hidden_empty}), std::invalid_argument,
                    "layers[1]: empty weights");
  DenseLayer nan_weight = dense(2, 2, 5, Activation::identity);
  nan_weight.weights(1, 0) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH(HiddenStatistics(L{dense(2, 3, 6, Activation::relu), nan_weight}), std::invalid_argument,
                    "layers[1]: contains NaN or infinity");
  DenseLayer inf_bias = dense(2, 2, 7, Activation::identity);
  inf_bias.bias[0] = INFINITY;
  CHECK_THROWS_WITH(HiddenStatistics(L{inf_bias}), std::invalid_argument, "layers[0]: contains NaN or infinity");

  // A chunk whose width is not the first layer's inputs.
  HiddenStatistics stats(two_layers(Activation::relu, Activation::relu));
  const RowMatrix x = random_matrix(10, 4, 8);
  CHECK_THROWS_WITH(stats.update(ChunkView::row_major(x.data(), x.rows(), x.cols())), std::invalid_argument,
                    "chunk: expected 5 columns (the first layer's inputs), got 4");
  CHECK(stats.input().count() == 0 && stats.post(1).count() == 0);
}

TEST(forward_a_chunk_with_nan_changes_nothing) {
  const auto layers = two_layers(Activation::relu, Activation::sigmoid);
  HiddenStatistics stats(layers);
  HiddenStatistics untouched(layers);
  const RowMatrix x = random_matrix(6000, 5, 24);
  stats.update(ChunkView::row_major(x.data(), 1000, 5));
  untouched.update(ChunkView::row_major(x.data(), 1000, 5));
  CHECK(same_state(stats, untouched));

  RowMatrix bad = x.bottomRows(5000);
  bad(4500, 3) = std::numeric_limits<double>::quiet_NaN();  // in the second 4096-row block
  CHECK_THROWS_WITH(stats.update(ChunkView::row_major(bad.data(), bad.rows(), bad.cols())), NonFiniteError,
                    "row 4500");
  CHECK(same_state(stats, untouched));
  bad(4500, 3) = INFINITY;
  bad(2, 0) = -INFINITY;
  CHECK_THROWS_WITH(stats.update(ChunkView::row_major(bad.data(), bad.rows(), bad.cols())), NonFiniteError, "row 2");
  CHECK(same_state(stats, untouched));

  // The accumulator still works afterwards, as if the bad chunks never came.
  stats.update(ChunkView::row_major(x.row(1000).data(), 5000, 5));
  untouched.update(ChunkView::row_major(x.row(1000).data(), 5000, 5));
  CHECK(same_state(stats, untouched));
  CHECK(stats.input().count() == 6000);
  CHECK(!same_state(stats, HiddenStatistics(layers)));  // the comparison can fail
}

TEST(forward_an_overflowing_layer_changes_nothing) {
  // The first layer is harmless, the second's outputs (~1e300) have squares
  // that overflow float64: the update throws std::overflow_error and no
  // accumulator moves, not even the input's or the first layer's, which saw
  // nothing wrong.
  std::vector<DenseLayer> layers = two_layers(Activation::tanh, Activation::identity);
  layers[1].weights *= 1e300;
  HiddenStatistics stats(layers);
  HiddenStatistics untouched(layers);
  const RowMatrix x = random_matrix(200, 5, 26);

  CHECK_THROWS_WITH(stats.update(ChunkView::row_major(x.data(), x.rows(), x.cols())), std::overflow_error,
                    "overflow float64");
  CHECK(same_state(stats, untouched));
  CHECK(stats.input().count() == 0);
  CHECK(stats.pre(0).count() == 0 && stats.post(0).count() == 0);

  // Huge (finite) first-layer weights: W x overflows or its square does.
  std::vector<DenseLayer> huge = two_layers(Activation::sigmoid, Activation::relu);
  huge[0].weights *= 1e306;
  CHECK(huge[0].weights.allFinite());
  HiddenStatistics big(huge);
  HiddenStatistics big_untouched(huge);
  CHECK_THROWS_WITH(big.update(ChunkView::row_major(x.data(), x.rows(), x.cols())), std::overflow_error,
                    "overflow float64");
  CHECK(same_state(big, big_untouched));
}

TEST(forward_a_layer_that_overflows_names_the_row_of_the_chunk_and_the_layer) {
  // A finite input row (4500, in the second 4096-row block) whose
  // pre-activation in layers[1] is beyond float64: the error names row 4500
  // of the chunk (not row 404 of the block), no column of the (finite) data,
  // and the layer.
  std::vector<DenseLayer> layers = two_layers(Activation::identity, Activation::identity);
  layers[0].weights.setConstant(1.0);
  layers[0].bias.setZero();
  layers[1].weights.setConstant(1e200);
  HiddenStatistics stats(layers);
  HiddenStatistics untouched(layers);
  // Equal rows centre to zero (their squares do not overflow), but for row
  // 4500 W x is infinite.
  RowMatrix x = RowMatrix::Ones(5000, 5);
  x.row(4500).setConstant(1e150);
  bool thrown = false;
  try {
    stats.update(ChunkView::row_major(x.data(), x.rows(), x.cols()));
  } catch (const NonFiniteError& e) {
    thrown = true;
    CHECK(e.row() == 4500);
    CHECK(e.column() == -1);
    CHECK(e.source() == "chunk");
    CHECK(std::string(e.what()).find("layers[1] pre-activation") != std::string::npos);
  }
  CHECK(thrown);
  CHECK(same_state(stats, untouched));
}
