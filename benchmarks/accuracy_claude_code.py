"""How close is ctxbudget's context size to what the API reported, call by call?

For every Claude Code transcript in shared/data/claude-code: at each main-thread API
call (after the first of each context), ctxbudget predicts the context size from what
it knew before the call (the previous reported usage plus its local count of what was
added since, corrected per session) and the API's own usage says what it was. Baselines
in the same run: chars/4 of the whole context without anchoring, and chars/4 of what
was added, anchored on the previous usage.

    python benchmarks/accuracy_claude_code.py [--counter NAME] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import data_dir

from ctxbudget import Tracker
from ctxbudget.tokens.counters import counter_name_for_model


def score(errors: list[float]) -> dict[str, float]:
    if not errors:
        return {"calls": 0, "within_5": 0.0, "within_1": 0.0, "median_error": 0.0}
    return {
        "calls": len(errors),
        "within_5": sum(abs(e) <= 0.05 for e in errors) / len(errors),
        "within_1": sum(abs(e) <= 0.01 for e in errors) / len(errors),
        "median_error": statistics.median(abs(e) for e in errors),
    }


def _file_chars_before_calls(path: Path) -> dict[str, int]:
    """The naive count: the main thread's transcript text so far, as written, over 4."""
    opener = gzip.open if path.suffix == ".gz" else open
    seen: dict[str, int] = {}
    total = 0
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("isSidechain"):
                continue
            message = record.get("message") or {}
            mid = message.get("id") if isinstance(message, dict) else None
            if mid and mid not in seen and record.get("type") == "assistant":
                seen[mid] = total
            total += len(line)
    return seen


def evaluate(path: Path, counter: str | None) -> dict[str, object]:
    tracker = Tracker(store="memory://")
    started = time.perf_counter()
    session = (
        tracker.load(path, policy=None) if counter is None else tracker.load(path, counter=counter)
    )
    points = session.history()
    elapsed = time.perf_counter() - started
    transcript = session.transcript
    assert transcript is not None
    calls = transcript.calls
    items = transcript.history_items
    ours, naive, anchored = [], [], []
    file_chars = _file_chars_before_calls(path)
    for i, call in enumerate(calls):
        added_chars = sum(len(items[j].text) for j in call.added_items)
        if call.anchor_call is None:
            continue  # the first call of a context: nothing known before it
        reported = call.usage.context_tokens
        ours.append(points[i].error)
        if call.message_id in file_chars:
            naive.append((file_chars[call.message_id] / 4 - reported) / reported)
        prev = calls[call.anchor_call].usage.context_tokens
        anchored.append((prev + added_chars / 4 - reported) / reported)
    return {
        "session": path.name.split("_", 1)[-1].split(".")[0][:8],
        "counter": session.counter.name,
        "seconds": elapsed,
        "ctxbudget": score(ours),
        "chars4": score(naive),
        "chars4_anchored": score(anchored),
        "_errors": (ours, naive, anchored),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared/data directory")
    parser.add_argument("--counter", help="counter to use (default: by each session's model)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = data_dir(args.data, "claude-code")
    results = [evaluate(p, args.counter) for p in sorted(folder.glob("*.jsonl*"))]
    totals = [score([e for r in results for e in r["_errors"][k]]) for k in range(3)]  # type: ignore[index]
    if args.json:
        for r in results:
            r.pop("_errors")
        print(
            json.dumps(
                {
                    "sessions": results,
                    "total": dict(
                        zip(("ctxbudget", "chars4", "chars4_anchored"), totals, strict=True)
                    ),
                },
                indent=2,
            )
        )
        return 0
    print(
        f"Context-size prediction vs the API's reported usage "
        f"(default counter for claude-*: {counter_name_for_model('claude-sonnet-4')})\n"
    )
    head = (
        f"{'session':<9} {'counter':<11} {'calls':>5} │ {'±5%':>6} {'±1%':>6} {'median':>7} │"
        f" {'c/4 ±5%':>7} │ {'c/4+anchor ±1%':>14} │ {'time':>6}"
    )
    print(head)
    print("─" * len(head))
    for r in results:
        ours, naive, anch = r["ctxbudget"], r["chars4"], r["chars4_anchored"]  # type: ignore[assignment]
        if not ours["calls"]:  # type: ignore[index]
            print(f"{r['session']:<9} {r['counter']:<11} {0:>5} │ no API usage in this transcript")
            continue
        print(
            f"{r['session']:<9} {r['counter']:<11} {ours['calls']:>5} │ {ours['within_5']:>6.1%} "  # type: ignore[index]
            f"{ours['within_1']:>6.1%} {ours['median_error']:>7.2%} │ {naive['within_5']:>7.1%} │"  # type: ignore[index]
            f" {anch['within_1']:>14.1%} │ {r['seconds']:>5.2f}s"
        )  # type: ignore[index]
    print("─" * len(head))
    o, n, a = totals
    print(
        f"{'TOTAL':<9} {'':<11} {o['calls']:>5} │ {o['within_5']:>6.1%} {o['within_1']:>6.1%} "
        f"{o['median_error']:>7.2%} │ {n['within_5']:>7.1%} │ {a['within_1']:>14.1%} │"
    )
    print(
        f"\nctxbudget vs chars/4 anchored, share within ±1%: {o['within_1']:.1%} vs "
        f"{a['within_1']:.1%} ({o['within_1'] / a['within_1']:.2f}×); median error "
        f"{o['median_error']:.3%} vs {a['median_error']:.3%} "
        f"({a['median_error'] / max(o['median_error'], 1e-9):.1f}× smaller)"
    )
    print(
        f"ctxbudget vs chars/4 unanchored, share within ±5%: {o['within_5']:.1%} vs "
        f"{n['within_5']:.1%}"
    )
    print("Goal: ≥ 99% within ±5% and ≥ 97% within ±1%.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
