"""The application built on the library: the ``descramble`` command and what it runs.

* :mod:`descramble.cli.main`: the command line (``demo``, ``run``, ``bench``);
* :mod:`descramble.cli.demo`: the embedded relaxometry story, with its
  simulator (:mod:`descramble.cli.relaxometry`) and NumPy network
  (:mod:`descramble.cli.mlp`);
* :mod:`descramble.cli.report`: the report directory (figures, arrays,
  ``summary.json``) written by ``demo`` and ``run``;
* :mod:`descramble.cli.benchmarks`: the benchmark suite of ``bench``.

No library module imports this package; ``import descramble`` never loads it.
"""

from .main import main

__all__ = ["main"]
