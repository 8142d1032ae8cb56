"""What the ``ctxbudget`` commands share: exit codes, the parser class, the policy
flags, and opening the session a command works on."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from ..errors import AmbiguousSessionError, CtxBudgetError, SessionNotFoundError
from ..policy import fields_from_toml
from ..sources import claude_projects_dir, find_latest_claude_session

if TYPE_CHECKING:
    from ..tracker import Session, Tracker

__all__ = [
    "EXIT_BLOCKED",
    "EXIT_FAIL_ON",
    "EXIT_OK",
    "EXIT_USAGE",
    "STORE_HELP",
    "Parser",
    "UsageError",
    "color",
    "open_source",
    "policy_fields",
    "policy_flags",
]

EXIT_OK, EXIT_FAIL_ON, EXIT_USAGE, EXIT_BLOCKED = 0, 1, 2, 3

STORE_HELP = (
    "sqlite:///path.db or memory:// (default: $CTXBUDGET_STORE, else SQLite in your data dir)"
)


class UsageError(CtxBudgetError):
    """Bad command-line input."""


class Parser(argparse.ArgumentParser):
    """Usage errors in one line, with where to look for help (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ctxbudget: error: {message} (see: {self.prog} --help)\n")


def color(stream: Any) -> bool:
    """Whether to colour what goes to ``stream``: a terminal, and no ``NO_COLOR``."""
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def policy_flags(parser: argparse.ArgumentParser) -> None:
    """Add the policy flags (``--policy FILE``, ``--window``, thresholds…) to ``parser``."""
    group = parser.add_argument_group("policy")
    group.add_argument("--policy", metavar="FILE", help="policy TOML file (window, thresholds…)")
    group.add_argument("--window", type=int, help="context window in tokens (default: by model)")
    group.add_argument("--model", help="model name: picks the window and the counter")
    group.add_argument(
        "--counter",
        help="token counter: o200k_base, cl100k_base, claude, estimate or hf:PATH "
        "(default: by model)",
    )
    group.add_argument("--reserved-output", type=int, metavar="N", help="tokens kept for output")
    group.add_argument("--safety-margin", type=int, metavar="N", help="tokens kept free")
    group.add_argument("--warning", type=float, metavar="PCT", help="warning threshold (75)")
    group.add_argument("--critical", type=float, metavar="PCT", help="critical threshold (90)")
    group.add_argument("--blocked", type=float, metavar="PCT", help="blocked threshold (95)")


def policy_fields(args: argparse.Namespace) -> dict[str, Any]:
    """Policy settings given on this command line: the file's, then the flags'."""
    fields = fields_from_toml(args.policy) if args.policy else {}
    flags = {
        "window": args.window,
        "model": args.model,
        "counter": args.counter,
        "reserved_output": args.reserved_output,
        "safety_margin": args.safety_margin,
        "warning_percent": args.warning,
        "critical_percent": args.critical,
        "blocked_percent": args.blocked,
    }
    fields.update({k: v for k, v in flags.items() if v is not None})
    return fields


def open_source(tracker: Tracker, source: str | None, args: argparse.Namespace) -> Session:
    """A session from a file, a stored id, or the newest Claude Code session.

    Policy flags apply to this run only; ``--record`` stores them with the session.
    """
    fields = policy_fields(args)
    if source is None:
        latest = find_latest_claude_session()
        if latest is None:
            raise UsageError(
                f"no Claude Code session found under {claude_projects_dir()}: "
                "give a transcript file or a stored session id"
            )
        source = str(latest)
    path = Path(source).expanduser()
    if path.exists():
        return tracker.load(path, **fields)
    try:
        session = tracker.open(source)
    except AmbiguousSessionError as exc:
        raise UsageError(str(exc)) from exc
    except SessionNotFoundError as exc:
        if any(sep in source for sep in ("/", "\\")) or path.suffix:
            raise UsageError(f"{source}: no such file") from exc
        raise UsageError(
            f"{source}: no such file, and no stored session with that id in {tracker.store.url}"
        ) from exc
    if fields:
        policy = session.policy.replace(**fields)
        if getattr(args, "record", False):
            session.set_policy(policy)
        else:
            session.policy = policy
    return session
