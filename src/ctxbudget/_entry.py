"""The ``ctxbudget`` console script: route the status line before importing the CLI.

Claude Code runs ``ctxbudget statusline`` every few hundred milliseconds; importing the
whole command line (store, compaction, argparse) would cost more than the status line
itself, so it takes its own light path. Everything else goes to ``ctxbudget.cli``
(whose package imports nothing until ``main`` is called).
"""

from __future__ import annotations

import sys


def main() -> int:
    argv = sys.argv[1:]
    if argv[:1] == ["statusline"]:
        from .cli.statusline import main as statusline_main

        return statusline_main(argv[1:])
    from .cli import main as cli_main

    return cli_main(argv, own_process=True)
