"""Redaction speed: ``redact_text`` on session-sized items vs copying the same text.

    python benchmarks/redaction.py [--mb 8] [--data DIR] [--repeat 5] [--json]

Redaction runs on every item the store writes, so its cost is set against the
cheapest thing a write does with a text anyway: copying it (the baseline, measured
in the same run on the same items). Three corpora, each cut into 2–8 KB items:
``code`` (Python standard-library sources: full of ``=``, ``key``, ``token``, the
worst case for the assignment rules), ``prose`` (generated sentences), and
``transcripts`` (the texts of the Claude Code transcripts in ../shared/data, when it
is there). Printed: MB/s of each, the ratio redaction / copying, and how many
items redaction changed (code and prose should be 0 or close to it).
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

from _data import DEFAULT_DATA

from ctxbudget.redact import redact_text


def cut(text: str, megabytes: float, rng: random.Random) -> list[str]:
    limit = int(megabytes * 1_000_000)
    items: list[str] = []
    position, size = 0, 0
    while size < limit and text:
        length = rng.randint(2_000, 8_000)
        piece = text[position : position + length]
        if len(piece) < length:
            position = 0
            continue
        items.append(piece)
        position += length
        size += len(piece)
    return items


def code_corpus(megabytes: float) -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    parts: list[str] = []
    total = 0
    for path in sorted(root.glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        parts.append(text)
        total += len(text)
        if total > megabytes * 1_000_000:
            break
    return cut("\n".join(parts), megabytes, random.Random(1))


def prose_corpus(megabytes: float) -> list[str]:
    rng = random.Random(2)
    words = [
        "the",
        "budget",
        "context",
        "window",
        "token",
        "session",
        "agent",
        "compaction",
        "summary",
        "keeps",
        "every",
        "fact",
        "a",
        "user",
        "asked",
        "for",
        "and",
        "the",
        "password",
        "policy",
        "says",
        "keys",
        "rotate",
        "monthly",
        "while",
        "bearer",
        "of",
        "news",
        "reports",
        "numbers",
        "with",
        "units",
        "like",
        "42",
        "ms",
        "and",
        "3.5",
        "GB",
    ]
    sentences = [
        " ".join(rng.choice(words) for _ in range(rng.randint(6, 20))) + "." for _ in range(20_000)
    ]
    return cut(" ".join(sentences), megabytes, rng)


def transcript_corpus(megabytes: float, data: str | None) -> list[str]:
    root = (Path(data) if data else DEFAULT_DATA) / "claude-code"
    if not root.is_dir():
        return []
    from ctxbudget.sources import load_source

    texts: list[str] = []
    for path in sorted(root.glob("*.jsonl*")):
        try:
            texts.extend(item.text for item in load_source(path).items)
        except Exception:  # a file the reader refuses is not this benchmark's business
            continue
    return cut("\n".join(texts), megabytes, random.Random(3))


def rate(items: list[str], job: Callable[[str], str], repeat: int) -> float:
    """Median MB/s over ``repeat`` passes."""
    size = sum(len(t) for t in items) / 1_000_000
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for text in items:
            job(text)
        times.append(time.perf_counter() - start)
    return size / statistics.median(times)


def copy(text: str) -> str:
    return (text + " ")[:-1]  # a real copy of the characters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=8.0, help="megabytes per corpus")
    parser.add_argument("--data", help="the shared data directory (default ../shared/data)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    corpora = {
        "code": code_corpus(args.mb),
        "prose": prose_corpus(args.mb),
        "transcripts": transcript_corpus(args.mb, args.data),
    }
    rows = []
    for name, items in corpora.items():
        if not items:
            print(f"{name}: skipped (no data)", file=sys.stderr)
            continue
        baseline = rate(items, copy, args.repeat)
        redaction = rate(items, redact_text, args.repeat)
        changed = sum(1 for text in items if redact_text(text) is not text)
        rows.append(
            {
                "corpus": name,
                "items": len(items),
                "mb": round(sum(len(t) for t in items) / 1_000_000, 2),
                "copy_mb_s": round(baseline, 1),
                "redact_mb_s": round(redaction, 1),
                "ratio": round(redaction / baseline, 4),
                "items_changed": changed,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"{'corpus':<12} {'items':>6} {'MB':>6} {'copy MB/s':>10} {'redact MB/s':>12} "
        f"{'ratio':>8} {'changed':>8}"
    )
    for row in rows:
        print(
            f"{row['corpus']:<12} {row['items']:>6} {row['mb']:>6} {row['copy_mb_s']:>10,.0f} "
            f"{row['redact_mb_s']:>12,.1f} {row['ratio']:>8.4f} {row['items_changed']:>8}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
