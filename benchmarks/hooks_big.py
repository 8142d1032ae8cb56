"""Claude Code hooks on a big transcript: first read, then after an append.

Generates a synthetic transcript (``synth_claude_code``; ``--exchanges``, default 45,000:
~120 MB, ~140k items) unless ``--transcript`` is given, then runs each hook as Claude
Code does (a process, JSON on stdin) with a fresh cache (first read: the whole file),
appends 10 exchanges and runs it again (incremental). Prints wall time and peak RSS
of each run and the ratio after-append / first read. Goal (issue 11): after the first
read every hook ≤ 1 s and ≤ 200 MB, the first read ≤ 10 s.

    python benchmarks/hooks_big.py [--exchanges N] [--transcript PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synth_claude_code import SESSION_ID, append_exchanges, write_transcript

HOOKS = {
    "pre-tool-use": {
        "hook_event_name": "PreToolUse",
        "tool_name": "Agent",
        "tool_input": {"prompt": "Review it.", "subagent_type": "reviewer"},
        "tool_use_id": "toolu_bench",
    },
    "user-prompt-submit": {"hook_event_name": "UserPromptSubmit", "prompt": "Go on."},
    "session-start": {"hook_event_name": "SessionStart", "source": "resume"},
    "pre-compact": {"hook_event_name": "PreCompact", "trigger": "auto"},
}


def run(event: str, stdin: str, env: dict[str, str]) -> tuple[float, float, int]:
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ctxbudget.cli.hooks", "hook", event],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(stdin.encode())
    proc.stdin.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss / 1024, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--exchanges", type=int, default=45_000)
    parser.add_argument("--transcript", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ctxbudget-hooks-"))
    try:
        path = work / "big.jsonl"
        if args.transcript:
            shutil.copy(args.transcript, path)
        else:
            write_transcript(path, args.exchanges)
        print(f"transcript: {path.stat().st_size / 1e6:.1f} MB")
        print(f"{'hook':<20} {'first s':>8} {'MB':>6} {'after s':>8} {'MB':>6} {'ratio':>6} exit")
        n = args.exchanges
        for event, fields in HOOKS.items():
            env = {
                **os.environ,
                "CTXBUDGET_STORE": f"sqlite:///{work / (event + '.db')}",
                "CTXBUDGET_CACHE_DIR": str(work / ("cache-" + event)),
            }
            stdin = json.dumps(
                {
                    "session_id": SESSION_ID,
                    "transcript_path": str(path),
                    "cwd": "/home/dev/proj",
                    **fields,
                }
            )
            first, first_mb, code1 = run(event, stdin, env)
            append_exchanges(path, 10, n, total=args.exchanges + 1000)
            n += 10
            after, after_mb, code2 = run(event, stdin, env)
            print(
                f"{event:<20} {first:8.2f} {first_mb:6.0f} {after:8.2f} {after_mb:6.0f} "
                f"{after / first:6.3f} {code1}/{code2}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
