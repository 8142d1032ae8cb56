"""The ``ctxbudget`` command line: one module per command group.

``app`` builds the parser and dispatches; ``common`` holds what the command modules
share (the parser class, exit codes, the policy flags, opening a source); ``tokens``,
``sessions``, ``compact``, ``budget``, ``demo``, ``hooks`` and ``statusline`` each
register and run their commands.

Importing this package loads nothing: ``ctxbudget statusline`` (``cli.statusline``)
runs every few hundred milliseconds and must not pay for argparse, the store or the
compaction engine. ``main`` imports the command line when called.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main"]


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """Run ``ctxbudget`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code.
    ``own_process``: the process runs this command alone (see ``app.main``)."""
    from .app import main as run

    return run(argv, own_process=own_process)
