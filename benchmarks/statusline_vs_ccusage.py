"""Where people wait: the status line and ``ctxbudget --help``, against a bare Python start
and ccusage's ``statusline`` mode, on the largest Claude Code transcript in shared/data.

Every figure is the median wall time of one process (start included) over ``--runs``
runs, measured interleaved in the same run with ``python3 -c pass`` (the baseline the
goals are ratios of) so that a noisy machine moves both alike. The payload is what
Claude Code sends: ``transcript_path`` and ``context_window`` with ``current_usage`` set
to the transcript's last main-thread usage.

- cold: no cache (a fresh cache directory each run);
- warm: nothing changed since the last call;
- append: N new records appended after a call, then one call (N = 1, 10, 100): the
  cost should follow the bytes appended, not the file's size;
- transcript only: cold, without ``context_window`` (older Claude Code): the whole file
  is read and counted once;
- ``ctxbudget --help``.

Goals: cold ≤ 3× and warm ≤ 2× a bare Python start, ``--help`` ≤ 3×, and ≥ 5× faster
than ccusage on every path. ccusage runs when ``npm`` is there (installed once with
``npm install --prefix /tmp/ccusage ccusage@17.2.1``; ``--ccusage PATH`` to use another
binary); without npm its column is skipped with a line saying so.

    python benchmarks/statusline_vs_ccusage.py [--data DIR] [--runs N] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import REPO, data_dir

CCUSAGE_PREFIX = Path("/tmp/ccusage")
CCUSAGE_VERSION = "17.2.1"
MODEL = {"id": "claude-sonnet-4-20250514", "display_name": "Sonnet 4"}


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def last_usage(path: Path) -> dict[str, int] | None:
    """The last main-thread usage of the transcript (what Claude Code sends)."""
    usage = None
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            m = r.get("message") if isinstance(r, dict) else None
            if r.get("isSidechain") or r.get("type") != "assistant" or not isinstance(m, dict):
                continue
            if isinstance(m.get("usage"), dict):
                u = m["usage"]
                usage = {
                    k: int(u.get(k) or 0)
                    for k in (
                        "input_tokens",
                        "output_tokens",
                        "cache_creation_input_tokens",
                        "cache_read_input_tokens",
                    )
                }
    return usage


def payload(path: Path, session: str, usage: dict[str, int] | None) -> bytes:
    data: dict[str, Any] = {
        "hook_event_name": "Status",
        "session_id": session,
        "transcript_path": str(path),
        "cwd": str(path.parent),
        "model": MODEL,
        "workspace": {"current_dir": str(path.parent), "project_dir": str(path.parent)},
        "version": "1.0.80",
        "cost": {"total_cost_usd": 0.0, "total_duration_ms": 0},
    }
    if usage is not None:
        data["context_window"] = {
            "total_input_tokens": usage["input_tokens"]
            + usage["cache_creation_input_tokens"]
            + usage["cache_read_input_tokens"],
            "total_output_tokens": usage["output_tokens"],
            "context_window_size": 200_000,
            "current_usage": usage,
        }
    return json.dumps(data).encode()


def records_to_append(path: Path, n: int, serial: int) -> bytes:
    """``n`` main-thread records from the middle of ``path``, with fresh uuids and ids."""
    lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    for line in lines[len(lines) // 3 :]:
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("isSidechain") or r.get("type") not in ("user", "assistant"):
            continue
        r["uuid"] = f"bench-{serial:05d}-{len(out):04d}"
        m = r.get("message")
        if isinstance(m, dict) and isinstance(m.get("id"), str):
            m["id"] = f"msg_bench_{serial:05d}_{len(out):04d}"
        out.append(json.dumps(r, ensure_ascii=False) + "\n")
        if len(out) == n:
            break
    return "".join(out).encode()


class Timer:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(
        self, cmd: list[str], stdin: bytes = b"", env: dict[str, str] | None = None
    ) -> tuple[float, str]:
        start = time.perf_counter()
        proc = subprocess.run(
            cmd, input=stdin, capture_output=True, env=env or self.env, timeout=120, check=False
        )
        elapsed = time.perf_counter() - start
        out = proc.stdout.decode("utf-8", "replace").strip().splitlines()
        return elapsed, out[0] if out else ""


def ccusage_binary(arg: str | None) -> tuple[list[str] | None, str]:
    if arg:
        return [arg], f"ccusage ({arg})"
    exe = CCUSAGE_PREFIX / "node_modules" / ".bin" / "ccusage"
    if not exe.exists():
        if not shutil.which("npm"):
            return None, "ccusage skipped: npm not found"
        proc = subprocess.run(
            ["npm", "install", "--prefix", str(CCUSAGE_PREFIX), f"ccusage@{CCUSAGE_VERSION}"],
            capture_output=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0 or not exe.exists():
            return None, "ccusage skipped: npm install failed (offline?)"
    version = (
        subprocess.run([str(exe), "--version"], capture_output=True, timeout=60, check=False)
        .stdout.decode()
        .strip()
    )
    return [str(exe)], f"ccusage {version}"


def median_ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared/data directory")
    parser.add_argument("--runs", type=int, default=11, help="runs per figure (default 11)")
    parser.add_argument("--ccusage", help="a ccusage binary (default: installed with npm)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    folder = data_dir(args.data, "claude-code")
    runs = max(3, args.runs)
    with tempfile.TemporaryDirectory(prefix="ctxbudget-vs-ccusage-") as tmp_name:
        tmp = Path(tmp_name)
        src = max(folder.glob("*.jsonl*"), key=lambda p: p.stat().st_size)
        session = src.name.split("_", 1)[-1].split(".")[0]
        # ccusage finds transcripts under $CLAUDE_CONFIG_DIR/projects/<slug>/
        project = tmp / "claude" / "projects" / "-bench-project"
        project.mkdir(parents=True)
        original = tmp / "original.jsonl"
        with (gzip.open if src.suffix == ".gz" else open)(src, "rb") as fin:
            original.write_bytes(fin.read())
        transcript = project / f"{session}.jsonl"
        shutil.copyfile(original, transcript)
        usage = last_usage(transcript)
        size_bytes = original.stat().st_size

        env = {k: v for k, v in os.environ.items() if not k.startswith("CTXBUDGET_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed package has its bytecode
        env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p
        )
        env["NO_COLOR"] = "1"
        env["CLAUDE_CONFIG_DIR"] = str(tmp / "claude")
        env["CTXBUDGET_CACHE_DIR"] = str(tmp / "cache-warm")
        timer = Timer(env)
        exe = shutil.which("ctxbudget")
        ours = [exe] if exe else [sys.executable, "-m", "ctxbudget.cli"]
        ours_line = [*ours, "statusline"]
        bare = [sys.executable, "-c", "pass"]
        cc, cc_label = ccusage_binary(args.ccusage)
        cc_line = [*cc, "statusline", "--offline"] if cc else None
        with_usage = payload(transcript, session, usage)
        transcript_only = payload(transcript, session, None)

        def cold_env(i: int) -> dict[str, str]:
            return {**env, "CTXBUDGET_CACHE_DIR": str(tmp / f"cache-cold-{i}")}

        timer.run(ours_line, with_usage, cold_env(-1))  # write the bytecode once
        timer.run(ours_line, transcript_only, cold_env(-2))  # (the reader's too)
        timer.run(ours_line, with_usage)
        timer.run([*ours, "--help"])

        times: dict[str, list[float]] = {}
        lines: dict[str, str] = {}

        def measure(name: str, fn: Callable[[], tuple[float, str]]) -> None:
            seconds, line = fn()
            times.setdefault(name, []).append(seconds)
            lines.setdefault(name, line)

        for i in range(runs):
            measure("bare python", lambda: timer.run(bare))
            measure("ours cold", lambda i=i: timer.run(ours_line, with_usage, cold_env(i)))
            measure("ours warm", lambda: timer.run(ours_line, with_usage))
            measure("ours --help", lambda: timer.run([*ours, "--help"]))
            if cc_line:
                measure("ccusage cold", lambda: timer.run([*cc_line, "--no-cache"], with_usage))
                measure("ccusage warm", lambda: timer.run(cc_line, with_usage))
        # transcript only (older Claude Code): a full first read, fewer runs
        for i in range(min(runs, 5)):
            measure(
                "ours transcript-only cold",
                lambda i=i: timer.run(ours_line, transcript_only, cold_env(1000 + i)),
            )
            if cc_line:
                measure(
                    "ccusage transcript-only cold",
                    lambda: timer.run([*cc_line, "--no-cache"], transcript_only),
                )

        # appends: the state saved by a call, then N records, then one timed call
        append_rows = []
        serial = 0
        for n in (1, 10, 100):
            shutil.copyfile(original, transcript)
            key = f"ours after {n} appended"
            ckey = f"ccusage after {n} appended"
            sizes = []
            for _ in range(runs):
                serial += 1
                aenv = {**env, "CTXBUDGET_CACHE_DIR": str(tmp / f"cache-append-{n}")}
                timer.run(ours_line, transcript_only, aenv)  # the state is saved
                data = records_to_append(original, n, serial)
                with transcript.open("ab") as f:
                    f.write(data)
                sizes.append(len(data))
                measure(key, lambda aenv=aenv: timer.run(ours_line, with_usage, aenv))
                if cc_line:
                    measure(ckey, lambda: timer.run(cc_line, with_usage))
            append_rows.append((n, key, ckey, int(statistics.median(sizes))))

    base = statistics.median(times["bare python"])
    result: dict[str, Any] = {
        "machine": machine(),
        "transcript": {"session": session[:8], "bytes": size_bytes},
        "ccusage": cc_label,
        "runs": runs,
        "median_ms": {k: median_ms(v) for k, v in times.items()},
        "ratio_to_bare_python": {
            k: round(statistics.median(v) / base, 2) for k, v in times.items()
        },
        "lines": lines,
    }
    speedups = {}
    for ours_key, cc_key in (
        ("ours cold", "ccusage cold"),
        ("ours warm", "ccusage warm"),
        ("ours transcript-only cold", "ccusage transcript-only cold"),
        *((k, ck) for _, k, ck, _ in append_rows),
    ):
        if cc_key in times:
            speedups[ours_key] = round(
                statistics.median(times[cc_key]) / statistics.median(times[ours_key]), 1
            )
    result["times_faster_than_ccusage"] = speedups
    result["append_bytes"] = {k: size for _, k, _, size in append_rows}
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return 0

    med = result["median_ms"]
    ratio = result["ratio_to_bare_python"]
    print(f"Machine: {result['machine']}")
    print(
        f"Transcript: largest shared session {session[:8]} ({size_bytes / 1e6:.1f} MB); "
        f"runs per figure: {runs}"
    )
    print(cc_label)
    print()
    head = f"{'path':<30} {'ctxbudget':>10} {'× python':>9} {'ccusage':>9} {'ccusage/ours':>13}"
    print(head)
    print("─" * len(head))
    rows = [
        ("bare python -c pass", "bare python", None),
        ("cold (current_usage)", "ours cold", "ccusage cold"),
        ("warm (nothing new)", "ours warm", "ccusage warm"),
        *((f"after {n} appended ({size / 1000:.1f} kB)", k, ck) for n, k, ck, size in append_rows),
        ("transcript only, cold", "ours transcript-only cold", "ccusage transcript-only cold"),
        ("ctxbudget --help", "ours --help", None),
    ]
    for label, key, ckey in rows:
        cc_ms = f"{med[ckey]:.0f} ms" if ckey and ckey in med else "—"
        faster = f"{speedups[key]:.1f}×" if key in speedups else "—"
        print(f"{label:<30} {med[key]:>7.0f} ms {ratio[key]:>8.2f}× {cc_ms:>9} {faster:>13}")
    print("─" * len(head))
    print(
        "Goals: cold ≤ 3×, warm ≤ 2×, --help ≤ 3× python -c pass; after an append, cost "
        "following the bytes appended; ≥ 5× faster than ccusage on every path."
    )
    checks = {
        "cold ≤ 3×": ratio["ours cold"] <= 3,
        "warm ≤ 2×": ratio["ours warm"] <= 2,
        "--help ≤ 3×": ratio["ours --help"] <= 3,
    }
    if speedups:
        checks["≥ 5× ccusage"] = min(speedups.values()) >= 5
    print("  ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items()))
    print(f"\nours:    {lines.get('ours cold', '')}")
    if cc_line:
        print(f"ccusage: {lines.get('ccusage cold', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
