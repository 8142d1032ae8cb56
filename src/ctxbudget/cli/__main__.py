"""``python -m ctxbudget.cli``: the ``ctxbudget`` command."""

import sys

from .app import main

sys.exit(main(own_process=True))
