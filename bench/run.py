#!/usr/bin/env python
"""The benchmark suite: descramble's kernels against their NumPy references.

The suite lives in the package (``descramble.cli.benchmarks``) so that the
installed ``descramble bench`` command runs it too; see its docstring, or
``python bench/run.py --help``. The C++ benchmark is in bench/cpp.
"""

import sys

from descramble.cli.benchmarks import main

if __name__ == "__main__":
    sys.exit(main())
