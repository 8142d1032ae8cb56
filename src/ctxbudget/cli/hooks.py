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

from ..claude_code.hooks import (
    DEFAULT_REPORT_TOKENS,
    FAIL_OPEN_ENV,
    HOOK_EVENTS,
    MAX_STDIN_BYTES,
    HookOptions,
    HookResult,
    failed,
    run_hook,
)

if TYPE_CHECKING:
    from ..tracker import Tracker

# Shown by "ctxbudget hook --help": the events and the options read after EVENT.
HOOK_EPILOG = f"""events:
  pre-tool-use        PreToolUse on Task|Agent: exit 2 (block) when the
                      sub-agent would take the window to the blocked level
  post-tool-use       PostToolUse: as user-prompt-submit, after a tool
  user-prompt-submit  UserPromptSubmit: at 75% (warning) and 90% (critical),
                      once per crossing, a line for the user and the model
  pre-compact         PreCompact: records Claude Code's compaction; on
                      "/compact --dry-run", the preview and exit 2
  session-start       SessionStart: registers the session; after a
                      compaction, notes the new context's size
  subagent-stop       SubagentStop: records the sub-agent's own usage
options (after EVENT):
  --report-tokens N   tokens a sub-agent's report adds (default {DEFAULT_REPORT_TOKENS:,})
  --policy FILE       policy TOML file (window, thresholds…)
  --window N          context window in tokens
  --store URL         sqlite:////abs/path.db or memory://
  --plugin            as the plugin's hook: stands down where settings.json
                      runs ctxbudget's hook for the same event
example (as "ctxbudget install claude-code" writes it; hook JSON on stdin):
  ctxbudget hook pre-tool-use --report-tokens 8000"""


def register(commands: Any) -> None:
    hook = commands.add_parser(
        "hook",
        help="run as a Claude Code hook (reads the hook JSON on stdin)",
        description="Run as a Claude Code hook. EVENT: " + ", ".join(HOOK_EVENTS) + ". "
        "pre-tool-use exits 2 with the reason on stderr when a sub-agent (Task/Agent) "
        "would take the window to the blocked threshold, or when it cannot decide (unless "
        f"--fail-open or {FAIL_OPEN_ENV}=1); every other outcome exits 0, or 1 with a line on "
        "stderr when an event could not be recorded. Options after EVENT: --fail-open, "
        "--report-tokens N (tokens a sub-agent's "
        f"report is expected to add, default {DEFAULT_REPORT_TOKENS:,}), --policy FILE, "
        "--window N, --store URL. 'ctxbudget install claude-code' registers them.",
        epilog=HOOK_EPILOG,
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
            "kept; install keeps a backup (settings.json.HASH.ctxbudget.bak, named by the "
            "original's contents), and uninstall restores the original "
            "bytes when nothing else changed since.",
        )
        sub.add_argument("target", choices=["claude-code"], nargs="?", default="claude-code")
        sub.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
        sub.add_argument("--scope", choices=["user", "project"], default="user")
        sub.add_argument("--settings", metavar="PATH", help="this settings file instead")
        sub.add_argument(
            "--commands",
            action="store_true",
            help="also the user commands /tokens, /recall, /budget and /preview "
            "(~/.claude/commands)",
        )
        if name == "install":
            sub.add_argument(
                "--force",
                action="store_true",
                help="replace a statusLine that is not ctxbudget's (uninstall puts it back)",
            )
            sub.add_argument("--no-statusline", action="store_true", help="install the hooks only")
            sub.add_argument(
                "--plugin",
                action="store_true",
                help="for the Claude Code plugin: record where this ctxbudget is (so the "
                "plugin finds it in a virtualenv not on PATH); settings.json is not touched",
            )
            sub.add_argument(
                "--executable",
                metavar="CMD",
                help="how Claude Code runs ctxbudget (default: the absolute path of this "
                "ctxbudget, so hooks work without an activated virtualenv)",
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
    parser.add_argument("--store", metavar="URL", help="sqlite:////abs/path.db or memory://")
    parser.add_argument(
        "--fail-open",
        action="store_true",
        default=None,
        help=f"let a sub-agent spawn through when the gate cannot decide ({FAIL_OPEN_ENV}=1)",
    )
    parser.add_argument("--plugin", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(list(argv))
    fields: dict[str, Any] = {}
    if args.policy:
        from ..policy import fields_from_toml

        fields.update(fields_from_toml(args.policy))
    if args.window is not None:
        fields["window"] = args.window
    options = HookOptions(
        report_tokens=args.report_tokens,
        policy_fields=fields,
        fail_open=args.fail_open,
        plugin=args.plugin,
    )
    return options, args.store


def _read_stdin() -> bytes:
    stream = sys.stdin
    if stream is None or stream.isatty():
        return b""  # run by hand: no hook JSON
    # One byte past the limit is enough to know it is too big (the hook says so).
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        data: bytes = buffer.read(MAX_STDIN_BYTES + 1)
        return data
    return stream.read(MAX_STDIN_BYTES + 1).encode("utf-8", errors="replace")


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
            stderr=f"ctxbudget hook: which event? {', '.join(HOOK_EVENTS)}\n",
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

        try:
            with _Tracker(store=store) as own:
                return run_hook(args.event, raw, own, options)
        except Exception as exc:  # closing a broken store: never a blocking exit
            return failed("the store failed", exc)
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
    from ..claude_code.install import apply_install, default_executable, plan_install

    executable = args.executable or default_executable()
    if args.plugin:
        return _install_plugin(executable, args.dry_run)
    if args.commands:
        from ..claude_code.user_commands import COMMAND_NAMES, commands_dir, write_user_commands

        if args.dry_run:
            for name in COMMAND_NAMES:
                print(f"/{name}: would write {commands_dir() / f'{name}.md'}")
        else:
            for line in write_user_commands(executable):
                print(line)
    plan = plan_install(
        _settings_path(args),
        executable=executable,
        statusline=not args.no_statusline,
        force=args.force,
    )
    return _report(plan, args.dry_run, lambda plan: apply_install(plan, commands=args.commands))


def _install_plugin(executable: str, dry_run: bool) -> int:
    from ..claude_code.plugin import plugin_executable_files, record_plugin_executable

    if dry_run:
        for path in plugin_executable_files():
            print(f"Would record {executable} in {path}")
        return 0
    for path in record_plugin_executable(executable):
        print(f"Recorded {executable} in {path}")
    print(
        "The plugin will run it. In Claude Code: /plugin marketplace add <this repository>, "
        "then /plugin install ctxbudget@ctxbudget"
    )
    return 0


def cmd_uninstall(args: argparse.Namespace, tracker: Tracker) -> int:
    from ..claude_code.uninstall import apply_uninstall, plan_uninstall

    if args.commands and not args.dry_run:
        from ..claude_code.user_commands import remove_user_commands

        for line in remove_user_commands():
            print(line)
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
