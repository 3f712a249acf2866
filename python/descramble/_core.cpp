// The one pybind11 binding file: exposes the C++ core as descramble._core.
// It only translates between NumPy arrays and the core's types; validation
// with user-facing messages lives in the Python package and in the core.
#include <optional>
#include <tuple>
#include <string>
#include <utility>

#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "descramble/autocorrelation.hpp"
#include "descramble/chunk.hpp"
#include "descramble/file_stream.hpp"
#include "descramble/forward.hpp"
#include "descramble/linalg.hpp"
#include "descramble/moments.hpp"

namespace py = pybind11;
using descramble::Autocorrelation;
using descramble::ChunkView;
using descramble::Index;
using descramble::Moments;
using descramble::Precision;
using descramble::ReduceOptions;
using descramble::ScalarType;

namespace {

ScalarType scalar_type(const py::dtype& dtype) {
  const char kind = dtype.kind();
  const auto size = dtype.itemsize();
  if (kind == 'f' && size == 8) return ScalarType::float64;
  if (kind == 'f' && size == 4) return ScalarType::float32;
  if (kind == 'b' && size == 1) return ScalarType::boolean;
  if (kind == 'i' || kind == 'u') {
    const bool is_signed = kind == 'i';
    switch (size) {
      case 1: return is_signed ? ScalarType::int8 : ScalarType::uint8;
      case 2: return is_signed ? ScalarType::int16 : ScalarType::uint16;
      case 4: return is_signed ? ScalarType::int32 : ScalarType::uint32;
      case 8: return is_signed ? ScalarType::int64 : ScalarType::uint64;
      default: break;
    }
  }
  throw py::type_error("chunk: unsupported dtype " + std::string(py::str(dtype)));
}

// A view of a 2-D array in place (no copy); the array must stay alive.
ChunkView view_of(const py::array& chunk) {
  if (chunk.ndim() != 2) throw py::value_error("chunk: expected a 2-D array");
  return ChunkView{chunk.data(), scalar_type(chunk.dtype()), chunk.shape(0), chunk.shape(1),
                   chunk.strides(0), chunk.strides(1)};
}

using Weights = std::optional<py::array_t<double, py::array::c_style>>;

ReduceOptions options_of(int threads, bool mixed) {
  ReduceOptions options;
  options.threads = threads;
  options.precision = mixed ? Precision::mixed : Precision::float64;
  return options;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "C++ core of descramble (private: use the descramble package)";
  m.attr("__version__") = DESCRAMBLE_VERSION;
  // Non-finite input gets its own ValueError subclass so that callers (for
  // example descramble.cov, which must propagate NaN like numpy.cov) can tell
  // it from other bad input.
  py::register_exception<descramble::NonFiniteError>(m, "NonFiniteError", PyExc_ValueError);

  m.def("product_backend", &descramble::product_backend, "The BLAS behind the core's block products");

  // Spectral kernels: matrices arrive Fortran-ordered float64 (no copy).
  using FMatrix = Eigen::Ref<const Eigen::MatrixXd>;
  m.def(
      "eigh",
      [](FMatrix a, int threads) {
        auto r = descramble::eigh(a, threads);
        return std::make_tuple(std::move(r.values), std::move(r.vectors));  // converted once the GIL is back
      },
      py::arg("a"), py::arg("threads") = 0, py::call_guard<py::gil_scoped_release>());
  m.def(
      "svd",
      [](FMatrix a, bool full_matrices, int threads) {
        auto r = descramble::svd(a, full_matrices, threads);
        return std::make_tuple(std::move(r.u), std::move(r.s), std::move(r.vt));
      },
      py::arg("a"), py::arg("full_matrices") = false, py::arg("threads") = 0,
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "truncated_svd",
      [](FMatrix a, Index k, std::uint64_t seed, Index oversampling, int power_iterations, int threads) {
        auto r = descramble::truncated_svd(a, k, seed, oversampling, power_iterations, threads);
        return std::make_tuple(std::move(r.u), std::move(r.s), std::move(r.vt));
      },
      py::arg("a"), py::arg("k"), py::arg("seed"), py::arg("oversampling") = 10, py::arg("power_iterations") = 4,
      py::arg("threads") = 0, py::call_guard<py::gil_scoped_release>());

  py::class_<descramble::HiddenStatistics>(m, "HiddenStatistics")
      .def(py::init([](const std::vector<std::tuple<Eigen::MatrixXd, Eigen::VectorXd, std::string>>& layers,
                       int threads) {
             std::vector<descramble::DenseLayer> dense;
             for (const auto& [w, b, activation] : layers) {
               dense.push_back({w, b, descramble::parse_activation(activation)});
             }
             return descramble::HiddenStatistics(std::move(dense), options_of(threads, false));
           }),
           py::arg("layers"), py::arg("threads") = 0)
      .def(
          "update",
          [](descramble::HiddenStatistics& self, const py::array& chunk) {
            const ChunkView view = view_of(chunk);
            py::gil_scoped_release release;
            self.update(view);
          },
          py::arg("chunk"))
      .def("input", [](const descramble::HiddenStatistics& self) { return Autocorrelation(self.input()); })
      .def(
          "pre", [](const descramble::HiddenStatistics& self, std::size_t i) { return Autocorrelation(self.pre(i)); },
          py::arg("layer"))
      .def(
          "post", [](const descramble::HiddenStatistics& self, std::size_t i) { return Autocorrelation(self.post(i)); },
          py::arg("layer"))
      .def_property_readonly("layers", &descramble::HiddenStatistics::layers);

  py::class_<Autocorrelation>(m, "Autocorrelation")
      .def(py::init([](Index n_features, int threads, bool mixed) {
             return Autocorrelation(n_features, options_of(threads, mixed));
           }),
           py::arg("n_features"), py::arg("threads") = 0, py::arg("mixed") = false)
      .def_static(
          "from_state",
          [](Eigen::VectorXd shift, std::int64_t count, double weight, Eigen::VectorXd mean,
             Eigen::MatrixXd scatter, int threads, bool mixed) {
            Moments moments;
            moments.shift = std::move(shift);
            moments.count = count;
            moments.weight = weight;
            moments.mean = std::move(mean);
            moments.scatter = std::move(scatter);
            return Autocorrelation(std::move(moments), options_of(threads, mixed));
          },
          py::arg("shift"), py::arg("count"), py::arg("weight"), py::arg("mean"), py::arg("scatter"),
          py::arg("threads") = 0, py::arg("mixed") = false)
      .def(
          "state",
          [](const Autocorrelation& self) {
            Moments s = self.moments();
            return py::make_tuple(std::move(s.shift), s.count, s.weight, std::move(s.mean),
                                  std::move(s.scatter));
          },
          "(shift, count, weight, mean about shift, scatter), one consistent snapshot")
      .def_property_readonly("n_features", &Autocorrelation::n_features)
      .def_property_readonly("count", &Autocorrelation::count)
      .def_property_readonly("weight_sum", &Autocorrelation::weight_sum)
      .def_property_readonly("mean", &Autocorrelation::mean)
      .def_property_readonly("scatter", &Autocorrelation::scatter)
      .def_property_readonly("threads", [](const Autocorrelation& self) { return self.options().threads; })
      .def_property_readonly("mixed",
                             [](const Autocorrelation& self) { return self.options().precision == Precision::mixed; })
      .def(
          "configure",
          [](Autocorrelation& self, int threads, bool mixed) { self.set_options(options_of(threads, mixed)); },
          py::arg("threads"), py::arg("mixed"))
      .def(
          "update",
          [](Autocorrelation& self, const py::array& chunk, const Weights& weights) {
            const ChunkView view = view_of(chunk);
            const double* w = nullptr;
            if (weights) {
              if (weights->ndim() != 1 || weights->shape(0) != view.rows) {
                throw py::value_error("weights: expected one weight per row");
              }
              w = weights->data();
            }
            py::gil_scoped_release release;
            self.update(view, w);
          },
          py::arg("chunk"), py::arg("weights") = py::none())
      .def(
          "update_from_file",
          [](Autocorrelation& self, const std::string& path, std::uint64_t offset, const py::dtype& dtype, Index rows,
             Index cols, bool fortran_order, Index chunk_rows, const py::object& progress) {
            const descramble::FileLayout layout{path, offset, scalar_type(dtype), rows, cols, fortran_order};
            // Between chunks: take the GIL, let Python handle signals (Ctrl-C
            // raises here and stops the stream; committed chunks stay), report progress.
            auto between_chunks = [&progress](Index done, Index total) {
              py::gil_scoped_acquire gil;
              if (PyErr_CheckSignals() != 0) throw py::error_already_set();
              if (!progress.is_none()) progress(done, total);
            };
            py::gil_scoped_release release;
            return descramble::stream_file(self, layout, chunk_rows, between_chunks);
          },
          py::arg("path"), py::arg("offset"), py::arg("dtype"), py::arg("rows"), py::arg("cols"),
          py::arg("fortran_order"), py::arg("chunk_rows") = 0, py::arg("progress") = py::none())
      .def("merge", &Autocorrelation::merge, py::arg("other"), py::call_guard<py::gil_scoped_release>())
      .def("autocorrelation", &Autocorrelation::autocorrelation, py::call_guard<py::gil_scoped_release>())
      .def("covariance", &Autocorrelation::covariance, py::arg("ddof") = 1.0,
           py::call_guard<py::gil_scoped_release>())
      .def("copy", [](const Autocorrelation& self) { return Autocorrelation(self); });
}
