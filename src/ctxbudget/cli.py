"""The ``ctxbudget`` command: a thin shell over the facade.

It parses flags, calls ``Tracker``, and renders the returned ``Status``. Errors a
user can act on print one line on stderr and exit 2; nothing here computes a budget.

Exit codes: 0 ok, 1 the ``--fail-on`` level was reached, 2 usage or input error,
3 blocked (with ``--fail-on``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import __version__, cli_budget, cli_compact, cli_demo, cli_hooks
from .errors import CtxBudgetError, SessionNotFoundError
from .model import Level
from .policy import fields_from_toml
from .render import breakdown_table, history_chart, status_line, warning_block
from .sources import claude_projects_dir, find_latest_claude_session
from .tracker import Session, Tracker

EXIT_OK, EXIT_FAIL_ON, EXIT_USAGE, EXIT_BLOCKED = 0, 1, 2, 3


class UsageError(CtxBudgetError):
    """Bad command-line input."""


def _color(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def _policy_flags(parser: argparse.ArgumentParser) -> None:
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


def _policy_fields(args: argparse.Namespace) -> dict[str, Any]:
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


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line, with where to look for help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ctxbudget: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ctxbudget",
        description="Token budget manager for LLM agent sessions: how full is the window, "
        "and what to do about it.",
        epilog="Store: --store URL or $CTXBUDGET_STORE (default: SQLite in your data dir). "
        "Exit codes: 0 ok, 1 --fail-on level reached, 2 usage/input error, 3 blocked.",
    )
    parser.add_argument("--version", action="version", version=f"ctxbudget {__version__}")
    store_help = (
        "sqlite:///path.db or memory:// (default: $CTXBUDGET_STORE, else SQLite in your data dir)"
    )
    parser.add_argument("--store", metavar="URL", help=store_help)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    tokens = commands.add_parser(
        "tokens",
        help="how full a session's context window is",
        description="Show how full a session's context window is. SOURCE is a Claude Code "
        "transcript (.jsonl), a JSON message list, a SWE-agent .traj, or a stored session id; "
        "without it, the newest Claude Code session under ~/.claude/projects.",
    )
    tokens.add_argument("source", nargs="?", metavar="SOURCE")
    tokens.add_argument(
        "--breakdown", action="store_true", help="tokens by component, kind, tool and agent"
    )
    tokens.add_argument("--history", action="store_true", help="context size at each API call")
    tokens.add_argument("--json", action="store_true", help="one JSON object on stdout")
    tokens.add_argument("--record", action="store_true", help="store the session and its events")
    tokens.add_argument(
        "--fail-on",
        choices=[lv.value for lv in Level if lv is not Level.NORMAL],
        help="exit 1 when this level is reached (3 when blocked)",
    )
    _policy_flags(tokens)

    sessions = commands.add_parser("sessions", help="list stored sessions")
    sessions.add_argument("--json", action="store_true")
    sessions.add_argument("--limit", type=int, default=20)

    cli_compact.register(commands, _policy_flags)
    cli_budget.register(commands, _policy_flags)
    cli_demo.register(commands)
    cli_hooks.register(commands)

    events = commands.add_parser("events", help="a stored session's event ledger (audit trail)")
    events.add_argument("session")
    events.add_argument("--type", action="append", dest="types", help="only these event types")
    events.add_argument("--json", action="store_true")
    # --store works after the command too ("ctxbudget tokens X --store memory://").
    for sub in commands.choices.values():
        sub.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help=store_help)
    return parser


def _open_source(tracker: Tracker, source: str | None, args: argparse.Namespace) -> Session:
    """A session from a file, a stored id, or the newest Claude Code session.

    Policy flags apply to this run only; ``--record`` stores them with the session.
    """
    fields = _policy_fields(args)
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
    except SessionNotFoundError as exc:
        if "ambiguous" in str(exc):
            raise UsageError(str(exc)) from exc
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


def _cmd_tokens(args: argparse.Namespace, tracker: Tracker) -> int:
    session = _open_source(tracker, args.source, args)
    if args.record:
        session.save()
    status = session.status()
    history = session.history() if args.history else []
    transcript = session.transcript
    if args.json:
        out = status.to_dict()
        out["session_id"] = session.id if args.record or transcript is None else None
        out["recorded"] = bool(args.record or transcript is None)
        if transcript is not None:
            out["source"] = transcript.path
            out["format"] = transcript.format
            out["transcript_session_id"] = transcript.session_id
            out["api_calls"] = len(transcript.calls)
        if args.history:
            out["history"] = [
                {
                    "call": p.call,
                    "reported_tokens": p.reported_tokens,
                    "predicted_tokens": p.predicted_tokens,
                    "timestamp": p.timestamp,
                    "after_compaction": p.after_compaction,
                }
                for p in history
            ]
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        color = _color(sys.stdout)
        print(status_line(status, color=color))
        notice = warning_block(status)
        if notice:
            print(notice)
        if status.unknown_records:
            print(
                f"Note: {status.unknown_records} record(s) of unknown shape were kept but not "
                "understood."
            )
        if not status.anchored:
            if (transcript is not None and transcript.calls) or session.version > 1:
                print(
                    f"Note: no provider usage since the last compaction: counted locally "
                    f"({status.counter})."
                )
            else:
                print(
                    f"Note: no provider usage in this source: counted locally ({status.counter})."
                )
        if args.breakdown:
            print()
            print(breakdown_table(status))
        if args.history:
            print()
            print(history_chart(history, session.policy))
        if args.record:
            print(f"Recorded as session {session.id} in {tracker.store.url}")
    return _exit_for(status.level, args.fail_on)


def _exit_for(level: Level, fail_on: str | None) -> int:
    if fail_on is None:
        return EXIT_OK
    if level is Level.BLOCKED:
        return EXIT_BLOCKED
    return EXIT_FAIL_ON if level.rank >= Level(fail_on).rank else EXIT_OK


def _cmd_sessions(args: argparse.Namespace, tracker: Tracker) -> int:
    if args.limit <= 0:
        raise UsageError(f"--limit must be 1 or more (got {args.limit})")
    rows = tracker.sessions(limit=args.limit)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": s.id,
                        "name": s.name,
                        "model": s.model,
                        "source": s.source,
                        "updated_at": s.updated_at,
                    }
                    for s in rows
                ],
                indent=2,
            )
        )
        return EXIT_OK
    if not rows:
        print(
            f"No stored sessions in {tracker.store.url} (store one with "
            '"ctxbudget tokens SOURCE --record").'
        )
    if rows:
        print(f"{'session':<36}  {'updated':<16}  {'model':<26}  source")
    for s in rows:
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.updated_at))
        print(f"{s.id:<36}  {updated:<16}  {s.model or '-':<26}  {s.source or s.name or ''}")
    return EXIT_OK


def _cmd_events(args: argparse.Namespace, tracker: Tracker) -> int:
    session = tracker.open(args.session)
    events = session.events(types=args.types)
    if args.json:
        print(
            json.dumps(
                [{"id": e.id, "type": e.type, "at": e.at, "data": e.data} for e in events], indent=2
            )
        )
        return EXIT_OK
    if not events:
        print(
            f"No events{' of type ' + ', '.join(args.types) if args.types else ''} "
            f"for session {session.id}."
        )
    for e in events:
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.at))
        data = ", ".join(f"{k}={v}" for k, v in e.data.items() if not isinstance(v, dict | list))
        print(f"{e.id:>6}  {at}  {e.type:<18}  {data[:110]}")
    return EXIT_OK


_COMMANDS: dict[str, Callable[[argparse.Namespace, Tracker], int]] = {
    "tokens": _cmd_tokens,
    "sessions": _cmd_sessions,
    "events": _cmd_events,
    "compact": lambda args, tracker: cli_compact.cmd_compact(args, tracker, _open_source),
    "restore": cli_compact.cmd_restore,
    "recall": cli_compact.cmd_recall,
    "gate": lambda args, tracker: cli_budget.cmd_gate(args, tracker, _open_source),
    "budget": lambda args, tracker: cli_budget.cmd_budget(args, tracker, _open_source),
    "demo": cli_demo.cmd_demo,
}
_COMMANDS.update(cli_hooks.COMMANDS)


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["statusline"]:
        # The status line runs every few hundred ms and must never fail: its own
        # light entry point, no store, no argument errors.
        from .cli_statusline import main as statusline_main

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
            return _COMMANDS[args.command](args, tracker)
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
