# Chooses the BLAS behind the core's block products (DESCRAMBLE_BLAS):
#   scipy-openblas32  OpenBLAS from the `scipy-openblas32` Python package
#                     (headers, CMake config and a shared library whose symbols
#                     carry a `scipy_` prefix); the default.
#   none              Eigen's own products only (slower; no BLAS needed).
set(DESCRAMBLE_BLAS "scipy-openblas32" CACHE STRING "BLAS for the core's products: scipy-openblas32 or none")
set_property(CACHE DESCRAMBLE_BLAS PROPERTY STRINGS scipy-openblas32 none)

set(DESCRAMBLE_OPENBLAS_LIB_DIR "")
if(DESCRAMBLE_BLAS STREQUAL "scipy-openblas32")
  find_package(Python 3.9 QUIET COMPONENTS Interpreter)
  if(Python_Interpreter_FOUND)
    execute_process(
      COMMAND "${Python_EXECUTABLE}" -c "import scipy_openblas32 as s; print(s.get_lib_dir())"
      OUTPUT_VARIABLE DESCRAMBLE_OPENBLAS_LIB_DIR
      OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _descramble_openblas_status
      ERROR_QUIET)
  endif()
  if(NOT Python_Interpreter_FOUND OR NOT _descramble_openblas_status EQUAL 0)
    message(FATAL_ERROR
      "DESCRAMBLE_BLAS=scipy-openblas32 but the Python package scipy-openblas32 was not found: "
      "`pip install scipy-openblas32` in the Python CMake uses (-DPython_EXECUTABLE=...), "
      "or configure with -DDESCRAMBLE_BLAS=none for an Eigen-only build.")
  endif()
  find_package(OpenBLAS CONFIG REQUIRED PATHS "${DESCRAMBLE_OPENBLAS_LIB_DIR}/cmake/openblas" NO_DEFAULT_PATH)
  message(STATUS "descramble: OpenBLAS ${OpenBLAS_VERSION} from ${DESCRAMBLE_OPENBLAS_LIB_DIR}")
elseif(NOT DESCRAMBLE_BLAS STREQUAL "none")
  message(FATAL_ERROR "DESCRAMBLE_BLAS must be scipy-openblas32 or none, not '${DESCRAMBLE_BLAS}'")
else()
  message(STATUS "descramble: no BLAS, Eigen products only")
endif()
