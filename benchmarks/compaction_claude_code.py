"""Does compaction to a fifth keep the facts that matter, on real Claude Code sessions?

For every transcript in shared/data/claude-code: the current context (after the last
compaction boundary) is compacted to at most 1/5 of its local tokens, and its fact
inventory (issue 3: files edited, files read and not edited, the latest todo list, the
user's requests) is scored against the compacted text. Baselines in the same run:
keep-last truncation to the same budget, on the same inventory; and Claude Code's own
summaries (records with ``isCompactSummary``), each scored on the inventory of the
main-thread records that preceded it since the previous boundary.

    python benchmarks/compaction_claude_code.py [--data DIR] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import data_dir, truncate
from _inventory import (
    Score,
    add_scores,
    build_inventory,
    events_from_items,
    events_from_records,
    score,
)

from ctxbudget import Tracker
from ctxbudget.compaction import compact
from ctxbudget.model import Item, Kind, Role

RATIO = 5


def short_name(path: Path) -> str:
    return path.name.split("_", 1)[-1].split(".")[0][:8]


def split_pairs(before: list[Item], after: list[Item]) -> int:
    """Tool results without their call, and calls whose result was dropped."""
    answered = {i.pair_id for i in before if i.role is Role.TOOL and i.pair_id}
    calls = {i.pair_id for i in after if i.kind is Kind.TOOL_CALL and i.pair_id}
    results = {i.pair_id for i in after if i.role is Role.TOOL and i.pair_id}
    return len(results - calls) + len((calls & answered) - results)


def claude_code_summaries(path: Path) -> list[dict[str, Any]]:
    """Each ``isCompactSummary`` record of the raw file, scored on what preceded it."""
    out = []
    span: list[dict[str, Any]] = []
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict) or record.get("isSidechain"):
                continue
            if record.get("type") == "system" and record.get("subtype") == "compact_boundary":
                span = []
                continue
            if record.get("isCompactSummary"):
                message = record.get("message") or {}
                content = message.get("content") if isinstance(message, dict) else None
                if isinstance(content, list):
                    text = "\n".join(
                        str(b.get("text", ""))
                        for b in content
                        if isinstance(b, dict) and b.get("type") == "text"
                    )
                else:
                    text = str(content or "")
                inventory = build_inventory(events_from_records(span))
                out.append(
                    {"line": number, "records_before": len(span), "score": score(inventory, text)}
                )
                span = []
                continue
            span.append(record)
    return out


def evaluate(path: Path, tracker: Tracker, runs: int) -> dict[str, Any]:
    session = tracker.load(path)
    items = session.items
    name = short_name(path)
    summaries = claude_code_summaries(path)
    total = sum(i.tokens or 0 for i in items)
    if not items or total == 0:
        return {"session": name, "skipped": "empty current context", "summaries": summaries}
    target = total // RATIO
    count = session.counter.count
    times, result, error = [], None, None
    for _ in range(runs):
        started = time.perf_counter()
        try:
            result = compact(items, count=count, target_tokens=target)
        except Exception as exc:  # report, do not stop the run
            error = f"{type(exc).__name__}: {exc}"
            break
        times.append(time.perf_counter() - started)
    inventory = build_inventory(events_from_items(items))
    tail = truncate(items, target)
    truncated = score(inventory, "\n\n".join(i.text for i in tail if i.text))
    row: dict[str, Any] = {
        "session": name,
        "counter": session.counter.name,
        "items_before": len(items),
        "tokens_before": total,
        "target_tokens": target,
        "inventory": inventory.size(),
        "unscorable": inventory.unscorable,
        "truncation": truncated,
        "truncation_items": len(tail),
        "summaries": summaries,
    }
    if result is None:
        row["error"] = error
        return row
    row.update(
        items_after=len(result.items),
        tokens_after=result.tokens_after,
        met_target=result.tokens_after <= target,
        ratio=total / max(1, result.tokens_after),
        seconds=statistics.median(times),
        ctxbudget=score(inventory, result.text()),
        ledger_retention=result.facts.retention,
        split_pairs=split_pairs(items, result.items),
        actions=[a.step for a in result.actions],
        notes=list(result.notes),
    )
    return row


def _cell(kept_total: tuple[int, int]) -> str:
    kept, total = kept_total
    return f"{kept}/{total}" if total else "–"


def _pct(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "–"


def to_json(rows: list[dict[str, Any]], totals: dict[str, Any]) -> str:
    def clean(value: Any) -> Any:
        if isinstance(value, Score):
            return value.to_dict()
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, float):
            return round(value, 4)
        return value

    return json.dumps({"sessions": clean(rows), "total": clean(totals)}, indent=2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared/data directory")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per session (median)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = data_dir(args.data, "claude-code")
    tracker = Tracker(store="memory://")
    rows = [evaluate(p, tracker, max(1, args.runs)) for p in sorted(folder.glob("*.jsonl*"))]
    done = [r for r in rows if "ctxbudget" in r]
    ours = add_scores(r["ctxbudget"] for r in done)
    trunc = add_scores(r["truncation"] for r in rows if "truncation" in r)
    cc = add_scores(s["score"] for r in rows for s in r["summaries"])
    ratios = [r["ratio"] for r in done]
    seconds = [r["seconds"] for r in done]
    totals = {
        "ctxbudget": ours,
        "truncation": trunc,
        "claude_code_summaries": cc,
        "claude_code_summary_count": sum(len(r["summaries"]) for r in rows),
        "median_ratio": statistics.median(ratios) if ratios else None,
        "min_ratio": min(ratios) if ratios else None,
        "median_seconds": statistics.median(seconds) if seconds else None,
        "max_seconds": max(seconds) if seconds else None,
        "sessions": len(done),
        "skipped": [r["session"] for r in rows if "skipped" in r],
        "errors": {r["session"]: r["error"] for r in rows if "error" in r},
        "split_pairs": sum(r["split_pairs"] for r in done),
        "missed_target": [r["session"] for r in done if not r["met_target"]],
    }
    if args.json:
        print(to_json(rows, totals))
        return 0

    print(
        f"Compaction of each session's current context to ≤ 1/{RATIO} of its tokens: "
        "retention of its fact inventory\n(files edited / files read, not edited / latest "
        "todo list / user requests; truncation = keep-last to the same budget)\n"
    )
    head = (
        f"{'session':<9} {'items':>5} {'before':>7} {'after':>6} {'ratio':>6} {'time':>7} │"
        f" {'edited':>7} {'read':>7} {'todos':>6} {'requests':>8} {'overall':>8} │"
        f" {'truncation':>10} │ {'ledger':>6} {'pairs':>5}"
    )
    print(head)
    print("─" * len(head))
    for r in rows:
        if "skipped" in r:
            print(f"{r['session']:<9} skipped: {r['skipped']}")
            continue
        if "error" in r:
            print(
                f"{r['session']:<9} {r['items_before']:>5} {r['tokens_before']:>7,} error: "
                f"{r['error']}"
            )
            continue
        s: Score = r["ctxbudget"]
        flag = "" if r["met_target"] else "!"
        print(
            f"{r['session']:<9} {r['items_before']:>5} {r['tokens_before']:>7,} "
            f"{r['tokens_after']:>6,} {r['ratio']:>5.1f}{flag or '×'} {r['seconds']:>6.3f}s │"
            f" {_cell(s.by['edited']):>7} {_cell(s.by['read']):>7} {_cell(s.by['todos']):>6}"
            f" {_cell(s.by['requests']):>8} {_pct(s.retention):>8} │"
            f" {_pct(r['truncation'].retention):>10} │ {_pct(r['ledger_retention']):>6}"
            f" {'ok' if not r['split_pairs'] else r['split_pairs']:>5}"
        )
    print("─" * len(head))
    t = trunc
    print(
        f"{'TOTAL':<9} {'':>5} {'':>7} {'':>6} {'':>6} {'':>7} │"
        f" {_cell(ours.by['edited']):>7} {_cell(ours.by['read']):>7}"
        f" {_cell(ours.by['todos']):>6} {_cell(ours.by['requests']):>8}"
        f" {_pct(ours.retention):>8} │ {_pct(t.retention):>10} │"
    )
    print(
        f"{'truncat.':<9} {'':>5} {'':>7} {'':>6} {'':>6} {'':>7} │"
        f" {_cell(t.by['edited']):>7} {_cell(t.by['read']):>7}"
        f" {_cell(t.by['todos']):>6} {_cell(t.by['requests']):>8} {_pct(t.retention):>8} │"
    )
    if any(not r["met_target"] for r in done):
        print("(! after the ratio: the compaction did not reach the target)")

    print(
        "\nClaude Code's own summaries (isCompactSummary), on the inventory of what preceded each\n"
    )
    head2 = (
        f"{'session':<9} {'line':>5} {'records':>7} │ {'edited':>7} {'read':>7} {'todos':>6}"
        f" {'requests':>8} {'overall':>8}"
    )
    print(head2)
    print("─" * len(head2))
    for r in rows:
        for summary in r["summaries"]:
            s = summary["score"]
            print(
                f"{r['session']:<9} {summary['line']:>5} {summary['records_before']:>7} │"
                f" {_cell(s.by['edited']):>7} {_cell(s.by['read']):>7}"
                f" {_cell(s.by['todos']):>6} {_cell(s.by['requests']):>8}"
                f" {_pct(s.retention):>8}"
            )
    print("─" * len(head2))
    print(
        f"{'TOTAL':<9} {'':>5} {'':>7} │ {_cell(cc.by['edited']):>7} {_cell(cc.by['read']):>7}"
        f" {_cell(cc.by['todos']):>6} {_cell(cc.by['requests']):>8} {_pct(cc.retention):>8}"
    )

    print(
        f"\nOverall retention: ctxbudget {_pct(ours.retention)} ({ours.kept}/{ours.total}) vs "
        f"keep-last truncation {_pct(t.retention)} ({t.kept}/{t.total}) vs Claude Code's "
        f"summaries {_pct(cc.retention)} ({cc.kept}/{cc.total}, "
        f"{totals['claude_code_summary_count']} summaries)"
    )
    if ratios:
        print(
            f"Ratio: median {totals['median_ratio']:.1f}×, lowest {totals['min_ratio']:.1f}×; "
            f"time: median {totals['median_seconds']:.3f} s, slowest {totals['max_seconds']:.3f} s"
            f" per session ({len(done)} sessions"
            + (f", skipped: {', '.join(totals['skipped'])}" if totals["skipped"] else "")
            + ")"
        )
    if totals["split_pairs"] or totals["missed_target"] or totals["errors"]:
        print(
            f"Problems: {totals['split_pairs']} split tool pair(s); target missed by "
            f"{', '.join(totals['missed_target']) or 'none'}; errors: "
            f"{', '.join(totals['errors']) or 'none'}"
        )
    print("Goal: ≥ 98% retention at ≥ 5×, ≤ 1 s median per session")
    return 0


if __name__ == "__main__":
    sys.exit(main())
