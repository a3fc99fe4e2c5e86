"""``python -m tasker_core``: the worker command, as ``tasker-worker``."""

import sys

from .worker import main

sys.exit(main())
