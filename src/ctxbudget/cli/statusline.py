"""``ctxbudget statusline``: the command for Claude Code's ``statusLine`` setting.

    "statusLine": {"type": "command", "command": "ctxbudget statusline --color always"}

It reads Claude Code's JSON on stdin and prints one line, e.g.
``Sonnet 4 | Tokens: 142,500/200,000 (71%) | ████████░░ | Normal``. It always exits
0 and never prints a traceback: a status line that fails would blank the user's
prompt (``CTXBUDGET_DEBUG=1`` prints what went wrong on stderr).

Two entry points: ``register(commands)`` / ``cmd_statusline(args, tracker)`` for the
``ctxbudget`` command, and ``main()`` (``python -m ctxbudget.cli.statusline``), which
parses its few flags by hand so that nothing but what the line needs is imported.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any

DESCRIPTION = (
    "Print one status line for Claude Code's statusLine setting: model, tokens used / "
    "window, percent, bar, level and, from the warning level on, what to do. Reads "
    "Claude Code's JSON on stdin; the figure is ctxbudget tokens' of the transcript at "
    "transcript_path (read incrementally, cached), or context_window.current_usage "
    "where that is newer than the transcript or the transcript cannot be read. Always "
    "exits 0."
)
FORMAT_HELP = (
    "line format with placeholders {model} {used} {max} {percent} {bar} {level} "
    "{action} {remaining} {session} (default: $CTXBUDGET_STATUSLINE_FORMAT, else "
    '"{model} | Tokens: {used}/{max} ({percent}%%) | {bar} | {level}{action}")'
)
COLOR_CHOICES = ("auto", "always", "never")
EXAMPLE = (
    "example (Claude Code settings.json):\n"
    '  "statusLine": {"type": "command", "command": "ctxbudget statusline --color always"}'
)


def _add_flags(parser: argparse.ArgumentParser) -> None:
    # Lenient types: a bad value in settings.json must not blank the line (argparse
    # would exit 2), so values are checked here, and ignored when wrong.
    parser.add_argument("--format", metavar="FMT", help=FORMAT_HELP)
    parser.add_argument(
        "--window",
        metavar="N",
        help="context window in tokens when Claude Code does not send context_window_size "
        "(default: the policy file's, else by model)",
    )
    parser.add_argument(
        "--policy", metavar="FILE", help="policy TOML file (thresholds, reserves, window)"
    )
    parser.add_argument(
        "--color",
        metavar="{auto,always,never}",
        default="auto",
        help="ANSI colours by level; auto: only on a terminal and without NO_COLOR "
        "(Claude Code shows colours: use always there)",
    )


def register(commands: Any) -> None:
    """Add ``statusline`` to the ``ctxbudget`` subcommands."""
    parser = commands.add_parser(
        "statusline",
        help="one status line for Claude Code (JSON on stdin)",
        description=DESCRIPTION,
        epilog=EXAMPLE,
    )
    _add_flags(parser)


def _window(value: Any) -> int | None:
    try:
        window = int(str(value).replace(",", "").replace("_", ""))
    except (TypeError, ValueError):
        if value is not None:
            _debug(f"--window {value!r} is not a number: ignored")
        return None
    return window if window > 0 else None


def _use_color(mode: Any) -> bool:
    if mode == "always":
        return True
    if mode == "never":
        return False
    if mode not in (None, "auto"):
        _debug(f"--color {mode!r}: expected auto, always or never; auto used")
    try:
        return bool(sys.stdout.isatty()) and "NO_COLOR" not in os.environ
    except (AttributeError, ValueError):
        return False


def _debug(message: str) -> None:
    if os.environ.get("CTXBUDGET_DEBUG"):
        print(f"ctxbudget statusline: {message}", file=sys.stderr)


# Claude Code's payload is a few KB; more than this is not its payload.
_MAX_STDIN = 1 << 20


def _read_stdin() -> str:
    stream = sys.stdin
    if stream is None or stream.isatty():
        return ""  # run by hand, nothing piped: do not wait for input
    buffer = getattr(stream, "buffer", None)
    data = buffer.read(_MAX_STDIN) if buffer is not None else stream.read(_MAX_STDIN)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return str(data)


def _write(line: str) -> None:
    data = (line + "\n").encode("utf-8", "replace")
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is not None:
        buffer.write(data)
        buffer.flush()
    else:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def run(fmt: str | None, window: Any, policy: str | None, color: Any) -> int:
    """Read stdin, print the line, return 0 whatever happens."""
    try:
        from ..claude_code.statusline import render_statusline

        try:
            text = _read_stdin()
        except Exception as exc:
            _debug(f"stdin not read ({exc})")
            text = ""
        line = render_statusline(
            text, fmt=fmt, window=_window(window), policy_file=policy, color=_use_color(color)
        )
        _write(line)
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:
        import contextlib

        with contextlib.suppress(OSError):  # silence the flush at interpreter exit
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    except Exception as exc:
        _debug(f"internal error: {type(exc).__name__}: {exc}")
    return 0


def cmd_statusline(args: argparse.Namespace, tracker: Any = None) -> int:
    """The ``ctxbudget statusline`` command (the tracker is not used: no store)."""
    return run(
        getattr(args, "format", None),
        getattr(args, "window", None),
        getattr(args, "policy", None),
        getattr(args, "color", "auto"),
    )


def _help() -> None:
    import argparse

    parser = argparse.ArgumentParser(
        prog="ctxbudget statusline",
        description=DESCRIPTION,
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_flags(parser)
    parser.print_help()


def parse_args(argv: Sequence[str]) -> dict[str, Any] | None:
    """The flags of ``argv`` (None for --help). Unknown flags are ignored, not fatal."""
    options: dict[str, Any] = {"format": None, "window": None, "policy": None, "color": "auto"}
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg in ("-h", "--help"):
            return None
        name, eq, value = arg.partition("=")
        key = name[2:] if name.startswith("--") else ""
        if key in options or key == "store":
            if not eq:
                if i >= len(args):
                    _debug(f"{name} needs a value: ignored")
                    continue
                value = args[i]
                i += 1
            if key in options:
                options[key] = value
        else:
            _debug(f"unknown argument {arg!r} ignored")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    try:
        options = parse_args(sys.argv[1:] if argv is None else argv)
        if options is None:
            _help()
            return 0
    except Exception as exc:
        _debug(f"arguments not understood ({exc})")
        options = {"format": None, "window": None, "policy": None, "color": "auto"}
    return run(options["format"], options["window"], options["policy"], options["color"])


if __name__ == "__main__":
    sys.exit(main())
