"""Is the Claude Code status line right, and fast enough to run every few hundred ms?

(1) For every Claude Code transcript in shared/data/claude-code (decompressed to a
temporary .jsonl), run the status line command with Claude Code's JSON on stdin
(``transcript_path`` set, no ``context_window``: the transcript is what matters) and
compare the percent it prints with the last reported usage / 200,000, computed here
independently from the raw records (last main-thread usage after the last compaction,
once per message.id). Goal: within 1 point. The figure it prints is also compared with
``ctxbudget tokens <transcript> --json``'s used_tokens (run as its own process): the
status line learns the same per-session correction, so the two are expected equal.

(2) Wall time of one call, process start included, on the largest session: cold (no
cache), warm (nothing changed since the last call; the goal is ≤ 50 ms median), and
right after 10 new records were appended (real records copied from another part of
the file, with fresh uuids and message ids). The incremental figure is checked against
a from-scratch read of the same file and against ``ctxbudget tokens``.

    python benchmarks/statusline.py [--data DIR] [--runs N] [--json]

The command is ``ctxbudget statusline`` when the console script has it, else
``python -m ctxbudget.cli.statusline``. Calls run with a bytecode cache (as an installed
package has); ``--no-bytecode`` keeps $PYTHONDONTWRITEBYTECODE as it is.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import REPO, data_dir

WINDOW = 200_000
MODEL = {"id": "claude-sonnet-4-20250514", "display_name": "Sonnet 4"}
LINE = re.compile(r"Tokens: ([\d,?]+)/([\d,]+)(?: \((\d+)%\))?")


def expected_usage(path: Path) -> int | None:
    """The last main-thread usage's context tokens after the last compaction, from the
    raw records (independent of ctxbudget's code)."""
    seen: set[str] = set()
    last: int | None = None
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if not isinstance(r, dict):
                continue
            if (r.get("type") == "system" and r.get("subtype") == "compact_boundary") or r.get(
                "isCompactSummary"
            ):
                last = None
            if r.get("isSidechain") or r.get("type") != "assistant":
                continue
            m = r.get("message")
            if not isinstance(m, dict) or not isinstance(m.get("usage"), dict):
                continue
            usage = m["usage"]
            mid = m.get("id")
            context = sum(
                int(usage.get(k) or 0)
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            )
            if context <= 0 or (mid and mid in seen):
                continue
            if mid:
                seen.add(mid)
            last = context
    return last


def command() -> tuple[list[str], str]:
    exe = shutil.which("ctxbudget")
    if exe:
        probe = subprocess.run(
            [exe, "statusline", "--help"], capture_output=True, timeout=60, check=False
        )
        if probe.returncode == 0 and b"statusline" in probe.stdout:
            return [exe, "statusline"], "ctxbudget statusline"
    return [sys.executable, "-m", "ctxbudget.cli.statusline"], "python -m ctxbudget.cli.statusline"


class Runner:
    def __init__(self, cmd: list[str], cache: Path, bytecode_dir: Path | None) -> None:
        self.cmd = cmd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CTXBUDGET_")}
        self.env["CTXBUDGET_CACHE_DIR"] = str(cache)
        self.env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p
        )
        self.env["NO_COLOR"] = "1"
        if bytecode_dir is not None:
            self.env.pop("PYTHONDONTWRITEBYTECODE", None)
            self.env["PYTHONPYCACHEPREFIX"] = str(bytecode_dir)

    def call(self, transcript: Path, session_id: str) -> tuple[str, float, int]:
        data = json.dumps(
            {
                "hook_event_name": "Status",
                "session_id": session_id,
                "transcript_path": str(transcript),
                "cwd": str(transcript.parent),
                "model": MODEL,
            }
        ).encode()
        start = time.perf_counter()
        proc = subprocess.run(
            self.cmd, input=data, capture_output=True, env=self.env, timeout=120, check=False
        )
        elapsed = time.perf_counter() - start
        return proc.stdout.decode("utf-8", "replace").strip(), elapsed, proc.returncode

    def tokens(self, transcript: Path) -> int | None:
        """``ctxbudget tokens TRANSCRIPT --json``'s used_tokens (None when it fails)."""
        code = "import sys; from ctxbudget.cli import main; sys.exit(main(sys.argv[1:]))"
        argv = ["--store", "memory://", "tokens", str(transcript), "--json"]
        proc = subprocess.run(
            [sys.executable, "-c", code, *argv],
            capture_output=True,
            env=self.env,
            timeout=300,
            check=False,
        )
        try:
            return int(json.loads(proc.stdout)["used_tokens"])
        except (ValueError, KeyError, TypeError):
            return None

    def baseline(self, runs: int) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env=self.env, check=True)
            times.append(time.perf_counter() - start)
        return statistics.median(times)


def parse(line: str) -> tuple[int | None, int | None]:
    m = LINE.search(line)
    if not m or m[1] == "?":
        return None, None
    return int(m[1].replace(",", "")), int(m[3]) if m[3] else None


def fresh_records(source: Path, n: int, serial: int, parent: str | None) -> list[str]:
    """``n`` main-thread user/assistant records from the middle of ``source``, with new
    uuids (chained after ``parent``) and new message ids."""
    picked: list[dict[str, Any]] = []
    with source.open(encoding="utf-8") as f:
        lines = f.readlines()
    for line in lines[len(lines) // 3 :]:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("isSidechain") or r.get("type") not in ("user", "assistant"):
            continue
        picked.append(r)
        if len(picked) == n:
            break
    ids: dict[str, str] = {}
    out = []
    for i, r in enumerate(picked):
        uuid = f"bench-{serial:04d}-{i:02d}-0000-0000-000000000000"
        r["parentUuid"], r["uuid"] = parent, uuid
        parent = uuid
        m = r.get("message")
        if isinstance(m, dict) and isinstance(m.get("id"), str):
            m["id"] = ids.setdefault(m["id"], f"msg_bench_{serial:04d}_{len(ids):02d}")
        out.append(json.dumps(r, ensure_ascii=False) + "\n")
    return out


def last_uuid(path: Path) -> str | None:
    with path.open(encoding="utf-8") as f:
        for line in reversed(f.readlines()):
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r.get("uuid"), str) and not r.get("isSidechain"):
                return str(r["uuid"])
    return None


def median_ms(times: list[float]) -> float:
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared/data directory")
    parser.add_argument("--runs", type=int, default=30, help="timed warm calls (default 30)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="keep $PYTHONDONTWRITEBYTECODE as it is"
    )
    args = parser.parse_args()
    folder = data_dir(args.data, "claude-code")
    cmd, label = command()
    with tempfile.TemporaryDirectory(prefix="ctxbudget-statusline-") as tmp_name:
        tmp = Path(tmp_name)
        bytecode = None if args.no_bytecode else tmp / "pycache"
        sessions = []
        for src in sorted(folder.glob("*.jsonl*")):
            name = src.name.split("_", 1)[-1].split(".")[0]
            dest = tmp / f"{name}.jsonl"
            opener = gzip.open if src.suffix == ".gz" else open
            with opener(src, "rb") as fin, dest.open("wb") as fout:
                shutil.copyfileobj(fin, fout)
            sessions.append((name, dest))

        # (1) the percent it prints vs the last reported usage
        runner = Runner(cmd, tmp / "cache", bytecode)
        smallest = min(sessions, key=lambda s: s[1].stat().st_size)[1]
        Runner(cmd, tmp / "warmup", bytecode).call(smallest, "warmup")  # compile bytecode
        rows: list[dict[str, Any]] = []
        for name, path in sessions:
            line, seconds, code = runner.call(path, name)
            used, percent = parse(line)
            tokens_used = runner.tokens(path)
            expected = expected_usage(path)
            exp_pct = None if expected is None else 100 * expected / WINDOW
            ok = None
            if exp_pct is not None:
                ok = percent is not None and abs(percent - exp_pct) <= 1.0
            rows.append(
                {
                    "session": name[:8],
                    "bytes": path.stat().st_size,
                    "line": line,
                    "exit": code,
                    "printed_tokens": used,
                    "printed_percent": percent,
                    "expected_tokens": expected,
                    "expected_percent": None if exp_pct is None else round(exp_pct, 2),
                    "within_1_point": ok,
                    "tokens_used": tokens_used,
                    "equals_tokens": used is not None and used == tokens_used,
                    "cold_ms": round(1000 * seconds, 1),
                }
            )

        # (2) timings on the largest session
        name, big = max(sessions, key=lambda s: s[1].stat().st_size)
        work = tmp / "largest.jsonl"
        shutil.copyfile(big, work)
        cold = []
        for i in range(5):
            cold_runner = Runner(cmd, tmp / f"cold-cache-{i}", bytecode)
            cold.append(cold_runner.call(work, name)[1])
        warm_runner = Runner(cmd, tmp / "warm-cache", bytecode)
        for _ in range(3):
            warm_runner.call(work, name)
        warm = [warm_runner.call(work, name)[1] for _ in range(args.runs)]
        appended = []
        incremental_ok = True
        incremental_tokens = True
        for trial in range(10):
            records = fresh_records(big, 10, trial, last_uuid(work))
            with work.open("a", encoding="utf-8") as f:
                f.writelines(records)
            line, seconds, _ = warm_runner.call(work, name)
            appended.append(seconds)
            full_line = Runner(cmd, tmp / f"check-{trial}", bytecode).call(work, name)[0]
            incremental_ok = incremental_ok and line == full_line
            incremental_tokens = incremental_tokens and parse(line)[0] == runner.tokens(work)
        no_bytecode = None
        if bytecode is not None:
            plain = Runner(cmd, tmp / "warm-cache", None)
            plain.env["PYTHONDONTWRITEBYTECODE"] = "1"
            no_bytecode = median_ms([plain.call(work, name)[1] for _ in range(args.runs)])
        timing: dict[str, Any] = {
            "command": label,
            "session": name[:8],
            "bytes": big.stat().st_size,
            "process_start_ms": round(1000 * runner.baseline(15), 1),
            "cold_ms": round(median_ms(cold), 1),
            "warm_ms": round(median_ms(warm), 1),
            "warm_p90_ms": round(1000 * sorted(warm)[int(0.9 * (len(warm) - 1))], 1),
            "appended_10_ms": round(median_ms(appended), 1),
            "incremental_equals_full_read": incremental_ok,
            "incremental_equals_tokens": incremental_tokens,
            "warm_no_bytecode_ms": None if no_bytecode is None else round(no_bytecode, 1),
        }

    checked = [r for r in rows if r["within_1_point"] is not None]
    passed = sum(bool(r["within_1_point"]) for r in checked)
    same = sum(bool(r["equals_tokens"]) for r in rows)
    if args.json:
        print(json.dumps({"sessions": rows, "timing": timing}, indent=2, ensure_ascii=False))
        return 0
    print(f"Status line vs the last reported usage / {WINDOW:,} ({label})\n")
    head = (
        f"{'session':<9} {'size':>7} │ {'printed':>9} {'%':>4} │ {'expected':>9} {'%':>6} │"
        f" {'±1 pt':>5} │ {'tokens':>9} {'=':>3} │ {'cold':>6}"
    )
    print(head)
    print("─" * len(head))
    for r in rows:
        printed = "?" if r["printed_tokens"] is None else f"{r['printed_tokens']:,}"
        pct = "?" if r["printed_percent"] is None else f"{r['printed_percent']}%"
        if r["expected_tokens"] is None:
            e_tokens, e_pct, mark = "no usage", "", "—"
        else:
            e_tokens = f"{r['expected_tokens']:,}"
            e_pct = f"{r['expected_percent']:.2f}%"
            mark = "yes" if r["within_1_point"] else "NO"
        tokens = "?" if r["tokens_used"] is None else f"{r['tokens_used']:,}"
        equal = "yes" if r["equals_tokens"] else "NO"
        print(
            f"{r['session']:<9} {r['bytes'] / 1e6:>6.2f}M │ {printed:>9} {pct:>4} │ {e_tokens:>9}"
            f" {e_pct:>6} │ {mark:>5} │ {tokens:>9} {equal:>3} │ {r['cold_ms']:>4.0f}ms"
        )
    print("─" * len(head))
    print(
        f"{passed}/{len(checked)} sessions with a current usage within 1 point; "
        f"{len(rows) - len(checked)} without one (their printed figure is the local "
        "estimate of the context since the last compaction)."
    )
    print(
        f"{same}/{len(rows)} sessions print the figure of `ctxbudget tokens` "
        "(column tokens: its used_tokens)."
    )
    t = timing
    print(
        f"\nWall time per call, process start included, largest session {t['session']} "
        f"({t['bytes'] / 1e6:.1f} MB):"
    )
    print(f"  python -c pass (process start)      {t['process_start_ms']:>6.1f} ms")
    print(f"  cold (no cache)                     {t['cold_ms']:>6.1f} ms   (baseline)")
    print(
        f"  warm (nothing new), median          {t['warm_ms']:>6.1f} ms   "
        f"({t['cold_ms'] / t['warm_ms']:.1f}× faster than cold; p90 {t['warm_p90_ms']:.1f} ms)"
    )
    print(
        f"  after 10 appended records, median  {t['appended_10_ms']:>6.1f} ms   "
        f"({t['cold_ms'] / t['appended_10_ms']:.1f}× faster than cold)"
    )
    if t["warm_no_bytecode_ms"] is not None:
        print(f"  warm without a bytecode cache       {t['warm_no_bytecode_ms']:>6.1f} ms")
    same_read = "yes" if t["incremental_equals_full_read"] else "NO"
    same_tokens = "yes" if t["incremental_equals_tokens"] else "NO"
    print(f"  incremental figure = full re-read    {same_read}")
    print(f"  incremental figure = tokens         {same_tokens}")
    print(
        "Goal: warm ≤ 50 ms median; every session within 1 point and equal to `ctxbudget tokens`."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
