"""``ctxbudget hook EVENT``, ``ctxbudget install claude-code`` and ``uninstall``.

The shell around ``ctxbudget.claude_code.hooks`` and ``ctxbudget.claude_code.install``:
it reads the hook JSON from stdin, writes the answer, and exits with the code Claude
Code acts on. A hook's own options are parsed here, not by the main parser: a parse
error there would exit 2, which Claude Code reads as "block" (and for
UserPromptSubmit, "erase the prompt"). Here a bad option is a non-blocking error
(exit 1, shown to the user).

Wiring (``cli.app``): ``hooks.register(commands)`` next to the other commands, and
``hooks.COMMANDS`` in its ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any

from ..claude_code.hooks import DEFAULT_REPORT_TOKENS, HookOptions, HookResult, failed, run_hook

if TYPE_CHECKING:
    from ..tracker import Tracker

HOOK_EVENTS = (
    "pre-tool-use",
    "user-prompt-submit",
    "pre-compact",
    "session-start",
    "subagent-stop",
)


def register(commands: Any) -> None:
    hook = commands.add_parser(
        "hook",
        help="run as a Claude Code hook (reads the hook JSON on stdin)",
        description="Run as a Claude Code hook. EVENT: " + ", ".join(HOOK_EVENTS) + ". "
        "pre-tool-use exits 2 with the reason on stderr when a sub-agent (Task/Agent) "
        "would take the window to the blocked threshold; every other outcome, failures "
        "included, exits 0. Options after EVENT: --report-tokens N (tokens a sub-agent's "
        f"report is expected to add, default {DEFAULT_REPORT_TOKENS:,}), --policy FILE, "
        "--window N, --store URL. 'ctxbudget install claude-code' registers them.",
    )
    # optional here: a missing event is reported by the hook itself (exit 1), never as
    # argparse's exit 2, which Claude Code would take for "block"
    hook.add_argument("event", metavar="EVENT", nargs="?")
    # Taken whole and parsed in cmd_hook: see the module docstring.
    hook.add_argument("options", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    for name, verb in (("install", "add to"), ("uninstall", "remove from")):
        sub = commands.add_parser(
            name,
            help=f"{verb} Claude Code's settings ctxbudget's status line and hooks",
            description=f"{verb.capitalize()} Claude Code's settings ctxbudget's statusLine "
            "and hooks (PreToolUse "
            "on Task|Agent, UserPromptSubmit, PreCompact, SessionStart, SubagentStop): "
            "~/.claude/settings.json ($CLAUDE_CONFIG_DIR/settings.json), or the project's "
            ".claude/settings.json with --scope project. Every other byte of the file is "
            "kept; install keeps a timestamped backup, and uninstall restores the original "
            "bytes when nothing else changed since.",
        )
        sub.add_argument("target", choices=["claude-code"])
        sub.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
        sub.add_argument("--scope", choices=["user", "project"], default="user")
        sub.add_argument("--settings", metavar="PATH", help="this settings file instead")
        if name == "install":
            sub.add_argument(
                "--force",
                action="store_true",
                help="replace a statusLine that is not ctxbudget's (uninstall puts it back)",
            )
            sub.add_argument("--no-statusline", action="store_true", help="install the hooks only")
            sub.add_argument(
                "--executable",
                default="ctxbudget",
                metavar="CMD",
                help="how Claude Code runs ctxbudget (default: ctxbudget, from PATH)",
            )


def _hook_options(argv: Sequence[str]) -> tuple[HookOptions, str | None]:
    parser = argparse.ArgumentParser(prog="ctxbudget hook EVENT", exit_on_error=False)
    parser.add_argument(
        "--report-tokens",
        type=int,
        default=DEFAULT_REPORT_TOKENS,
        metavar="N",
        help=f"tokens a sub-agent's report adds to the window (default {DEFAULT_REPORT_TOKENS:,})",
    )
    parser.add_argument("--policy", metavar="FILE", help="policy TOML file (window, thresholds…)")
    parser.add_argument("--window", type=int, metavar="N", help="context window in tokens")
    parser.add_argument("--store", metavar="URL", help="sqlite:///path.db or memory://")
    args = parser.parse_args(list(argv))
    fields: dict[str, Any] = {}
    if args.policy:
        from ..policy import fields_from_toml

        fields.update(fields_from_toml(args.policy))
    if args.window is not None:
        fields["window"] = args.window
    return HookOptions(report_tokens=args.report_tokens, policy_fields=fields), args.store


def _read_stdin() -> bytes:
    stream = sys.stdin
    if stream is None or stream.isatty():
        return b""  # run by hand: no hook JSON
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        data: bytes = buffer.read()
        return data
    return stream.read().encode("utf-8", errors="replace")


def _write(stream: IO[str], text: str) -> None:
    if not text:
        return
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        stream.flush()
        buffer.write(text.encode("utf-8", errors="replace"))
        buffer.flush()
    else:
        stream.write(text)
        stream.flush()


def hook_result(args: argparse.Namespace, tracker: Tracker) -> HookResult:
    """The hook's answer, without writing it (the tests' entry point)."""
    if not args.event:
        return HookResult(
            1,
            stderr="ctxbudget hook: which event? pre-tool-use, user-prompt-submit, "
            "pre-compact, session-start or subagent-stop\n",
        )
    try:
        options, store = _hook_options(args.options)
    except SystemExit as exc:  # --help (0), or a bad option, already printed
        return HookResult(0 if exc.code in (0, None) else 1)
    except Exception as exc:
        # A bad option is the user's to fix: a non-blocking error they see (exit 1).
        return HookResult(1, stderr=f"ctxbudget hook: {exc}\n")
    try:
        raw = _read_stdin()
    except Exception as exc:
        return failed("cannot read stdin", exc)
    if store is not None:
        from ..tracker import Tracker as _Tracker

        with _Tracker(store=store) as own:
            return run_hook(args.event, raw, own, options)
    return run_hook(args.event, raw, tracker, options)


def cmd_hook(args: argparse.Namespace, tracker: Tracker) -> int:
    result = hook_result(args, tracker)
    try:
        _write(sys.stdout, result.stdout)
        _write(sys.stderr, result.stderr)
    except Exception:
        pass  # nobody listening: the exit code still counts
    return result.exit_code


def _settings_path(args: argparse.Namespace) -> Any:
    from ..claude_code.install import settings_path

    return settings_path(args.scope, args.settings)


def cmd_install(args: argparse.Namespace, tracker: Tracker) -> int:
    from ..claude_code.install import apply_install, plan_install

    plan = plan_install(
        _settings_path(args),
        executable=args.executable,
        statusline=not args.no_statusline,
        force=args.force,
    )
    return _report(plan, args.dry_run, apply_install)


def cmd_uninstall(args: argparse.Namespace, tracker: Tracker) -> int:
    from ..claude_code.install import apply_uninstall, plan_uninstall

    return _report(plan_uninstall(_settings_path(args)), args.dry_run, apply_uninstall)


def _report(plan: Any, dry_run: bool, apply: Callable[[Any], list[str]]) -> int:
    for note in plan.notes:
        print(note)
    if not plan.changed:
        print(f"Nothing to change in {plan.path}.")
        return 0
    if dry_run:
        sys.stdout.write(plan.diff())
        print(f"(dry run: {plan.path} not written)")
        return 0
    for line in apply(plan):
        print(line)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace, Tracker], int]] = {
    "hook": cmd_hook,
    "install": cmd_install,
    "uninstall": cmd_uninstall,
}


def main(argv: Sequence[str] | None = None) -> int:
    """These commands alone (``python -m ctxbudget.cli.hooks``)."""
    from ..errors import CtxBudgetError
    from ..tracker import Tracker as _Tracker
    from .common import Parser

    parser = Parser(prog="ctxbudget")
    parser.add_argument("--store", metavar="URL")
    register(parser.add_subparsers(dest="command", required=True, parser_class=Parser))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        with _Tracker(store=args.store) as tracker:
            return COMMANDS[args.command](args, tracker)
    except CtxBudgetError as exc:
        print(f"ctxbudget: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
