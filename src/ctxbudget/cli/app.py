"""The ``ctxbudget`` command: a thin shell over the facade.

It parses flags, calls ``Tracker``, and renders the returned ``Status``. Errors a
user can act on print one line on stderr and exit 2; nothing here computes a budget.
Each command group registers its own subcommands (``cli.tokens``, ``cli.sessions``,
``cli.compact``, ``cli.budget``, ``cli.demo``, ``cli.hooks``); this module builds
the parser from them and dispatches.

Exit codes: 0 ok, 1 the ``--fail-on`` level was reached, 2 usage or input error,
3 blocked (with ``--fail-on``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..errors import CtxBudgetError
from ..tracker import Tracker
from . import budget, compact, demo, hooks, sessions, tokens
from .common import EXIT_OK, EXIT_USAGE, STORE_HELP, Parser, open_source, policy_flags

__all__ = ["COMMANDS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="ctxbudget",
        description="Token budget manager for LLM agent sessions: how full is the window, "
        "and what to do about it.",
        epilog="Store: --store URL or $CTXBUDGET_STORE (default: SQLite in your data dir). "
        "Exit codes: 0 ok, 1 --fail-on level reached, 2 usage/input error, 3 blocked.",
    )
    parser.add_argument("--version", action="version", version=f"ctxbudget {__version__}")
    parser.add_argument("--store", metavar="URL", help=STORE_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    tokens.register(commands)
    sessions.register_sessions(commands)
    compact.register(commands, policy_flags)
    budget.register(commands, policy_flags)
    demo.register(commands)
    hooks.register(commands)
    sessions.register_events(commands)
    # --store works after the command too ("ctxbudget tokens X --store memory://").
    for sub in commands.choices.values():
        sub.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help=STORE_HELP)
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace, Tracker], int]] = {
    "tokens": tokens.cmd_tokens,
    "sessions": sessions.cmd_sessions,
    "events": sessions.cmd_events,
    "compact": lambda args, tracker: compact.cmd_compact(args, tracker, open_source),
    "restore": compact.cmd_restore,
    "recall": compact.cmd_recall,
    "gate": lambda args, tracker: budget.cmd_gate(args, tracker, open_source),
    "budget": lambda args, tracker: budget.cmd_budget(args, tracker, open_source),
    "demo": demo.cmd_demo,
    **hooks.COMMANDS,
}


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["statusline"]:
        # The status line runs every few hundred ms and must never fail: its own
        # light entry point, no store, no argument errors.
        from .statusline import main as statusline_main

        return statusline_main(args_list[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        with Tracker(store=args.store) as tracker:
            return COMMANDS[args.command](args, tracker)
    except CtxBudgetError as exc:
        print(f"ctxbudget: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("ctxbudget: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        # A bug of ours: still one line, unless the user asks for the traceback.
        if os.environ.get("CTXBUDGET_DEBUG"):
            raise
        print(
            f"ctxbudget: internal error: {type(exc).__name__}: {exc} "
            "(set CTXBUDGET_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
