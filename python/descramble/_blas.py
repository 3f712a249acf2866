"""Loads the OpenBLAS that the C++ core links (from the scipy-openblas32
package) into the process before the core is imported, so that the core finds
it wherever the two packages are installed. NumPy keeps its own BLAS."""

try:
    import scipy_openblas32  # noqa: F401  (importing it loads libscipy_openblas)
except ImportError:  # an Eigen-only build (DESCRAMBLE_BLAS=none) needs no BLAS
    pass
