"""Counting speed: ctxbudget against raw tiktoken, O(1) status, cached recounts.

    python benchmarks/counting.py [--mb 10] [--json]

1. ctxbudget's o200k_base counter (content-hash cache + tiktoken encode_ordinary) vs
   raw ``encode_ordinary`` on the same ~10 MB, cut into session-sized items
   (goal: ≥ 0.9× raw speed).
2. add one message + status() on a 2,000-item session vs a 20-item session
   (goal: ≤ 1.5×, i.e. O(1) in the session's size).
3. a recount of an unchanged 2,000-item session through the content-hash cache vs
   its first count (goal: ≥ 50× faster); also status() with no recount at all, and
   reopening the session from SQLite, where the counts are stored with the items.

Text: Python standard-library sources and this repo's files (code) interleaved with
generated prose, so the run needs no external data.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path

from ctxbudget import Item, Kind, Role, Tracker
from ctxbudget.tokens._tiktoken_offline import get_encoding
from ctxbudget.tokens.counters import CachedCounter, get_counter


def corpus(megabytes: float) -> list[str]:
    """About ``megabytes`` of text in 2–8 KB items, deterministic."""
    rng = random.Random(7)
    words = [
        "budget",
        "context",
        "window",
        "token",
        "agent",
        "session",
        "compaction",
        "archive",
        "recall",
        "status",
        "threshold",
        "warning",
        "critical",
        "summary",
        "decision",
        "requirement",
        "question",
        "file",
        "edit",
        "the",
        "a",
        "of",
        "to",
        "and",
        "in",
        "is",
        "that",
        "for",
        "it",
        "with",
        "as",
        "on",
        "be",
        "at",
        "by",
        "this",
    ]
    sources = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    items: list[str] = []
    size = 0
    target = int(megabytes * 1024 * 1024)
    index = 0
    while size < target:
        if index % 3 == 2:
            text = " ".join(rng.choice(words) for _ in range(rng.randint(300, 1200))) + "."
        else:
            src = sources[index % len(sources)].read_text(encoding="utf-8", errors="replace")
            start = rng.randint(0, max(0, len(src) - 8000))
            text = src[start : start + rng.randint(2000, 8000)]
        index += 1
        if text:
            items.append(text)
            size += len(text.encode())
    return items


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_throughput(items: list[str]) -> dict[str, float]:
    encoding = get_encoding("o200k_base")
    raw = encoding.encode_ordinary

    def run_raw() -> None:
        for text in items:
            len(raw(text))

    def run_ours() -> None:
        counter = CachedCounter(get_counter("o200k_base"))  # fresh cache: every text counted
        for text in items:
            counter.count(text)

    run_raw()  # warm both paths (encoder tables, regex)
    raw_s = best_of(run_raw, 3)
    ours_s = best_of(run_ours, 3)
    mb = sum(len(t.encode()) for t in items) / 1024 / 1024
    return {
        "megabytes": mb,
        "raw_seconds": raw_s,
        "ctxbudget_seconds": ours_s,
        "raw_mb_s": mb / raw_s,
        "ctxbudget_mb_s": mb / ours_s,
        "ratio": raw_s / ours_s,
    }


def _session(tracker: Tracker, n: int, texts: list[str]) -> object:
    session = tracker.session(model="gpt-4o")
    session.extend(
        [
            Item(
                role=Role.USER if i % 2 == 0 else Role.ASSISTANT,
                kind=Kind.USER_TEXT if i % 2 == 0 else Kind.ASSISTANT_TEXT,
                text=texts[i % len(texts)][:1500],
            )
            for i in range(n)
        ]
    )
    return session


def bench_append(texts: list[str]) -> dict[str, float]:
    tracker = Tracker(store="memory://")
    small = _session(tracker, 20, texts)
    large = _session(tracker, 2000, texts)
    message = "One more message to add: how full is the window now?"
    counter = 0

    def step(session: object) -> Callable[[], object]:
        def run() -> object:
            nonlocal counter
            counter += 1
            session.add(f"{message} #{counter}")  # type: ignore[attr-defined]
            return session.status()  # type: ignore[attr-defined]

        return run

    for s in (small, large):
        step(s)()
    small_s = best_of(step(small), 200)
    large_s = best_of(step(large), 200)
    return {"small_ms": small_s * 1e3, "large_ms": large_s * 1e3, "ratio": large_s / small_s}


def bench_recount(texts: list[str], path: Path) -> dict[str, float]:
    store_url = f"sqlite:///{path}"
    items = texts[:2000]

    def first() -> object:
        # What a session does on first sight: every item tokenized (fresh cache).
        tracker = Tracker(store="memory://")
        session = tracker.session(model="gpt-4o")
        session.extend([Item(role=Role.USER, kind=Kind.USER_TEXT, text=t) for t in items])
        return session

    first_s = best_of(first, 3)
    session = first()
    recount_s = best_of(session.recount, 5)  # type: ignore[attr-defined]
    status_s = best_of(session.status, 50)  # type: ignore[attr-defined]

    tracker = Tracker(store=store_url)
    stored = tracker.session(model="gpt-4o")
    stored.extend([Item(role=Role.USER, kind=Kind.USER_TEXT, text=t) for t in items])
    sid = stored.id
    tracker.close()

    def reopen() -> object:
        t = Tracker(store=store_url)
        status = t.open(sid).status()  # counts come back with the items: nothing tokenized
        t.close()
        return status

    reopen_s = best_of(reopen, 3)
    return {
        "first_count_ms": first_s * 1e3,
        "recount_ms": recount_s * 1e3,
        "status_ms": status_s * 1e3,
        "reopen_ms": reopen_s * 1e3,
        "ratio": first_s / recount_s,
        "status_ratio": first_s / status_s,
        "reopen_ratio": first_s / reopen_s,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=10.0, help="megabytes to count (10)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    import tempfile

    texts = corpus(args.mb)
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "throughput": bench_throughput(texts),
            "append_status": bench_append(texts),
            "recount": bench_recount(texts, Path(tmp) / "bench.db"),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    t, a, r = results["throughput"], results["append_status"], results["recount"]
    print(f"1. Counting {t['megabytes']:.1f} MB with o200k_base:")
    print(f"   raw tiktoken encode_ordinary  {t['raw_seconds']:.2f} s  ({t['raw_mb_s']:.1f} MB/s)")
    print(
        f"   ctxbudget CachedCounter       {t['ctxbudget_seconds']:.2f} s  "
        f"({t['ctxbudget_mb_s']:.1f} MB/s)"
    )
    print(f"   ratio ctxbudget/raw speed     {t['ratio']:.2f}×   (goal ≥ 0.9×)")
    print("2. add one message + status():")
    print(f"   20-item session     {a['small_ms']:.3f} ms (median of 200)")
    print(f"   2,000-item session  {a['large_ms']:.3f} ms (median of 200)")
    print(f"   ratio large/small   {a['ratio']:.2f}×   (goal ≤ 1.5×)")
    print("3. an unchanged 2,000-item session (~10 MB):")
    print(f"   first count (every item tokenized)      {r['first_count_ms']:8.1f} ms")
    print(
        f"   recount (content-hash cache)            {r['recount_ms']:8.2f} ms   "
        f"{r['ratio']:7.0f}×  (goal ≥ 50×)"
    )
    print(
        f"   status() (running totals, no recount)   {r['status_ms']:8.3f} ms   "
        f"{r['status_ratio']:7.0f}×"
    )
    print(
        f"   reopened from SQLite (counts stored)    {r['reopen_ms']:8.1f} ms   "
        f"{r['reopen_ratio']:7.0f}×"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
