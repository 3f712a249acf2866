# Finds Eigen 3.4 (target Eigen3::Eigen): first where CMake looks by itself
# (a system package, CMAKE_PREFIX_PATH), then in the prefix of the
# `cmeel-eigen` Python package, which `python -m cmeel cmake` prints. The
# Python build (pyproject.toml) lists cmeel-eigen as a build requirement, so
# `pip install .` needs nothing from the system.
find_package(Eigen3 3.4 QUIET NO_MODULE)
if(NOT Eigen3_FOUND)
  find_package(Python 3.9 QUIET COMPONENTS Interpreter)
  if(Python_Interpreter_FOUND)
    execute_process(
      COMMAND "${Python_EXECUTABLE}" -m cmeel cmake
      OUTPUT_VARIABLE _descramble_cmeel_prefix
      OUTPUT_STRIP_TRAILING_WHITESPACE
      RESULT_VARIABLE _descramble_cmeel_status
      ERROR_QUIET)
    if(_descramble_cmeel_status EQUAL 0 AND EXISTS "${_descramble_cmeel_prefix}")
      list(APPEND CMAKE_PREFIX_PATH "${_descramble_cmeel_prefix}")
    endif()
  endif()
  find_package(Eigen3 3.4 NO_MODULE)
  if(NOT Eigen3_FOUND)
    message(FATAL_ERROR
      "Eigen 3.4 not found. Install it with `pip install cmeel-eigen` in the Python "
      "environment CMake uses (or pass -DPython_EXECUTABLE=...), or install the system "
      "package (libeigen3-dev), or point CMAKE_PREFIX_PATH at an Eigen 3.4 installation.")
  endif()
endif()
message(STATUS "descramble: Eigen ${Eigen3_VERSION} from ${Eigen3_DIR}")
