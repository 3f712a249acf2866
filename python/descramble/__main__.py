"""``python -m descramble``: the same as the ``descramble`` command."""

import sys

from .cli import main

sys.exit(main())
