"""Do exchanges left, ETA and the post-compaction overhead make sense on real sessions?

For every Claude Code transcript in shared/data/claude-code, as ``ctxbudget tokens``
loads it (its end), prints the free tokens, the exchanges left and the ETA, with the
typical and the smallest of the latest ten exchanges and the median gap, and checks:

    unknown     exchanges left unknown only with fewer than 2 exchanges in the context
    bounded     0 <= exchanges <= free // smallest recent exchange
    positive    exchanges > 0 whenever free >= the typical exchange
    eta         ETA unknown (idle, no pace) or within a day

The baseline, in the same run, is the estimate before issue 12: the conversation's
tokens per user turn and the median gap between user turns (``old ex`` / ``old ETA``).

Then, for each compaction Claude Code made in these sessions, the overhead (system
prompt and tools: usage minus transcript) estimated from the calls before it against
what the first call after it measured, and the 0 counted before.

    python benchmarks/estimates_sanity.py [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from _data import data_dir

from ctxbudget import Tracker
from ctxbudget.accounting import estimate_overhead, replay_history
from ctxbudget.budget.forecast import MAX_ETA_SECONDS, MIN_EXCHANGES
from ctxbudget.model import Kind

_OLD_KINDS = {
    Kind.USER_TEXT,
    Kind.ASSISTANT_TEXT,
    Kind.TOOL_CALL,
    Kind.TOOL_RESULT,
    Kind.FILE_READ,
    Kind.SEARCH_RESULT,
    Kind.AGENT_REPORT,
    Kind.THINKING,
}


def _old_estimate(session: Any, remaining: int) -> tuple[int | None, float | None]:
    """Before issue 12: remaining // (per_token × conversation / user turns), times the
    median gap of the last ten user turns."""
    k = session.calibration.per_token
    conversation = sum(i.tokens or 0 for i in session.items if i.kind in _OLD_KINDS)
    turns = [i.created_at for i in session.items if i.kind is Kind.USER_TEXT]
    if not turns or not conversation:
        return None, None
    exchanges = int(remaining // (k * conversation / len(turns)))
    gaps = sorted(b - a for a, b in itertools.pairwise(turns[-11:]) if b - a > 0.5)
    return exchanges, (exchanges * gaps[len(gaps) // 2] if gaps else None)


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def check(session: Any) -> dict[str, Any]:
    st = session.status()
    k, c = session.calibration.per_token, session.framing
    sizes = session.totals.recent_exchanges(k, c)
    count = len(session.totals.exchanges)
    smallest = min((s for s in sizes if s > 0), default=None)
    free, n = st.remaining_tokens, st.estimated_exchanges_left
    old_n, old_eta = _old_estimate(session, free)
    checks = {
        "unknown": (n is None) == (len([s for s in sizes if s > 0]) < MIN_EXCHANGES) or free <= 0,
        "bounded": n is None or (smallest is not None and 0 <= n <= free // smallest),
        "positive": n is None
        or st.tokens_per_exchange is None
        or free < st.tokens_per_exchange
        or n > 0,
        "eta": st.eta_seconds is None or st.eta_seconds <= MAX_ETA_SECONDS,
    }
    return {
        "session": session.id[:8],
        "used": st.used_tokens,
        "free": free,
        "exchanges_in_context": count,
        "tokens_per_exchange": st.tokens_per_exchange,
        "smallest_exchange": smallest,
        "seconds_per_exchange": st.seconds_per_exchange,
        "exchanges_left": n,
        "eta_seconds": None if st.eta_seconds is None else round(st.eta_seconds),
        "old_exchanges_left": old_n,
        "old_eta_seconds": None if old_eta is None else round(old_eta),
        "checks": checks,
        "ok": all(checks.values()),
    }


def overhead_after_compactions(session: Any) -> list[dict[str, Any]]:
    transcript = session.transcript
    points, _ = replay_history(
        transcript.calls, transcript.history_items, session.count, session.new_calibration()
    )
    out = []
    for at in transcript.compactions:
        if at == 0 or at >= len(points):
            continue
        estimate = estimate_overhead([p.overhead_tokens for p in points[:at]]) or 0
        actual = points[at].overhead_tokens
        out.append(
            {
                "session": session.id[:8],
                "call": at,
                "estimated": estimate,
                "measured": actual,
                "error": estimate - actual,
                "error_before": -actual,  # 0 was counted before issue 12
            }
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared/data directory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    root = data_dir(args.data, "claude-code")
    tracker = Tracker(store="memory://")
    rows, overheads = [], []
    for path in sorted(Path(root).glob("*.jsonl*")):
        session = tracker.load(path)
        rows.append(check(session))
        overheads.extend(overhead_after_compactions(session))
    if args.json:
        print(json.dumps({"sessions": rows, "overhead_after_compaction": overheads}, indent=2))
        return 0 if all(r["ok"] for r in rows) else 1
    head = (
        f"{'session':<9}{'used':>9}{'free':>9}{'ex.':>5}{'tok/ex':>8}{'min ex':>8}"
        f"{'s/ex':>7}{'left':>7}{'ETA':>10}{'old ex':>9}{'old ETA':>10}  checks"
    )
    print(head)
    for r in rows:
        failed = [name for name, ok in r["checks"].items() if not ok]

        def num(v: Any) -> str:
            return "?" if v is None else f"{v:,}"

        spe = "?" if r["seconds_per_exchange"] is None else f"{r['seconds_per_exchange']:.0f}"
        print(
            f"{r['session']:<9}{r['used']:>9,}{r['free']:>9,}{r['exchanges_in_context']:>5}"
            f"{num(r['tokens_per_exchange']):>8}{num(r['smallest_exchange']):>8}{spe:>7}"
            f"{num(r['exchanges_left']):>7}{_eta(r['eta_seconds']):>10}"
            f"{num(r['old_exchanges_left']):>9}{_eta(r['old_eta_seconds']):>10}  "
            + ("ok" if not failed else "FAILED " + ", ".join(failed))
        )
    ok = sum(r["ok"] for r in rows)
    print(f"\n{ok}/{len(rows)} sessions pass every check")
    if overheads:
        print("\nOverhead after Claude Code's compactions (estimated from the calls before):")
        for o in overheads:
            print(
                f"  {o['session']} call {o['call']:>3}: estimated {o['estimated']:>7,}, "
                f"measured {o['measured']:>7,} (error {o['error']:+,}; counting 0: "
                f"{o['error_before']:+,})"
            )
        errors = [abs(o["error"]) for o in overheads]
        before = [abs(o["error_before"]) for o in overheads]
        print(
            f"  median |error| {statistics.median(errors):,.0f} tokens, against "
            f"{statistics.median(before):,.0f} counting 0 "
            f"(ratio {statistics.median(before) / max(1.0, statistics.median(errors)):.1f}×)"
        )
    return 0 if ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
