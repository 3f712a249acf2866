// The one pybind11 binding file: exposes the C++ core as descramble._core.
// It only translates between NumPy arrays and the core's types, releases the
// GIL around long calls, and turns the core's exception types
// (descramble/errors.hpp) into Python exceptions that carry the same fields.
// Validation with user-facing messages lives in the Python package and in the core.
#include <cstring>
#include <optional>
#include <tuple>
#include <string>
#include <utility>
#include <vector>

#include <pybind11/eigen.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "descramble/autocorrelation.hpp"
#include "descramble/chunk.hpp"
#include "descramble/descrambler.hpp"
#include "descramble/errors.hpp"
#include "descramble/file_stream.hpp"
#include "descramble/forward.hpp"
#include "descramble/linalg.hpp"
#include "descramble/moments.hpp"
#include "descramble/permutation.hpp"
#include "descramble/smoothness.hpp"

namespace py = pybind11;
using descramble::Autocorrelation;
using descramble::ChunkView;
using descramble::Index;
using descramble::Moments;
using descramble::Precision;
using descramble::ReduceOptions;
using descramble::ScalarType;
using namespace pybind11::literals;

namespace {

descramble::DifferenceScheme difference_scheme(const std::string& scheme) {
  if (scheme == "forward") return descramble::DifferenceScheme::forward;
  if (scheme == "central") return descramble::DifferenceScheme::central;
  throw std::invalid_argument("scheme: expected 'forward' or 'central', got '" + scheme + "'");
}

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

// The Python exception types, created once per interpreter.
PYBIND11_CONSTINIT py::gil_safe_call_once_and_store<py::object> non_finite_type;
PYBIND11_CONSTINIT py::gil_safe_call_once_and_store<py::object> invalid_weight_type;

// Raises an instance of `type` with `message` and the attributes `fields`.
void raise_with_fields(const py::object& type, const char* message, const py::dict& fields) {
  py::object error = type(message);
  for (const auto& item : fields) py::setattr(error, item.first, item.second);
  PyErr_SetObject(type.ptr(), error.ptr());
}

void translate_errors(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const descramble::NonFiniteError& e) {
    const py::object column = e.column() < 0 ? py::none() : py::cast(e.column());
    raise_with_fields(non_finite_type.get_stored(), e.what(),
                      py::dict("source"_a = e.source(), "row"_a = e.row(), "column"_a = column));
  } catch (const descramble::InvalidWeightError& e) {
    raise_with_fields(invalid_weight_type.get_stored(), e.what(), py::dict("index"_a = e.index(), "value"_a = e.value()));
  } catch (const descramble::FileError& e) {
    // OSError(errno, strerror, filename) is FileNotFoundError, IsADirectoryError, ... by errno.
    const py::object error = py::reinterpret_borrow<py::object>(PyExc_OSError)(
        e.code().value(), std::strerror(e.code().value()), e.path());
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(error.ptr())), error.ptr());
  }
}

// The core's checks of a result beyond float64 (std::overflow_error) are
// ValueErrors in the descrambler API, like its other bad-input errors.
template <class F>
auto overflow_as_value_error(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::overflow_error& e) {
    throw py::value_error(e.what());
  }
}

// Updates through the binding name the row of the caller's stream: `source`,
// `first_row` and `row_step` say where the chunk sits in it (row r of the
// chunk is row first_row + row_step * r of the stream; descramble.sources).
template <class F>
void in_stream(F&& update, Index first_row, Index row_step, const std::string& source) {
  try {
    update();
  } catch (const descramble::NonFiniteError& e) {
    throw e.shifted(source, first_row, row_step);
  } catch (const descramble::InvalidWeightError& e) {
    throw e.shifted(first_row, row_step);
  }
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "C++ core of descramble (private: use the descramble package)";
  m.attr("__version__") = DESCRAMBLE_VERSION;
  // Errors with data (descramble/errors.hpp). NonFiniteError has its own
  // ValueError subclass so that callers (descramble.cov, which must propagate
  // NaN like numpy.cov) can tell it from other bad input.
  non_finite_type.call_once_and_store_result([&m]() {
    py::object type = py::exception<descramble::NonFiniteError>(m, "NonFiniteError", PyExc_ValueError);
    type.attr("__doc__") =
        "A sample holds NaN or infinity, or overflows float64 once centred (a ValueError).\n\n"
        "Attributes\n----------\nrow : int\n    The offending row of the stream, file or array.\n"
        "column : int or None\n    Its first non-finite column (None when the row overflows once centred, or in a "
        "layer's forward pass).\n"
        "source : str\n    What was read: 'data', a quoted file path, 'x' (Dask), a layer's output (PyTorch).";
    type.attr("row") = py::none();
    type.attr("column") = py::none();
    type.attr("source") = py::none();
    return type;
  });
  invalid_weight_type.call_once_and_store_result([&m]() {
    py::object type = py::exception<descramble::InvalidWeightError>(m, "InvalidWeightError", PyExc_ValueError);
    type.attr("__doc__") =
        "A sample weight is negative, NaN or infinite (a ValueError).\n\n"
        "Attributes\n----------\nindex : int\n    The offending entry, counted from the start of the stream.\n"
        "value : float\n    Its value.";
    type.attr("index") = py::none();
    type.attr("value") = py::none();
    return type;
  });
  py::register_exception_translator(&translate_errors);

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
          [](descramble::HiddenStatistics& self, const py::array& chunk, Index first_row, const std::string& source,
             Index row_step) {
            const ChunkView view = view_of(chunk);
            py::gil_scoped_release release;
            in_stream([&] { self.update(view); }, first_row, row_step, source);
          },
          py::arg("chunk"), py::arg("first_row") = 0, py::arg("source") = "chunk", py::arg("row_step") = 1)
      .def("input", [](const descramble::HiddenStatistics& self) { return Autocorrelation(self.input()); })
      .def(
          "pre", [](const descramble::HiddenStatistics& self, std::size_t i) { return Autocorrelation(self.pre(i)); },
          py::arg("layer"))
      .def(
          "post", [](const descramble::HiddenStatistics& self, std::size_t i) { return Autocorrelation(self.post(i)); },
          py::arg("layer"));

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
          "update",
          [](Autocorrelation& self, const py::array& chunk, const Weights& weights, Index first_row,
             const std::string& source, Index row_step) {
            const ChunkView view = view_of(chunk);
            const double* w = nullptr;
            if (weights) {
              if (weights->ndim() != 1 || weights->shape(0) != view.rows) {
                throw py::value_error("weights: expected one weight per row");
              }
              w = weights->data();
            }
            py::gil_scoped_release release;
            in_stream([&] { self.update(view, w); }, first_row, row_step, source);
          },
          py::arg("chunk"), py::arg("weights") = py::none(), py::arg("first_row") = 0, py::arg("source") = "chunk", py::arg("row_step") = 1)
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

  // The smoothness operators (smoothness.hpp) and the closed-form descrambler (descrambler.hpp).
  using descramble::ClosedForm;
  using descramble::Smoothness;
  py::class_<Smoothness>(m, "Smoothness")
      .def_readonly("name", &Smoothness::name)
      .def_property_readonly("matrix",
                             [](const Smoothness& s) -> py::object {
                               if (s.matrix.cols() == 0) return py::none();  // built from A
                               return py::cast(s.matrix);
                             })
      .def_readonly("gram", &Smoothness::gram)
      .def_readonly("values", &Smoothness::values)
      .def_readonly("basis", &Smoothness::basis)
      .def_readonly("analytic", &Smoothness::analytic)
      .def_property_readonly("size", &Smoothness::size);
  m.def("fourier_smoothness", &descramble::fourier_smoothness, py::arg("m"), py::arg("order") = 2,
        py::call_guard<py::gil_scoped_release>());
  m.def(
      "finite_difference_smoothness",
      [](Index n, int order, bool circular, const std::string& scheme) {
        const auto s = difference_scheme(scheme);
        py::gil_scoped_release release;
        return descramble::finite_difference_smoothness(n, order, circular, s);
      },
      py::arg("m"), py::arg("order") = 1, py::arg("circular") = false, py::arg("scheme") = "forward");
  m.def(
      "grid_smoothness",
      [](const std::vector<Index>& shape, int order, bool circular, const std::string& scheme) {
        const auto s = difference_scheme(scheme);
        py::gil_scoped_release release;
        return descramble::grid_smoothness(shape, order, circular, s);
      },
      py::arg("shape"), py::arg("order") = 1, py::arg("circular") = false, py::arg("scheme") = "forward");
  m.def("smoothness_from_matrix", &descramble::smoothness_from_matrix, py::arg("D"), py::arg("threads") = 0,
        py::call_guard<py::gil_scoped_release>());
  m.def("smoothness_from_gram", &descramble::smoothness_from_gram, py::arg("A"), py::arg("threads") = 0,
        py::call_guard<py::gil_scoped_release>());
  m.def("degenerate_groups", &descramble::degenerate_groups, py::arg("values"),
        py::arg("rtol") = descramble::kDegeneracyRtol);
  m.attr("DEGENERACY_RTOL") = descramble::kDegeneracyRtol;

  py::class_<ClosedForm>(m, "ClosedForm")
      .def_readonly("P", &ClosedForm::P)
      .def_readonly("loss", &ClosedForm::loss)
      .def_readonly("bound", &ClosedForm::bound)
      .def_readonly("basis", &ClosedForm::basis)
      .def_readonly("basis_values", &ClosedForm::basis_values)
      .def_readonly("components", &ClosedForm::components)
      .def_readonly("spectrum", &ClosedForm::spectrum)
      .def_readonly("hidden", &ClosedForm::hidden)
      .def_property_readonly("degenerate", [](const ClosedForm& r) {
        py::list groups;
        for (const auto& g : r.degenerate) groups.append(py::make_tuple(g.kind, g.indices));
        return groups;
      });
  m.def(
      "descramble_closed_form",
      [](FMatrix hidden, const Smoothness& smoothness, int threads) {
        return overflow_as_value_error([&] { return descramble::descramble_closed_form(hidden, smoothness, threads); });
      },
      py::arg("hidden"), py::arg("smoothness"), py::arg("threads") = 0, py::call_guard<py::gil_scoped_release>());
  m.def(
      "descramble_layer",
      [](FMatrix weights, FMatrix autocorrelation, const Smoothness& smoothness, int threads) {
        return overflow_as_value_error(
            [&] { return descramble::descramble_layer(weights, autocorrelation, smoothness, threads); });
      },
      py::arg("weights"), py::arg("autocorrelation"), py::arg("smoothness"), py::arg("threads") = 0,
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "descramble_layer",
      [](FMatrix weights, const Autocorrelation& input, const Smoothness& smoothness, int threads) {
        return overflow_as_value_error([&] { return descramble::descramble_layer(weights, input, smoothness, threads); });
      },
      py::arg("weights"), py::arg("input"), py::arg("smoothness"), py::arg("threads") = 0,
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "descramble_layer",
      [](FMatrix weights, const Eigen::Ref<const Eigen::VectorXd>& bias, const Autocorrelation& input,
         const Smoothness& smoothness, int threads) {
        return overflow_as_value_error(
            [&] { return descramble::descramble_layer(weights, bias, input, smoothness, threads); });
      },
      py::arg("weights"), py::arg("bias"), py::arg("input"), py::arg("smoothness"), py::arg("threads") = 0,
      py::call_guard<py::gil_scoped_release>());
  m.def(
      "descramble_diagonal",
      [](FMatrix weights, int threads) {
        return overflow_as_value_error([&] { return descramble::descramble_diagonal(weights, threads); });
      },
      py::arg("weights"), py::arg("threads") = 0, py::call_guard<py::gil_scoped_release>());
  m.def("smoothness_loss", &descramble::smoothness_loss, py::arg("gram"), py::arg("hidden"), py::arg("P"),
        py::arg("threads") = 0, py::call_guard<py::gil_scoped_release>());
  m.def("descramble_rows", &descramble::descramble_rows, py::arg("P"), py::arg("W"),
        py::call_guard<py::gil_scoped_release>());
  m.def("descramble_columns", &descramble::descramble_columns, py::arg("P"), py::arg("W_next"),
        py::call_guard<py::gil_scoped_release>());

  // Permutation descramblers (permutation.hpp).
  py::class_<descramble::PermutationResult>(m, "PermutationResult")
      .def_readonly("permutation", &descramble::PermutationResult::permutation)
      .def_property_readonly("signs",
                             [](const descramble::PermutationResult& r) -> py::object {
                               if (r.signs.size() == 0) return py::none();
                               return py::cast(r.signs);
                             })
      .def_readonly("loss", &descramble::PermutationResult::loss)
      .def_readonly("bound", &descramble::PermutationResult::bound)
      .def_readonly("gap", &descramble::PermutationResult::gap)
      .def_readonly("iterations", &descramble::PermutationResult::iterations)
      .def_readonly("moves", &descramble::PermutationResult::moves)
      .def_readonly("timed_out", &descramble::PermutationResult::timed_out)
      .def("matrix", &descramble::PermutationResult::matrix);
  m.def(
      "permutation_search",
      [](const ClosedForm& start, const Smoothness& smoothness, bool with_signs, std::uint64_t seed,
         Index max_iterations, double time_limit, std::vector<Index> initial, std::vector<double> initial_signs) {
        descramble::PermutationOptions options;
        options.with_signs = with_signs;
        options.seed = seed;
        options.max_iterations = max_iterations;
        options.time_limit = time_limit;
        options.initial = std::move(initial);
        options.initial_signs = std::move(initial_signs);
        return descramble::permutation_search(start, smoothness.gram, options);
      },
      py::arg("start"), py::arg("smoothness"), py::arg("with_signs") = false, py::arg("seed") = 0,
      py::arg("max_iterations") = 100, py::arg("time_limit") = 0.0, py::arg("initial") = std::vector<Index>(),
      py::arg("initial_signs") = std::vector<double>(), py::call_guard<py::gil_scoped_release>());
  m.def(
      "permutation_loss",
      [](FMatrix gram, FMatrix hidden, const std::vector<Index>& permutation, const Eigen::VectorXd& signs) {
        return descramble::permutation_loss(gram, hidden, permutation, signs);
      },
      py::arg("gram"), py::arg("hidden"), py::arg("permutation"), py::arg("signs") = Eigen::VectorXd(),
      py::call_guard<py::gil_scoped_release>());
  m.def("linear_assignment", &descramble::linear_assignment, py::arg("weights"),
        py::call_guard<py::gil_scoped_release>());
}
