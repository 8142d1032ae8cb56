"""What the ``ctxbudget`` commands share: exit codes, the parser class, the policy
flags, and opening the session a command works on."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import AmbiguousSessionError, CtxBudgetError, SessionNotFoundError

TYPE_CHECKING = False  # typing and pathlib cost --help a quarter of its time
if TYPE_CHECKING:
    from typing import Any, NoReturn

    from ..policy import Policy
    from ..tracker import Session, Tracker

__all__ = [
    "EXAMPLES",
    "EXIT_BLOCKED",
    "EXIT_FAIL_ON",
    "EXIT_OK",
    "EXIT_USAGE",
    "STORE_HELP",
    "HelpFormatter",
    "Parser",
    "UsageError",
    "add_examples",
    "color",
    "open_source",
    "policy_fields",
    "policy_flags",
    "writes_store",
]

EXIT_OK, EXIT_FAIL_ON, EXIT_USAGE, EXIT_BLOCKED = 0, 1, 2, 3

STORE_HELP = (
    "sqlite:////abs/path.db (three slashes: a path relative to the working directory), "
    "postgresql://user@host/db?schema=NAME (the postgres extra) or memory:// (default: "
    "$CTXBUDGET_STORE, else SQLite in your data dir)"
)


class UsageError(CtxBudgetError):
    """Bad command-line input."""


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, except that a text with line breaks (an epilog of
    examples, a list) is printed as written: one example per line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" not in text:  # a plain paragraph (every description): as argparse does
            return super()._fill_text(text, width, indent)
        return "\n".join(indent + line for line in text.splitlines())


class Parser(argparse.ArgumentParser):
    """Usage errors in one line, with where to look for help (exit 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"ctxbudget: error: {message} (see: {self.prog} --help)\n")


# One example per command, shown at the end of its --help (``add_examples``).
EXAMPLES: dict[str, str] = {
    "tokens": "examples:\n  ctxbudget tokens ~/.claude/projects/-home-me-app/3f2a9c.jsonl "
    "--breakdown\n  ctxbudget tokens --history --model claude-sonnet-4-5",
    "sessions": "examples:\n  ctxbudget sessions --limit 5\n"
    "  ctxbudget sessions --claude-code --json",
    "events": "example:\n  ctxbudget events 3f2a9c --type compacted,threshold_crossed",
    "compact": "examples:\n  ctxbudget compact session.jsonl --dry-run --ratio 5\n"
    "  ctxbudget compact 3f2a9c --target-percent 50",
    "restore": "example:\n  ctxbudget restore 3f2a9c --to 1",
    "recall": 'example:\n  ctxbudget recall 3f2a9c "database schema" --budget 800',
    "gate": "example:\n  ctxbudget gate 3f2a9c --agent researcher --tokens 20000",
    "budget": "example:\n  ctxbudget budget session.jsonl --json",
    "demo": "example:\n  ctxbudget demo analyst --quiet",
    "install": "example:\n  ctxbudget install claude-code --dry-run",
    "uninstall": "example:\n  ctxbudget uninstall claude-code",
    "scrub": "example:\n  ctxbudget scrub --dry-run --json",
    "mcp": "example (an MCP client's server command):\n  ctxbudget mcp --session 3f2a9c",
}


def add_examples(commands: Any) -> None:
    """Give each subcommand of ``commands`` without an epilog its ``EXAMPLES`` entry."""
    for name, sub in commands.choices.items():
        if not sub.epilog and name in EXAMPLES:
            sub.epilog = EXAMPLES[name]


def color(stream: Any) -> bool:
    """Whether to colour what goes to ``stream``: a terminal, and no ``NO_COLOR``."""
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


# Commands that only read the store unless a flag says otherwise: a read never creates
# a store (an explicit --store that does not exist is an error, the default one on a
# first run reads as empty). The others (hooks, install, demo…) open it as they did.
_READS = frozenset({"sessions", "events", "recall", "restore", "tokens", "gate", "budget", "scrub"})


def writes_store(args: argparse.Namespace) -> bool:
    """Whether this command line may create the store (store something new in it)."""
    command = getattr(args, "command", None)
    if command == "compact":
        return not getattr(args, "dry_run", False)
    if command in _READS:
        return bool(getattr(args, "record", False))
    return True


def count(text: str) -> int:
    """An argparse type: a whole number, 0 or more (exchanges or results to keep)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (got {value})")
    return value


def policy_flags(parser: argparse.ArgumentParser) -> None:
    """Add the policy flags (``--policy FILE``, ``--window``, thresholds…) to ``parser``."""
    group = parser.add_argument_group("policy")
    group.add_argument("--policy", metavar="FILE", help="policy TOML file (window, thresholds…)")
    group.add_argument("--window", type=int, help="context window in tokens (default: by model)")
    group.add_argument("--model", help="model name: picks the window and the counter")
    group.add_argument(
        "--counter",
        help="token counter: o200k_base, cl100k_base, claude-estimate, claude (ctok: "
        "the [claude] extra, slower), estimate or hf:PATH (default: by model; Claude "
        "models: claude-estimate)",
    )
    group.add_argument("--reserved-output", type=int, metavar="N", help="tokens kept for output")
    group.add_argument("--safety-margin", type=int, metavar="N", help="tokens kept free")
    group.add_argument("--warning", type=float, metavar="PCT", help="warning threshold (75)")
    group.add_argument("--critical", type=float, metavar="PCT", help="critical threshold (90)")
    group.add_argument("--blocked", type=float, metavar="PCT", help="blocked threshold (95)")


#: The policy flags (``policy_flags``) by their attribute names, each with the policy
#: field it sets; ``--policy FILE`` is read apart (``policy_fields``).
_POLICY_FLAGS = {
    "window": "window",
    "model": "model",
    "counter": "counter",
    "reserved_output": "reserved_output",
    "safety_margin": "safety_margin",
    "warning": "warning_percent",
    "critical": "critical_percent",
    "blocked": "blocked_percent",
}


def compact_command(args: argparse.Namespace, source: str | None = None) -> str:
    """The ``ctxbudget compact`` command for the session this command read: its store,
    its source (``source``, else ``args.source``) and the policy flags it was given (the
    same window and thresholds), to print as advice that runs as written."""
    import shlex

    words = ["ctxbudget"]
    if getattr(args, "store", None):
        words += ["--store", args.store]
    words.append("compact")
    source = source or getattr(args, "source", None)
    if source:
        words.append(source)
    for name in ("policy", *_POLICY_FLAGS):
        value = getattr(args, name, None)
        if value is not None:
            words += ["--" + name.replace("_", "-"), str(value)]
    return shlex.join(words)


def policy_fields(args: argparse.Namespace) -> dict[str, Any]:
    """Policy settings given on this command line: the file's, then the flags'."""
    from ..policy import fields_from_toml  # imported here: `ctxbudget --help` skips it

    # a command without policy flags (recall) reads a session as the others do
    policy = getattr(args, "policy", None)
    fields = fields_from_toml(policy) if policy else {}
    flags = {field: getattr(args, name, None) for name, field in _POLICY_FLAGS.items()}
    fields.update({k: v for k, v in flags.items() if v is not None})
    return fields


#: From this size a file takes seconds to read (a 100k-item session is ~150 MB), and
#: from this many items a compaction takes seconds to plan: a line on stderr says what
#: is being done. Only where stderr is a terminal: pipes, hooks and --json stay clean.
PROGRESS_FROM_BYTES = 20 << 20
PROGRESS_FROM_ITEMS = 20_000


def progress(message: str) -> None:
    """One line on stderr saying what a long piece of work is doing (terminals only)."""
    if sys.stderr.isatty():
        print(f"ctxbudget: {message}…", file=sys.stderr, flush=True)


def open_source(
    tracker: Tracker, source: str | None, args: argparse.Namespace, *, live_first: bool = False
) -> Session:
    """A session from a file, a stored id, or the newest Claude Code session.

    Policy flags apply to this run only; ``--record`` stores them with the session.
    ``live_first``: a stored session whose Claude Code transcript is on this machine is
    read from the transcript, in the stored policy (what ``recall`` searches: both),
    also when the store holds its context.
    """
    from ..policy import window_assumption
    from ..sources import claude_projects_dir, find_latest_claude_session

    fields = policy_fields(args)
    note = None if "window" in fields else window_assumption(fields.get("model"))
    if note:
        print(f"ctxbudget: note: {note}", file=sys.stderr)
    if source is None:
        latest = find_latest_claude_session()
        if latest is None:
            raise UsageError(
                f"no Claude Code session found under {claude_projects_dir()}: "
                "give a transcript file or a stored session id"
            )
        source = str(latest)
    from pathlib import Path

    def from_file(path: Path, policy: Policy | None = None) -> Session:
        """``path`` read; ``policy``: a stored session's, when it is that session's."""
        from ..claude_code.windows import with_remembered_window
        from ..sources import load_source

        size = path.stat().st_size if path.is_file() else 0
        if size >= PROGRESS_FROM_BYTES:
            progress(f"reading {path.name} ({size / 1e6:,.1f} MB)")
        loaded = tracker.load(with_remembered_window(load_source(path)), policy=policy, **fields)
        # Bad records the reader skipped or kept as unknown, one line each (file:line).
        for problem in loaded.transcript.problems if loaded.transcript else []:
            print(f"ctxbudget: note: {problem}", file=sys.stderr)
        return loaded

    path = Path(source).expanduser()
    if path.exists():
        return from_file(path)
    from ..sources import find_claude_session

    # a Claude Code session by its id: its transcript, as the MCP tools read it, unless
    # the store holds its context (a compacted copy); the hooks register a session
    # with its usages alone, and its context is the transcript's
    try:
        session = tracker.open(source)
    except AmbiguousSessionError as exc:
        raise UsageError(str(exc)) from exc
    except SessionNotFoundError as exc:
        if (live := find_claude_session(source, prefix=True)) is not None:
            return from_file(live)
        if any(sep in source for sep in ("/", "\\")) or path.suffix:
            raise UsageError(f"{source}: no such file") from exc
        raise UsageError(
            f"{source}: no such file, no Claude Code session with that id, and no stored "
            f"session with that id in {tracker.store.url}"
        ) from exc
    if (not session.items or live_first) and (live := find_claude_session(session.id)) is not None:
        # by its full id (a prefix found it in the store), in the policy stored with it
        # (the window the hooks were given), as the hooks read it
        return from_file(live, session.policy)
    if fields:
        policy = session.policy.replace(**fields)
        if getattr(args, "record", False):
            session.set_policy(policy)
        else:
            session.policy = policy
    return session
