"""Does ctxbudget's re-injection put back what Claude Code's own summaries lose?

For every ``isCompactSummary`` record of shared/data/claude-code that has a context
before it (the main-thread records since the previous compaction boundary): the fact
ledger of that context (``extract_facts``) is compared with the summary Claude Code
wrote, and ``reinjection`` returns what the summary lost within the default budget
(2,000 tokens). Scored on the inventory of the compaction benchmark (files edited and
read, the latest todo list, the user's requests: benchmarks/_inventory.py): the summary
alone (the baseline, same run) against summary + injection; then the ledger's own
kinds (standing instructions, requirement ids, decisions, open questions, errors) the
same way. Goal: ≥ 98% of the inventory kept, the injection's median ≤ 500 tokens.

    python benchmarks/reinject_claude_code.py [--data DIR] [--budget 2000] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import data_dir
from _inventory import CATEGORIES, Score, add_scores, build_inventory, events_from_records, score

from ctxbudget.compaction.fact_check import check_facts
from ctxbudget.compaction.facts import extract_facts
from ctxbudget.compaction.reinject import DEFAULT_REINJECT_TOKENS, reinjection
from ctxbudget.compaction.types import FactKind
from ctxbudget.sources.claude_code import read_claude_code
from ctxbudget.tokens.counters import get_counter

LEDGER_KINDS = (
    FactKind.INSTRUCTION,
    FactKind.REQUIREMENT,
    FactKind.DECISION,
    FactKind.QUESTION,
    FactKind.ERROR,
)
GOAL_RETENTION = 0.98
GOAL_MEDIAN_TOKENS = 500


def short_name(path: Path) -> str:
    return path.name.split("_", 1)[-1].split(".")[0][:8]


def summary_text(record: dict[str, Any]) -> str:
    message = record.get("message") or {}
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return str(content or "")


def compactions(path: Path) -> Iterator[tuple[int, list[dict[str, Any]], str]]:
    """(line, the main-thread records since the previous boundary, the summary text)."""
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
            elif record.get("isCompactSummary"):
                yield number, span, summary_text(record)
                span = []
            else:
                span.append(record)


def kind_tally(facts: list[Any], text: str) -> dict[str, tuple[int, int]]:
    by = check_facts(facts, text).by_kind
    return {str(kind): by.get(kind, (0, 0)) for kind in LEDGER_KINDS}


def evaluate(path: Path, budget: int, count: Any) -> list[dict[str, Any]]:
    rows = []
    for line, span, summary in compactions(path):
        if not any(r.get("type") in ("user", "assistant") for r in span):
            continue  # a summary carried over at the start: no context before it
        transcript = read_claude_code((json.dumps(r) for r in span), name=path.name)
        started = time.perf_counter()
        ledger = extract_facts(transcript.items)
        result = reinjection(ledger, summary, budget_tokens=budget, count=count)
        seconds = time.perf_counter() - started
        inventory = build_inventory(events_from_records(span))
        restored = summary + "\n\n" + result.text
        rows.append(
            {
                "session": f"{short_name(path)}:{line}",
                "records": len(span),
                "items": len(transcript.items),
                "summary_tokens": count(summary),
                "inventory": inventory.size(),
                "summary": score(inventory, summary),
                "reinjected": score(inventory, restored),
                "ledger_summary": kind_tally(ledger, summary),
                "ledger_reinjected": kind_tally(ledger, restored),
                "injection": result.to_dict(),
                "seconds": seconds,
            }
        )
    return rows


def percent(kept: int, total: int) -> str:
    return f"{100 * kept / total:5.1f}%" if total else "    –"


def tally_text(by: dict[str, tuple[int, int]]) -> str:
    return " ".join(f"{k[:5]} {kept}/{total}" for k, (kept, total) in by.items() if total)


def add_tallies(tallies: list[dict[str, tuple[int, int]]]) -> dict[str, tuple[int, int]]:
    out = {str(kind): (0, 0) for kind in LEDGER_KINDS}
    for tally in tallies:
        for kind, (kept, total) in tally.items():
            out[kind] = (out[kind][0] + kept, out[kind][1] + total)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared/data directory")
    parser.add_argument("--budget", type=int, default=DEFAULT_REINJECT_TOKENS)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    directory = data_dir(args.data, "claude-code")
    count = get_counter("estimate").count
    rows: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl*")):
        rows.extend(evaluate(path, args.budget, count))
    if args.json:
        print(json.dumps(rows, default=lambda o: o.to_dict() if isinstance(o, Score) else str(o)))
        return 0
    if not rows:
        print("no Claude Code summary with a context before it")
        return 0
    print(f"Claude Code's own summaries with a context before them: {len(rows)}")
    print(f"re-injection budget {args.budget:,} tokens (estimate counter)\n")
    header = (
        f"{'compaction':<16}{'recs':>6}{'facts':>7}{'summary':>9}{'+inject':>9}"
        f"{'inj tok':>9}{'lost':>6}{'put back':>9}{'ms':>7}"
    )
    print(header)
    for row in rows:
        s, r, inj = row["summary"], row["reinjected"], row["injection"]
        print(
            f"{row['session']:<16}{row['records']:>6}{row['inventory']:>7}"
            f"{percent(s.kept, s.total):>9}{percent(r.kept, r.total):>9}"
            f"{inj['tokens']:>9,}{inj['lost']:>6}{inj['injected']:>9}"
            f"{1000 * row['seconds']:>7.0f}"
        )
    print("\nper category (kept/total), summary alone → summary + injection:")
    for row in rows:
        s, r = row["summary"], row["reinjected"]
        cats = "  ".join(
            f"{c} {s.by[c][0]}→{r.by[c][0]}/{s.by[c][1]}" for c in CATEGORIES if s.by[c][1]
        )
        print(f"  {row['session']:<16}{cats}")
        if r.kept < r.total:
            for category, values in r.missing.items():
                for value in values[:3]:
                    print(f"      still missing {category}: {value[:80]!r}")
    print("\nledger kinds (kept/total), summary alone → summary + injection:")
    for row in rows:
        print(f"  {row['session']:<16}{tally_text(row['ledger_summary'])}")
        print(f"  {'':<16}{tally_text(row['ledger_reinjected'])}")
    before = add_scores(row["summary"] for row in rows)
    after = add_scores(row["reinjected"] for row in rows)
    tokens = [row["injection"]["tokens"] for row in rows]
    median = statistics.median(tokens)
    ledger_before = add_tallies([row["ledger_summary"] for row in rows])
    ledger_after = add_tallies([row["ledger_reinjected"] for row in rows])
    print("\ntotals")
    print(
        f"  inventory kept: summary alone {percent(before.kept, before.total).strip()} "
        f"({before.kept}/{before.total}), summary + injection "
        f"{percent(after.kept, after.total).strip()} ({after.kept}/{after.total})"
    )
    for kind in ledger_before:
        (kb, tb), (ka, _) = ledger_before[kind], ledger_after[kind]
        if tb:
            print(
                f"  {kind:<12} summary alone {percent(kb, tb).strip()} ({kb}/{tb}), "
                f"+ injection {percent(ka, tb).strip()} ({ka}/{tb})"
            )
    print(
        f"  injection tokens: median {median:,.0f}, max {max(tokens):,} "
        f"(budget {args.budget:,}); characters max "
        f"{max(row['injection']['chars'] for row in rows):,} (cap 10,000)"
    )
    retention = after.kept / after.total if after.total else 1.0
    met = retention >= GOAL_RETENTION and median <= GOAL_MEDIAN_TOKENS
    print(
        f"  goal (≥ {GOAL_RETENTION:.0%} kept, median ≤ {GOAL_MEDIAN_TOKENS} tokens): "
        f"{'met' if met else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
