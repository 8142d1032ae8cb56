"""``ctxbudget demo analyst``: the analyst example's session replayed through the engine (demo.py).

Wiring (``cli.app``): ``demo.register(commands)`` in ``build_parser``, and
``"demo": demo.cmd_demo`` in ``COMMANDS`` (``main`` calls it as
``cmd_demo(args, tracker)``).

The demo writes nowhere unless asked: its store is ``memory://`` unless ``--store URL``
is given (before or after ``demo``). The tracker ``main`` passes opens the user's default
store, so it is not used for a parsed command line; it serves callers that build their
own ``Namespace`` without a store (tests, embedding).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from ..demo import AnalystRun, run_analyst
from ..errors import ConfigurationError
from ..tracker import Tracker

SCENARIOS = ("analyst",)
DEFAULT_STORE = "memory://"


def register(commands: Any) -> None:
    """Add the ``demo`` subcommand to ``commands`` (an argparse subparsers action)."""
    demo = commands.add_parser(
        "demo",
        help="replay the analyst example through the engine (epic EP24)",
        description="Replay the analyst example's requirements session (epic EP24, 25 exchanges, a "
        "12,000-token window with 2,000 reserved for output) through a real session: "
        "usage recorded per request, compaction when the conversation passes 70% of the "
        "working budget, every requirement, decision and open question checked at the end. "
        "Prints one line per exchange, the compactions, the budget monitor and the final "
        f"token budget report. The session is kept in {DEFAULT_STORE} (nothing is written "
        "to your store) unless --store URL is given.",
        # cli.app adds --store to every subcommand after registering them: the same flag,
        # so let the later definition replace this one instead of clashing.
        conflict_handler="resolve",
    )
    demo.add_argument("scenario", choices=SCENARIOS, help="the scenario to replay")
    demo.add_argument("--json", action="store_true", help="one JSON object on stdout")
    demo.add_argument("--quiet", action="store_true", help="no per-exchange lines")
    demo.add_argument(
        "--store",
        metavar="URL",
        default=argparse.SUPPRESS,
        help=f"keep the session and its events in this store (default: {DEFAULT_STORE}, "
        "nothing is written to your store)",
    )
    # Marks a command line parsed here: its default store is memory://, whatever
    # tracker the caller opened.
    demo.set_defaults(demo_default_store=DEFAULT_STORE)


def _tracker(args: argparse.Namespace, tracker: Tracker | None) -> tuple[Tracker, bool]:
    """The tracker to run in, and whether it is ours to close."""
    url = getattr(args, "store", None)
    if url:
        return Tracker(store=url), True  # asked for: the caller's tracker is ignored
    default = getattr(args, "demo_default_store", None)
    if default is None and tracker is not None:
        return tracker, False
    return Tracker(store=default or DEFAULT_STORE), True


def cmd_demo(args: argparse.Namespace, tracker: Tracker | None = None) -> int:
    """Run the scenario; print it (or ``--json``). Returns the exit code (0)."""
    use, owned = _tracker(args, tracker)
    quiet = bool(getattr(args, "quiet", False) or getattr(args, "json", False))
    try:
        run = _run(args.scenario, use, None if quiet else print)
        if getattr(args, "json", False):
            data = run.to_dict()
            data["store"] = getattr(args, "store", None) or (
                DEFAULT_STORE if owned else "caller's tracker"
            )
            print(json.dumps(data, ensure_ascii=False, indent=2))
            return 0
        if not quiet:
            print()
        print(run.monitor())
        print()
        print(run.report())
        url = getattr(args, "store", None)
        if url:
            print(
                f"Session {run.session.id} stored in {url} "
                f"(see: ctxbudget events {run.session.id[:12]})."
            )
        elif owned:
            print("In memory only; --store URL keeps the session and its events.")
        return 0
    finally:
        if owned:
            use.close()


def _run(scenario: str, tracker: Tracker, emit: Callable[[str], None] | None) -> AnalystRun:
    if scenario != "analyst":  # argparse refuses others; a hand-built Namespace may not
        raise ConfigurationError(
            f"unknown demo scenario {scenario!r}: choose from {', '.join(SCENARIOS)}"
        )
    return run_analyst(tracker, on_event=emit)
