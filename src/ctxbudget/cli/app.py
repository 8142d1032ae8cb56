"""The ``ctxbudget`` command: a thin shell over the facade.

It parses flags, calls ``Tracker``, and renders the returned ``Status``. Errors a
user can act on print one line on stderr and exit 2; nothing here computes a budget.
Each command group registers its own subcommands (``cli.tokens``, ``cli.sessions``,
``cli.compact``, ``cli.recall``, ``cli.budget``, ``cli.demo``, ``cli.hooks``); this module builds
the parser from them and dispatches.

Exit codes: 0 ok, 1 the ``--fail-on`` level was reached, 2 usage or input error,
3 blocked (with ``--fail-on``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Collection, Sequence
from importlib import import_module

from .. import __version__
from ..errors import CtxBudgetError
from .common import (
    EXIT_OK,
    EXIT_USAGE,
    STORE_HELP,
    Parser,
    add_examples,
    writes_store,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..session import Session
    from ..tracker import Tracker

__all__ = ["GROUPS", "build_parser", "command_of", "main", "runner"]

#: The command groups in the order ``--help`` lists them: module (under ``cli``), its
#: register function, whether that takes the policy flags, and the commands it adds
#: with their one-line help. ``--help`` and a usage error list every command from here
#: without importing any module (a command module imports the store, the compaction
#: engine or the demo); the module of the command being run is imported to build its
#: own parser. A test keeps this table equal to what the modules register.
GROUPS: tuple[tuple[str, str, bool, tuple[tuple[str, str], ...]], ...] = (
    ("tokens", "register", False, (("tokens", "how full a session's context window is"),)),
    (
        "sessions",
        "register_sessions",
        False,
        (("sessions", "list Claude Code sessions (with their figures) and stored sessions"),),
    ),
    (
        "compact",
        "register",
        True,
        (("compact", "compact a session: free tokens, keep every fact, archive the rest"),),
    ),
    (
        "recall",
        "register",
        False,
        (
            ("restore", "undo a compaction exactly"),
            ("recall", "search what compaction archived"),
        ),
    ),
    (
        "budget",
        "register",
        True,
        (
            ("gate", "may a new sub-agent start? exit 0 allow, 3 deny"),
            ("budget", "allocation and utilization by component, agent and phase"),
        ),
    ),
    (
        "demo",
        "register",
        False,
        (("demo", "replay the analyst example through the engine (epic EP24)"),),
    ),
    (
        "hooks",
        "register",
        False,
        (
            ("hook", "run as a Claude Code hook (reads the hook JSON on stdin)"),
            ("install", "add to Claude Code's settings ctxbudget's status line and hooks"),
            ("uninstall", "remove from Claude Code's settings ctxbudget's status line and hooks"),
        ),
    ),
    (
        "sessions",
        "register_events",
        False,
        (("events", "a stored session's event ledger (audit trail)"),),
    ),
    (
        "scrub",
        "register",
        False,
        (("scrub", "redact the secrets a store already holds (API keys, tokens, passwords)"),),
    ),
    (
        "mcp",
        "register",
        False,
        (("mcp", "serve status, gate, sprint budgets and recall to agents (MCP, stdio)"),),
    ),
    # main() runs the status line before parsing; listed for --help
    (
        "statusline",
        "register",
        False,
        (("statusline", "one status line for Claude Code (JSON on stdin)"),),
    ),
)
ALL = None  # build_parser(ALL): every command's full parser
#: Commands that run on, serving requests: the collector stays as the interpreter set it.
SERVERS = frozenset({"mcp"})


def build_parser(load: Collection[str] | None = ALL) -> argparse.ArgumentParser:
    """The ``ctxbudget`` parser. ``load``: the commands whose module is imported for
    their full parser (None: all); the others are listed, with their help, and
    nothing more."""
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
    for module, function, takes_policy, names in GROUPS:
        if load is ALL or any(name in load for name, _ in names):
            register = getattr(import_module(f".{module}", __package__), function)
            if takes_policy:
                from .common import policy_flags

                register(commands, policy_flags)
            else:
                register(commands)
        else:
            for name, help_text in names:
                commands.add_parser(name, help=help_text)
    add_examples(commands)
    # --store works after the command too ("ctxbudget tokens X --store memory://").
    for sub in commands.choices.values():
        sub.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help=STORE_HELP)
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The command named in ``argv`` (the first word that is not an option), if any."""
    args = iter(argv)
    for arg in args:
        if arg == "--store":
            next(args, None)
        elif arg == "--":
            return next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def runner(name: str) -> Callable[[argparse.Namespace, Tracker], int]:
    """The function that runs command ``name`` (its module imported now)."""
    from .common import open_source

    if name == "tokens":
        from .tokens import cmd_tokens

        return cmd_tokens
    if name in ("sessions", "events"):
        from . import sessions

        return sessions.cmd_sessions if name == "sessions" else sessions.cmd_events
    if name == "compact":
        from .compact import cmd_compact

        return lambda args, tracker: cmd_compact(args, tracker, open_source)
    if name in ("restore", "recall"):
        from . import recall

        if name == "restore":
            return recall.cmd_restore

        def live_first(tracker: Tracker, source: str | None, args: argparse.Namespace) -> Session:
            return open_source(tracker, source, args, live_first=True)

        return lambda args, tracker: recall.cmd_recall(args, tracker, live_first)
    if name in ("gate", "budget"):
        from . import budget

        run = budget.cmd_gate if name == "gate" else budget.cmd_budget
        return lambda args, tracker: run(args, tracker, open_source)
    if name == "demo":
        from .demo import cmd_demo

        return cmd_demo
    if name == "scrub":
        from .scrub import cmd_scrub

        return cmd_scrub
    if name == "mcp":
        from .mcp import cmd_mcp

        return cmd_mcp
    from .hooks import COMMANDS

    return COMMANDS[name]


def _print_what_cannot_be_encoded() -> None:
    """A session's text may hold what the terminal's encoding cannot: half an emoji
    (a lone surrogate, where a JavaScript slice cut a pair), or any non-ASCII character
    under an ASCII locale. Printed replaced, not a crash after the work is done."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="replace")


def main(argv: Sequence[str] | None = None, *, own_process: bool = False) -> int:
    """The ``ctxbudget`` command. ``own_process``: the process exists for this command
    alone (the console script, ``python -m``), so what it reads may be frozen for the
    cyclic collector (``collector.one_shot``; not for a server, which runs on); a
    program calling ``main`` keeps its collector as is."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if own_process:
        _print_what_cannot_be_encoded()
    if args_list[:1] == ["statusline"]:
        # The status line runs every few hundred ms and must never fail: its own
        # light entry point, no store, no argument errors.
        from .statusline import main as statusline_main

        return statusline_main(args_list[1:])
    parser = build_parser({name} if (name := command_of(args_list)) else ())
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if own_process and args.command not in SERVERS:
        from ..collector import one_shot

        one_shot()
    try:
        from ..tracker import Tracker

        run = runner(args.command)
        with Tracker(store=args.store, create_store=writes_store(args)) as tracker:
            return run(args, tracker)
    except CtxBudgetError as exc:
        _said_in_json(args, str(exc))
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
        _said_in_json(args, f"internal error: {type(exc).__name__}: {exc}")
        print(
            f"ctxbudget: internal error: {type(exc).__name__}: {exc} "
            "(set CTXBUDGET_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_USAGE


def _said_in_json(args: argparse.Namespace, message: str) -> None:
    """With ``--json``, the error as JSON on stdout too (``{"error": …}``): a script
    reading stdout gets an object, not nothing; stderr keeps the line for people."""
    if getattr(args, "json", False):
        import json

        print(json.dumps({"error": message, "exit_code": EXIT_USAGE}))


if __name__ == "__main__":
    sys.exit(main())
