"""A big synthetic Claude Code transcript: N exchanges of assistant text, a tool call
and its result, with real-looking text and usage that grows towards a chosen fill.

Each exchange writes four records in Claude Code's JSONL shape: an assistant text
block and a ``tool_use`` block (two records of one ``message.id``, each with
``usage``), then the user record with the ``tool_result`` and, every tenth exchange,
a user prompt. Reported context grows linearly from ~20k tokens to ``--fill`` × the
window at the last call, so a gate run on the file sees the session near its end.

    python benchmarks/synth_claude_code.py OUT.jsonl [--items 200000] [--fill 0.96]

``append_exchanges(path, n, start)`` writes ``n`` more exchanges after the last one
(what the after-append benchmarks use). Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any, TextIO

SESSION_ID = "5e7c1a2b-0d3f-4b9e-8a61-b2c4d6e8f001"
MODEL = "claude-sonnet-4-5-20250929"
WINDOW = 200_000
_TEXT = (
    "the function returns a list of pending invoices for each customer account and "
    "checks whether the refund path handles partial payments correctly before the "
    "migration runs against the staging database we should add a test for the edge "
    "case where the currency differs from the account default then update the "
    "changelog and the docs module config parser handles missing keys by raising a "
    "clear error with the file name line number and the expected type"
)
_WORDS = tuple(_TEXT.split())
_TOOLS = ("Read", "Bash", "Grep", "Edit")


def _sentence(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _paragraph(rng: random.Random, sentences: int) -> str:
    return " ".join(_sentence(rng, rng.randint(8, 22)) for _ in range(sentences))


def _code(rng: random.Random, lines: int) -> str:
    out = []
    for n in range(lines):
        name = rng.choice(("invoice", "refund", "account", "config", "parser"))
        out.append(f"{n + 1:>5}\tdef {name}_{rng.randint(1, 999)}(self, value):  # {name}")
    return "\n".join(out)


class _Writer:
    def __init__(self, out: TextIO, total: int, fill: float, seed: int) -> None:
        self.out = out
        self.total = max(1, total)
        self.fill = fill
        self.rng = random.Random(seed)
        self.parent: str | None = None

    def _record(self, n: int, part: str, rtype: str, message: dict[str, Any]) -> None:
        uuid = f"{n:08x}-{part}-4000-8000-{self.rng.getrandbits(48):012x}"
        record = {
            "parentUuid": self.parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": "/home/dev/proj",
            "sessionId": SESSION_ID,
            "version": "2.0.50",
            "gitBranch": "main",
            "type": rtype,
            "uuid": uuid,
            "timestamp": f"2025-11-02T{10 + n // 360000 % 10:02d}:{n // 6000 % 60:02d}:"
            f"{n // 100 % 60:02d}.{n % 100:02d}0Z",
            "message": message,
        }
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.parent = uuid

    def exchange(self, n: int) -> None:
        rng = self.rng
        if n % 10 == 0:
            self._record(n, "p", "user", {"role": "user", "content": _paragraph(rng, 2)})
        context = 20_000 + int((self.fill * WINDOW - 20_000) * (n + 1) / self.total)
        usage = {
            "input_tokens": 8,
            "cache_creation_input_tokens": 400,
            "cache_read_input_tokens": max(0, context - 408),
            "output_tokens": rng.randint(60, 400),
        }
        mid = f"msg_{n:010d}"
        tool = rng.choice(_TOOLS)
        tool_id = f"toolu_{n:010d}"
        base = {"id": mid, "type": "message", "role": "assistant", "model": MODEL}
        text = [{"type": "text", "text": _paragraph(rng, rng.randint(1, 4))}]
        self._record(n, "a", "assistant", {**base, "content": text, "usage": usage})
        call = {"type": "tool_use", "id": tool_id, "name": tool, "input": self._input(tool)}
        self._record(n, "b", "assistant", {**base, "content": [call], "usage": usage})
        result = _code(rng, rng.randint(5, 40)) if tool in ("Read", "Grep") else _paragraph(rng, 3)
        block = {"type": "tool_result", "tool_use_id": tool_id, "content": result}
        self._record(n, "r", "user", {"role": "user", "content": [block]})

    def _input(self, tool: str) -> dict[str, Any]:
        rng = self.rng
        if tool == "Bash":
            return {"command": f"pytest -q tests/test_{rng.choice(_WORDS)}.py"}
        if tool == "Grep":
            return {"pattern": rng.choice(_WORDS), "path": "src"}
        path = f"src/{rng.choice(_WORDS)}/{rng.choice(_WORDS)}.py"
        if tool == "Edit":
            return {"file_path": path, "old_string": "x", "new_string": _sentence(rng, 6)}
        return {"file_path": path}


def write_transcript(path: Path, items: int, *, fill: float = 0.96, seed: int = 7) -> Path:
    """``items`` exchanges (assistant text + tool call + tool result) into ``path``."""
    with path.open("w", encoding="utf-8") as out:
        writer = _Writer(out, items, fill, seed)
        for n in range(items):
            writer.exchange(n)
    return path


def append_exchanges(path: Path, count: int, start: int, *, total: int, fill: float = 0.96) -> None:
    """``count`` more exchanges numbered from ``start``, chained to the file's last
    record, with usage on the same slope as a ``total``-exchange file."""
    last = None
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - 65536))
        for line in f.read().splitlines():
            if line.strip():
                last = line
    with path.open("a", encoding="utf-8") as out:
        writer = _Writer(out, total, fill, seed=start)
        writer.parent = json.loads(last)["uuid"] if last else None
        for n in range(start, start + count):
            writer.exchange(n)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--items", type=int, default=200_000, help="exchanges (default 200,000)")
    parser.add_argument("--fill", type=float, default=0.96, help="last call's share of 200k")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    write_transcript(args.out, args.items, fill=args.fill, seed=args.seed)
    size = args.out.stat().st_size
    print(f"{args.out}: {args.items:,} exchanges, {size / 1e6:.1f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
