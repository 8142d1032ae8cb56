"""Every shared session, compacted: no split pair, a valid message list, plan = apply.

For each Claude Code transcript and SWE-agent trajectory in shared/data: plan a
compaction to a fifth (dry run), apply it to a fresh SQLite store, and check that

- the applied figures (tokens before/after, each action's tokens freed) equal the plan's;
- no tool call lost its result and no result its call;
- the compacted context, written as an Anthropic request and as an OpenAI message
  list, passes ``validate_messages``;
- ``restore`` gives back a context whose hash equals the pre-compaction one.

    python benchmarks/compaction_validity.py [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import data_dir

from ctxbudget import Item, Kind, Role, Tracker
from ctxbudget.compaction import CompactionPolicy
from ctxbudget.sources.validation import validate_messages
from ctxbudget.sources.writers import to_anthropic, to_openai


def _orphans(items: list[Item]) -> set[str | None]:
    calls = {i.pair_id for i in items if i.kind is Kind.TOOL_CALL}
    results = {i.pair_id for i in items if i.role is Role.TOOL}
    return calls ^ results


def _problems(items: list[Item]) -> list[str]:
    found = validate_messages(to_anthropic(items)["messages"], "anthropic")
    found += validate_messages(to_openai(items), "openai")
    # message numbers shift with compaction; compare problems by their text past it
    return [p.split(": ", 1)[-1] for p in found]


def check(path: Path, store_dir: Path) -> dict[str, object]:
    tracker = Tracker(store=f"sqlite:///{store_dir / (path.name + '.db')}")
    session = tracker.load(path)
    if not session.items:
        return {"session": path.name, "skipped": "empty current context"}
    session.save()
    # restore gives back what the store holds: secrets redacted (README, "Secrets")
    hash_before = tracker.open(session.id).context_hash()
    # What the source itself leaves open (a trajectory's last action has no
    # observation) is not the compaction's doing: only new problems count.
    orphans_before = _orphans(session.items)
    problems_before = set(_problems(session.items))
    policy = CompactionPolicy(target_ratio=5)
    started = time.perf_counter()
    plan = session.plan_compaction(policy)
    if not plan.result.actions:
        return {"session": path.name, "skipped": "; ".join(plan.result.notes)}
    done = session.apply_compaction(plan)  # the very plan the dry run printed
    seconds = time.perf_counter() - started
    [event] = session.events(types=["compacted"])
    # what apply did, read back from the session and its ledger, against the plan
    same_plan = (
        session.used_tokens == plan.used_after
        and event.data["tokens_after"] == plan.used_after
        and event.data["tokens_before"] == plan.used_before
        and [(a["step"], a["tokens_freed"]) for a in event.data["actions"]]
        == [(a.step, a.tokens_freed) for a in plan.result.actions]
        and session.context_hash() == event.data["context_hash_after"]
        and done is plan
    )
    items = session.items
    problems = [p for p in _problems(items) if p not in problems_before]
    split = _orphans(items) - orphans_before
    session.restore()
    return {
        "session": path.name,
        "before": done.used_before,
        "after": done.used_after,
        "ratio": done.used_before / max(1, done.used_after),
        "met_target": done.used_after <= done.target,
        "floor_note": next((n for n in done.result.notes if "below what must stay" in n), ""),
        "plan_matches_apply": same_plan,
        "split_pairs": len(split),
        "invalid": problems,
        "restore_exact": session.context_hash() == hash_before,
        "seconds": seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared/data directory")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    paths = sorted(data_dir(args.data, "claude-code").glob("*.jsonl*"))
    paths += sorted(data_dir(args.data, "swe-agent").glob("*.traj"))
    with tempfile.TemporaryDirectory() as tmp:
        rows = [check(p, Path(tmp)) for p in paths]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'session':<44} {'before':>8} {'after':>7} {'ratio':>6}  target  plan=apply  pairs"
        "  valid  restore"
    )
    ok = 0
    checked = 0
    for r in rows:
        name = str(r["session"])[:44]
        if "skipped" in r:
            print(f"{name:<44} skipped: {r['skipped']}")
            continue
        checked += 1
        good = (
            r["plan_matches_apply"]
            and not r["split_pairs"]
            and not r["invalid"]
            and r["restore_exact"]
        )
        ok += bool(good)
        print(
            f"{name:<44} {r['before']:>8,} {r['after']:>7,} {r['ratio']:>5.1f}×  "
            f"{'met' if r['met_target'] else 'floor':>6}  "
            f"{'yes' if r['plan_matches_apply'] else 'NO':>10}  {r['split_pairs']:>5}  "
            f"{'yes' if not r['invalid'] else 'NO':>5}  {'yes' if r['restore_exact'] else 'NO':>7}"
        )
        for problem in r["invalid"][:3]:  # type: ignore[index]
            print(f"    {problem}")
    print(
        f"\n{ok}/{checked} sessions: plan = apply, no split pair, valid message lists, exact "
        "restore"
    )
    floors = sum(1 for r in rows if "skipped" not in r and not r["met_target"])
    print(
        f"{checked - floors}/{checked} reached a fifth in session units; the others stopped at "
        "what must stay (the provider's overhead beyond the transcript, the system prompt, "
        "the last exchange)"
    )
    return 0 if ok == checked else 1


if __name__ == "__main__":
    sys.exit(main())
