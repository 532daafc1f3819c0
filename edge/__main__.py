"""``python -m edge`` is the ``facegate`` command."""

import sys

from edge.cli import main

sys.exit(main())
