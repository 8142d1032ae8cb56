"""Does `compact --ratio R` make the transcript 1/R of itself on Claude Code sessions?

For each Claude Code session of shared/data and each R, the plan that
``ctxbudget compact FILE --ratio R --dry-run`` prints (``Session.plan_compaction``):
the transcript's tokens before and after (what the provider counts beyond the
transcript, system prompt and tools, left out of both), and the ratio reached. A plan
reaches R when the ratio is within ±5% of it; over R+5% it took more than it was asked
to, under R−5% it stopped at what must stay (the last exchange, the todo list, facts).

    python benchmarks/ratio_claude_code.py [--data DIR] [--ratios 2,3,5,10] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import data_dir

from ctxbudget import Tracker
from ctxbudget.compaction import CompactionPolicy
from ctxbudget.errors import CtxBudgetError

CLOSE = 0.05  # within ±5% of the ratio asked


def plan_row(tracker: Tracker, path: Path, ratio: float) -> dict[str, object] | None:
    session = tracker.load(path)
    t0 = time.perf_counter()
    try:
        plan = session.plan_compaction(CompactionPolicy(target_ratio=ratio))
    except CtxBudgetError:
        return None  # an empty session: nothing to compact
    seconds = time.perf_counter() - t0
    before = plan.used_before - plan.overhead
    after = plan.used_after - plan.overhead
    reached = before / max(1, after)
    verdict = "reached"
    if reached > ratio * (1 + CLOSE):
        verdict = "over"
    elif reached < ratio * (1 - CLOSE):
        verdict = "floor"
    return {
        "session": path.name.split("_")[-1][:8],
        "ratio_asked": ratio,
        "transcript_before": before,
        "transcript_after": after,
        "ratio_reached": round(reached, 3),
        "verdict": verdict,
        "steps": [a.step for a in plan.result.actions],
        "seconds": round(seconds, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared/data directory")
    parser.add_argument("--ratios", default="2,3,5,10", help="comma-separated (default 2,3,5,10)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = data_dir(args.data, "claude-code")
    ratios = [float(r) for r in args.ratios.split(",")]
    tracker = Tracker(store="memory://")
    rows = [
        row
        for path in sorted(folder.glob("*.jsonl*"))
        for ratio in ratios
        if (row := plan_row(tracker, path, ratio)) is not None
    ]
    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("reached", "over", "floor")}
    # how far from R the plans that could reach it ended (the floor ones could not)
    off = [
        abs(float(r["ratio_reached"]) / float(r["ratio_asked"]) - 1)  # type: ignore[arg-type]
        for r in rows
        if r["verdict"] != "floor"
    ]
    total = {
        "plans": len(rows),
        **counts,
        "median_off": round(statistics.median(off), 4) if off else None,
        "max_off": round(max(off), 4) if off else None,
    }
    if args.json:
        print(json.dumps({"plans": rows, "total": total}, indent=2))
        return 0
    print("compact --ratio R on Claude Code sessions: the transcript before and after (tokens)")
    print(f"{'session':9} {'R':>4} {'before':>9} {'after':>8} {'reached':>8}  verdict  last steps")
    for r in rows:
        steps = ", ".join(r["steps"][-2:])  # type: ignore[index]
        print(
            f"{r['session']:9} {r['ratio_asked']:>4g} {r['transcript_before']:>9,} "
            f"{r['transcript_after']:>8,} {r['ratio_reached']:>7.2f}×  {r['verdict']:7}  {steps}"
        )
    print()
    print(
        f"{total['plans']} plans: {counts['reached']} within ±5% of R, {counts['over']} over "
        f"(took more than asked), {counts['floor']} stopped at what must stay"
    )
    if off:
        print(
            "distance from R, the plans not stopped at the floor: "
            f"median {total['median_off']:.1%}, largest {total['max_off']:.1%}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
