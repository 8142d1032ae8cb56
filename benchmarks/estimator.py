"""Benchmark the ``estimate`` token counter against exact o200k_base on real text.

Measures the mean absolute percentage error (MAE, per document) of the estimator and of
the naive ``chars / 4`` rule, separately for prose, code and JSON, on real text the
estimator was not fitted on (it is fitted on a synthetic corpus, see
``tools/fit_estimator.py``):

* prose: the dialogue turns of LoCoMo (``<data>/locomo/locomo-dev.json``),
* code: Python standard-library source files,
* JSON: SWE-agent trajectories (``<data>/swe-agent/*.traj``),

each cut into documents of 1-4 KB. Also prints the throughput of the estimator and of
tiktoken. Run from the repository root::

    python benchmarks/estimator.py [--data ../shared/data] [--json]

If the data folder is absent the benchmark prints why and exits 0 ("skipped"). The
shared data is read in place, never copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
SEED = 20240607
MIN_DOC, MAX_DOC = 1000, 4000
MAX_DOCS = {"prose": 400, "code": 400, "json": 400}
GOAL_MAE_PCT = 5.0


def _chunk_lines(lines: Iterable[str], rng: random.Random, sep: str = "") -> list[str]:
    """Join consecutive lines into documents of MIN_DOC..MAX_DOC characters."""
    docs: list[str] = []
    buf: list[str] = []
    size = 0
    target = rng.randint(MIN_DOC, MAX_DOC)
    for line in lines:
        if len(line) > MAX_DOC:  # a giant line (minified data): cut it
            for i in range(0, len(line), MAX_DOC):
                piece = line[i : i + MAX_DOC]
                if len(piece) >= MIN_DOC:
                    docs.append(piece)
            continue
        buf.append(line)
        size += len(line) + len(sep)
        if size >= target:
            docs.append(sep.join(buf))
            buf, size = [], 0
            target = rng.randint(MIN_DOC, MAX_DOC)
    if size >= MIN_DOC:
        docs.append(sep.join(buf))
    return docs


def _subsample(docs: list[str], limit: int, rng: random.Random) -> list[str]:
    return docs if len(docs) <= limit else rng.sample(docs, limit)


def prose_docs(data: Path, rng: random.Random) -> list[str]:
    conversations = json.loads((data / "locomo" / "locomo-dev.json").read_text("utf-8"))
    turns: list[str] = []
    for conv in conversations:
        sessions = conv["conversation"]
        keys = [k for k in sessions if k.startswith("session_") and k[8:].isdigit()]
        for key in sorted(keys, key=lambda k: int(k[8:])):
            for turn in sessions[key]:
                if turn.get("text"):
                    turns.append(f"{turn['speaker']}: {turn['text']}")
    return _subsample(_chunk_lines(turns, rng, sep="\n"), MAX_DOCS["prose"], rng)


def code_docs(rng: random.Random) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(
        p
        for p in stdlib.rglob("*.py")
        if "site-packages" not in p.parts and "dist-packages" not in p.parts
    )
    rng.shuffle(files)
    docs: list[str] = []
    for path in files:
        try:
            text = path.read_text("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        docs.extend(_chunk_lines(text.splitlines(keepends=True), rng))
        if len(docs) >= 4 * MAX_DOCS["code"]:
            break
    return _subsample(docs, MAX_DOCS["code"], rng)


def json_docs(data: Path, rng: random.Random) -> list[str]:
    docs: list[str] = []
    for path in sorted((data / "swe-agent").glob("*.traj")):
        text = path.read_text("utf-8")
        docs.extend(_chunk_lines(text.splitlines(keepends=True), rng))
    return _subsample(docs, MAX_DOCS["json"], rng)


def load_corpora(data: Path) -> dict[str, list[str]]:
    """The held-out documents per category (deterministic)."""
    return {
        "prose": prose_docs(data, random.Random(SEED)),
        "code": code_docs(random.Random(SEED + 1)),
        "json": json_docs(data, random.Random(SEED + 2)),
    }


def _mae(estimates: list[int], exact: list[int]) -> float:
    return 100.0 * sum(abs(e - x) / x for e, x in zip(estimates, exact, strict=True)) / len(exact)


def _bias(estimates: list[int], exact: list[int]) -> float:
    return 100.0 * sum((e - x) / x for e, x in zip(estimates, exact, strict=True)) / len(exact)


def _throughput(count: Callable[[str], int], docs: list[str], repeat: int = 3) -> float:
    """MB/s (UTF-8) of ``count`` over ``docs``, best of ``repeat`` runs."""
    megabytes = sum(len(d.encode("utf-8")) for d in docs) / 1e6
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for d in docs:
            count(d)
        best = min(best, time.perf_counter() - start)
    return megabytes / best


def run(data: Path) -> dict[str, object]:
    from ctxbudget.tokens.counters import get_counter

    exact_counter = get_counter("o200k_base")
    estimator = get_counter("estimate")
    corpora = load_corpora(data)
    rows: list[dict[str, object]] = []
    all_docs: list[str] = []
    for category, docs in corpora.items():
        docs = [d for d in docs if d.strip()]
        all_docs.extend(docs)
        exact = [exact_counter.count(d) for d in docs]
        est = [estimator.count(d) for d in docs]
        naive = [round(len(d) / 4) for d in docs]
        rows.append(
            {
                "category": category,
                "docs": len(docs),
                "chars": sum(map(len, docs)),
                "exact_tokens": sum(exact),
                "estimate_mae_pct": round(_mae(est, exact), 2),
                "estimate_bias_pct": round(_bias(est, exact), 2),
                "estimate_max_err_pct": round(
                    max(100.0 * abs(e - x) / x for e, x in zip(est, exact, strict=True)), 2
                ),
                "chars4_mae_pct": round(_mae(naive, exact), 2),
                "chars4_bias_pct": round(_bias(naive, exact), 2),
            }
        )
    return {
        "data": str(data),
        "rows": rows,
        "throughput_mb_s": {
            "estimate": round(_throughput(estimator.count, all_docs), 2),
            "o200k_base (tiktoken)": round(_throughput(exact_counter.count, all_docs), 2),
        },
        "estimator": estimator.description,
    }


def _print_table(result: dict[str, object]) -> None:
    rows = result["rows"]
    assert isinstance(rows, list)
    print(f"estimate vs exact o200k_base on real held-out text ({result['data']})")
    print(f"counter: {result['estimator']}")
    print()
    header = (
        f"{'category':<9}{'docs':>6}{'chars':>10}{'tokens':>9}"
        f"{'estimate MAE':>14}{'bias':>8}{'max':>8}{'chars/4 MAE':>13}{'bias':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['category']:<9}{r['docs']:>6}{r['chars']:>10,}{r['exact_tokens']:>9,}"
            f"{r['estimate_mae_pct']:>13.2f}%{r['estimate_bias_pct']:>+7.2f}%"
            f"{r['estimate_max_err_pct']:>7.1f}%"
            f"{r['chars4_mae_pct']:>12.2f}%{r['chars4_bias_pct']:>+7.2f}%"
        )
    worst = max(float(r["estimate_mae_pct"]) for r in rows)
    verdict = "met" if worst <= GOAL_MAE_PCT else "MISSED"
    print(f"goal: estimate MAE <= {GOAL_MAE_PCT:g}% in every category: {verdict}")
    print()
    throughput = result["throughput_mb_s"]
    assert isinstance(throughput, dict)
    for name, mbs in throughput.items():
        print(f"throughput {name:<22}{mbs:>8.2f} MB/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="the shared data folder (default: <repo>/../shared/data)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1 if the estimate's MAE exceeds {GOAL_MAE_PCT:g}%% in any category",
    )
    args = parser.parse_args(argv)
    data: Path = args.data
    needed = [data / "locomo" / "locomo-dev.json", data / "swe-agent"]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        print(f"estimator benchmark skipped: data not found: {', '.join(missing)}")
        return 0
    result = run(data)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_table(result)
    rows = result["rows"]
    assert isinstance(rows, list)
    if args.check and any(float(r["estimate_mae_pct"]) > GOAL_MAE_PCT for r in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
