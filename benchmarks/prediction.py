"""How well does ctxbudget predict a session's remaining growth from its first half?

For every Claude Code transcript in shared/data/claude-code with at least --min-calls
main-thread API calls: the middle call is m = n // 2 of the n calls. The first half is
calls 0..m, the second half calls m..n-1.

Actual remaining growth: the net growth of the reported context size over the second
half, each call's change from the one before summed, leaving out the drop at the first
call after a compaction (so: last − middle when the second half has no compaction; a
rewind, where the context shrinks without a compaction, counts against the growth).

Predictions, all from what the first half shows, in the same run:

    default     Predictor() with the default prediction constants on a Task made from the first
                half: distinct files in Read/Edit/MultiEdit/Write/NotebookEdit calls,
                Task/Agent calls, and active minutes (gaps between calls capped at 5
                minutes), each scaled by calls left / calls so far.
    calibrated  the same Predictor after observe() of (a) each half of every other
                session (leave-one-session-out; sessions that share their first API
                call, i.e. one session resumed into two files, are left out together)
                and (b) this session's own first half; then predict() the same Task.
    growth      the first half's growth per call (mean without the top and bottom
                10%) × the calls left (forecast_remaining_growth, its defaults).

Every prediction is given the number of calls left (the scaling, the horizon), which a
live session does not know: the figures measure tokens per unit of work, not session
length. Error: |predicted − actual| / actual.

    python benchmarks/prediction.py [--data DIR] [--min-calls N] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import data_dir

from ctxbudget import Tracker
from ctxbudget.budget.forecast import active_minutes, forecast_remaining_growth, net_growth
from ctxbudget.budget.prediction import Predictor, Task, task_class_tokens
from ctxbudget.model import Kind
from ctxbudget.sources.tools import AGENT_TOOLS, FILE_TOOLS

IDLE_CAP_SECONDS = 300.0
# A resumed Claude Code session copies the earlier calls with the resume time as their
# timestamp: a gap under a second between two API calls says nothing of the time spent.
UNTIMED_GAP_SECONDS = 1.0
# Such a gap counts as the median of the session's measured gaps, or, with fewer than
# MIN_MEASURED of them, as DEFAULT_CALL_SECONDS (about one agent step: the measured
# medians of the sessions with full timestamps are 4–11 s).
MIN_MEASURED = 10
DEFAULT_CALL_SECONDS = 10.0
MIN_CALLS = 10


@dataclass
class Half:
    """What one half of a session shows: its task features and its net growth."""

    files: int
    agents: int
    minutes: float
    calls: int  # call-to-call steps in the half
    growth: int
    tokens: list[int]
    times: list[float]
    resets: set[int]

    def task(self, name: str, scale: float = 1.0) -> Task:
        return Task(
            name,
            files=round(self.files * scale),
            agents=round(self.agents * scale),
            minutes=self.minutes * scale,
        )


@dataclass
class Session:
    name: str
    group: str
    n: int
    middle: int
    compactions_second_half: int
    first: Half
    second: Half


def _seconds(timestamp: str | None) -> float | None:
    if not timestamp:
        return None
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _timeline(calls: list[Any]) -> list[float]:
    """Each call's time in seconds, a gap under ``UNTIMED_GAP_SECONDS`` (copied history)
    replaced by the median of the session's measured gaps (capped at the idle cap), or
    by ``DEFAULT_CALL_SECONDS`` when fewer than ``MIN_MEASURED`` gaps were measured."""
    raw = [_seconds(c.timestamp) for c in calls]
    known = [t for t in raw if t is not None]
    gaps = [b - a for a, b in itertools.pairwise(known)]
    measured = [min(g, IDLE_CAP_SECONDS) for g in gaps if g >= UNTIMED_GAP_SECONDS]
    enough = len(measured) >= MIN_MEASURED
    typical = statistics.median(measured) if enough else DEFAULT_CALL_SECONDS
    out = [0.0]
    for i in range(1, len(calls)):
        a, b = raw[i - 1], raw[i]
        gap = b - a if a is not None and b is not None else 0.0
        out.append(out[-1] + (gap if gap >= UNTIMED_GAP_SECONDS else typical))
    return out


def _half(session: Any, start: int, end: int, timeline: list[float]) -> Half:
    """Calls start..end (inclusive) and the main-thread items between them."""
    transcript = session.transcript
    calls = transcript.calls[start : end + 1]
    first_item = calls[0].items_before if start else 0
    last_item = calls[-1].items_before if end < len(transcript.calls) - 1 else None
    items = transcript.history_items[first_item:last_item]
    files = set()
    agents = 0
    for item in items:
        if item.kind is not Kind.TOOL_CALL:
            continue
        block = (item.raw or {}).get("block") or {}
        tool_input = block.get("input") if isinstance(block, dict) else None
        if item.tool in AGENT_TOOLS:
            agents += 1
        elif item.tool in FILE_TOOLS and isinstance(tool_input, dict):
            path = tool_input.get("file_path") or tool_input.get("notebook_path")
            if path:
                files.add(str(path))
    tokens = [c.usage.context_tokens for c in calls]
    times = timeline[start : end + 1]
    resets = {i for i, c in enumerate(calls) if i and c.after_compaction}
    return Half(
        files=len(files),
        agents=agents,
        minutes=active_minutes(times, IDLE_CAP_SECONDS),
        calls=len(calls) - 1,
        growth=net_growth(tokens, resets),
        tokens=tokens,
        times=times,
        resets=resets,
    )


def load(path: Path, min_calls: int) -> Session | str:
    """The session's halves, or why it is skipped."""
    session = Tracker(store="memory://").load(path)
    transcript = session.transcript
    assert transcript is not None
    points = session.history()
    n = len(transcript.calls)
    if n < min_calls:
        return f"{n} main-thread API call{'s' if n != 1 else ''} (< {min_calls})"
    middle = n // 2
    timeline = _timeline(transcript.calls)
    return Session(
        name=path.name.split("_", 1)[-1].split(".")[0][:8],
        group=transcript.calls[0].message_id or path.name,
        n=n,
        middle=middle,
        compactions_second_half=sum(p.after_compaction for p in points[middle + 1 :]),
        first=_half(session, 0, middle, timeline),
        second=_half(session, middle, n - 1, timeline),
    )


def _error(predicted: int | None, actual: int) -> float | None:
    if predicted is None or actual <= 0:
        return None
    return abs(predicted - actual) / actual


def evaluate(sessions: list[Session], prior_weight: float | None) -> list[dict[str, Any]]:
    rows = []
    for s in sessions:
        scale = s.second.calls / s.first.calls
        task = s.first.task(f"{s.name}-rest", scale)
        default = Predictor()
        calibrated = Predictor() if prior_weight is None else Predictor(prior_weight=prior_weight)
        for other in sessions:
            if other.group == s.group:
                continue
            for n, half in enumerate((other.first, other.second), 1):
                calibrated.observe(half.task(f"{other.name}-{n}"), max(0, half.growth))
        calibrated.observe(s.first.task(f"{s.name}-1"), max(0, s.first.growth))
        growth = forecast_remaining_growth(
            list(zip(s.first.times, s.first.tokens, strict=True)),
            s.second.calls,
            resets=s.first.resets,
        )
        predictions = {
            "default": default.predict(task),
            "calibrated": calibrated.predict(task),
            "growth": growth,
        }
        actual = s.second.growth
        rows.append(
            {
                "session": s.name,
                "calls": s.n,
                "middle": s.middle,
                "compactions_second_half": s.compactions_second_half,
                "task": task.to_dict()
                | {"class": task.level(), "class_tokens": task_class_tokens(task)},
                "first_half": {
                    "files": s.first.files,
                    "agents": s.first.agents,
                    "minutes": round(s.first.minutes, 1),
                    "growth": s.first.growth,
                },
                "actual": actual,
                "predicted": predictions,
                "error": {k: _error(v, actual) for k, v in predictions.items()},
                "calibration": {k: round(v, 3) for k, v in calibrated.calibration().items()},
            }
        )
    return rows


def fit_all(sessions: list[Session]) -> Predictor:
    """The Predictor after observing both halves of every session (for the report)."""
    predictor = Predictor()
    for s in sessions:
        for n, half in enumerate((s.first, s.second), 1):
            predictor.observe(half.task(f"{s.name}-{n}"), max(0, half.growth))
    return predictor


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | int | None]]:
    out: dict[str, dict[str, float | int | None]] = {}
    for method in ("default", "calibrated", "growth"):
        errors = [r["error"][method] for r in rows if r["error"][method] is not None]
        out[method] = {
            "sessions": len(errors),
            "median_error": statistics.median(errors) if errors else None,
            "mean_error": statistics.fmean(errors) if errors else None,
            "within_25": sum(e <= 0.25 for e in errors) / len(errors) if errors else None,
        }
    return out


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared/data directory")
    parser.add_argument("--min-calls", type=int, default=MIN_CALLS)
    parser.add_argument("--prior-weight", type=float, help="the Predictor's prior weight")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = data_dir(args.data, "claude-code")
    sessions: list[Session] = []
    skipped: dict[str, str] = {}
    for path in sorted(folder.glob("*.jsonl*")):
        loaded = load(path, args.min_calls)
        if isinstance(loaded, str):
            skipped[path.name.split("_", 1)[-1].split(".")[0][:8]] = loaded
        else:
            sessions.append(loaded)
    if len(sessions) < 2:
        print(f"skipped: {len(sessions)} usable session(s) in {folder}; need 2 or more")
        return 0
    rows = evaluate(sessions, args.prior_weight)
    totals = summary(rows)
    everything = fit_all(sessions).calibration()
    if args.json:
        print(
            json.dumps(
                {
                    "sessions": rows,
                    "skipped": skipped,
                    "total": totals,
                    "calibration_all_sessions": everything,
                },
                indent=2,
            )
        )
        return 0
    print("Remaining growth of each session predicted from its first half\n")
    head = (
        f"{'session':<9} {'calls':>5} {'mid':>4} {'cmp':>3} │ {'files':>5} {'agt':>3} "
        f"{'min':>5} {'cls':<6} │ {'actual':>8} │ {'default':>8} {'err':>5} │ "
        f"{'calibr.':>8} {'err':>5} │ {'growth':>8} {'err':>5}"
    )
    print(head)
    print("─" * len(head))
    for r in rows:
        t, p, e = r["task"], r["predicted"], r["error"]
        growth = "n/a" if p["growth"] is None else f"{p['growth']:,}"
        print(
            f"{r['session']:<9} {r['calls']:>5} {r['middle']:>4} "
            f"{r['compactions_second_half']:>3} │ {t['files']:>5} {t['agents']:>3} "
            f"{t['minutes']:>5.1f} {t['class']:<6} │ {r['actual']:>8,} │ "
            f"{p['default']:>8,} {_pct(e['default']):>5} │ {p['calibrated']:>8,} "
            f"{_pct(e['calibrated']):>5} │ {growth:>8} {_pct(e['growth']):>5}"
        )
    print("─" * len(head))
    for method, label in (
        ("default", "default constants"),
        ("calibrated", "calibrated (leave-one-session-out + own first half)"),
        ("growth", "first half's growth per call × calls left"),
    ):
        t = totals[method]
        print(
            f"{label:<52} median error {_pct(t['median_error']):>5}, mean "
            f"{_pct(t['mean_error']):>5}, within ±25%: {_pct(t['within_25'])} "
            f"({t['sessions']} sessions)"
        )
    print(
        "calibration from both halves of all sessions: "
        + ", ".join(f"{k} {v:,.2f}" for k, v in everything.items())
    )
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")
    print(
        "\nTask = the first half's distinct files, agent calls and active minutes (gaps "
        f"capped at {IDLE_CAP_SECONDS / 60:.0f} min), scaled by calls left / calls so far; "
        "cmp = compactions in the second half."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
