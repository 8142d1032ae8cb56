"""How fast is a budget decision? One allocation, and one cleanup, on a real store.

    python benchmarks/allocation.py [--events 10000] [--json]

A stored session (SQLite in a temporary directory) with the five budget components
and 10,000 recorded events in its ledger. Measured, median of many runs:

1. one allocation decision that fits (read the utilization, decide, log the event);
2. one allocation decision that must clean up first: the working-memory cleanup runs
   through the compaction engine and the archive (a new context version), then decides.

The targets: an allocation decision under 10 ms, a cleanup under 500 ms. The
baseline in the same run is the store's own cost of logging one event, the floor any
decision that is recorded pays.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ctxbudget import Component, Item, Kind, Role, Tracker


def _session(tracker: Tracker, events: int) -> object:
    session = tracker.session(model="gpt-4o", window=200_000)
    session.add("You are a build agent.", role="system")
    session.add("Make the test suite pass.")
    items = []
    for n in range(150):  # ~45k tokens of tool traffic in working memory
        items += [
            Item(
                role=Role.ASSISTANT,
                kind=Kind.TOOL_CALL,
                text=f'Bash {{"command": "make t{n}"}}',
                tool="Bash",
                pair_id=f"c{n}",
                component=Component.WORKING_MEMORY,
            ),
            Item(
                role=Role.TOOL,
                kind=Kind.TOOL_RESULT,
                text=f"step {n}: compiling module\n" * 40,
                tool="Bash",
                pair_id=f"c{n}",
                component=Component.WORKING_MEMORY,
            ),
        ]
    session.extend(items)
    store = tracker.store
    with store.transaction():
        for n in range(events):
            store.append_event(session.id, "usage_recorded", {"call": n, "context_tokens": n})
    return session


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tracker = Tracker(store=f"sqlite:///{Path(tmp) / 'alloc.db'}")
        session = _session(tracker, args.events)

        log = []
        for n in range(args.runs):
            t = time.perf_counter()
            tracker.store.append_event(session.id, "probe", {"n": n})  # type: ignore[attr-defined]
            log.append(time.perf_counter() - t)

        decide = []
        for _ in range(args.runs):
            t = time.perf_counter()
            decision = session.allocate("knowledge_base", 10)  # type: ignore[attr-defined]
            decide.append(time.perf_counter() - t)
            assert decision.outcome == "full"

        cleanup = []
        for _ in range(5):
            fresh = _session(tracker, 0)
            limit = fresh.budget_report().component("working_memory").allocated_tokens  # type: ignore[attr-defined]
            used = fresh.budget_report().component("working_memory").used_tokens  # type: ignore[attr-defined]
            t = time.perf_counter()
            decision = fresh.allocate("working_memory", limit - used + 5_000)  # type: ignore[attr-defined]
            cleanup.append(time.perf_counter() - t)
            assert decision.freed_by_cleanup > 0, decision
        events = len(tracker.store.events(session.id))  # type: ignore[attr-defined]

    result = {
        "events_in_ledger": events,
        "log_event_ms": median_ms(log),
        "allocation_ms": median_ms(decide),
        "allocation_with_cleanup_ms": median_ms(cleanup),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Stored session: 5 components, {result['events_in_ledger']:,} events in its ledger")
    print(f"  log one event (baseline)            {result['log_event_ms']:8.3f} ms")
    print(
        f"  one allocation decision             {result['allocation_ms']:8.3f} ms   "
        f"{result['allocation_ms'] / result['log_event_ms']:.1f}× the baseline   "
        "(target < 10 ms)"
    )
    print(
        f"  allocation that cleans up first     {result['allocation_with_cleanup_ms']:8.1f} ms"
        "   (target < 500 ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
