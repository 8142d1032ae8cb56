"""Synthetic Claude Code sessions of any size, deterministic by seed.

The shared data holds real sessions of a few hundred items; scale work needs sessions of
10,000 to 200,000. This module writes a Claude Code transcript (JSONL, one record per
content block, the way Claude Code writes them) of exactly ``items`` context items: a
first user request, then rounds of assistant text + tool call + tool result, with a
user message now and then. The text is varied and real-looking: prose with the kind
of facts people track (requirement ids, decisions, paths, numbers with units), Python
and Go code, JSON, file listings, search hits, shell output, edits, todo lists. The
same ``seed`` and ``items`` always give the same bytes.

Assistant records carry ``usage`` (the input tokens of the call, grown by about a
quarter of the characters added since, like a provider that counts everything sent),
and every record has ``uuid`` / ``parentUuid`` / ``sessionId`` / ``timestamp``.

From the command line (writes the file, prints one line with its size)::

    python benchmarks/synth.py --items 20000 --out /tmp/session.jsonl [--seed 7] [--compacted]

``--compacted`` ends the session with Claude Code's own ``/compact`` (its boundary,
the summary and one answer after it): every item before is what ``recall`` searches.

From another benchmark::

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from synth import write_session, session_records
    write_session(path, items=20_000, seed=7)     # returns the number of records
    append_compaction(path)                       # then Claude Code's /compact
    for record in session_records(items=300): ... # the same records, as dicts
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any


def _list(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_WORDS = _list(
    "the a an of to in for on with by from at as into over after before under between "
    "request response handler server client cache store session token budget window "
    "context limit retry timeout queue worker thread process lock index schema table "
    "column migration query result error warning config option flag default value "
    "parser reader writer stream buffer file path directory module package function "
    "method class object field record event ledger archive summary report agent task "
    "test fixture benchmark profile latency throughput memory disk network socket "
    "endpoint route middleware template render component state update delete insert "
    "select filter sort merge split join count total average median maximum minimum "
    "check validate parse encode decode compress hash sign verify load save open close "
    "start stop run build deploy release rollback commit branch review issue fix bug "
    "feature refactor rename move extract inline simplify document explain measure"
)
_VERBS = _list(
    "read checked updated fixed found added removed moved renamed tested measured "
    "reviewed traced replaced simplified documented refactored profiled verified"
)
_DIRS = _list(
    "src api core internal cmd pkg lib utils models services handlers storage config "
    "cli web server client tests docs scripts tools migrations templates static"
)
_STEMS = _list(
    "session store cache parser reader writer budget ledger archive router auth user "
    "token counter policy status render engine worker queue index schema client server "
    "config events metrics logging errors"
)
_EXTS = (".py", ".go", ".ts", ".md", ".json", ".yaml", ".toml", ".sql", ".rs")
_UNITS = ("ms", "s", "MB", "KB", "GB", "tokens", "%", "req/s", "items", "lines")
_TOOLS = (
    ("Bash", 24),
    ("Read", 22),
    ("Edit", 18),
    ("Grep", 10),
    ("Glob", 5),
    ("LS", 4),
    ("Write", 4),
    ("TodoWrite", 3),
    ("WebSearch", 2),
)
_TOOL_NAMES = [name for name, _ in _TOOLS]


def _vocabulary() -> tuple[str, ...]:
    """The common words, then a few thousand rarer made-up ones (fixed, whatever the seed):
    real text has a long tail of rare words, which near-duplicate detection relies on."""
    rng = random.Random(0)
    onsets = _list("b c d f g h k l m n p r s t v w br cl dr gr pl pr sh st th tr")
    vowels = _list("a e i o u a e i o ea ou")
    codas = _list("- - - n r s t l m nd st ng")
    rare: dict[str, None] = {}
    while len(rare) < 4000:
        syllables = rng.choice((2, 2, 2, 3, 3))
        word = "".join(
            rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas).strip("-")
            for _ in range(syllables)
        )
        rare.setdefault(word, None)
    return (*_WORDS, *rare)


_VOCABULARY = _vocabulary()
# Zipf's law: the n-th most common word is used about 1/n as often as the first.
_ZIPF = list(itertools.accumulate(1 / n for n in range(1, len(_VOCABULARY) + 1)))
_TOOL_WEIGHTS = [weight for _, weight in _TOOLS]
_CWD = "/home/dev/projects/atlas"


class _Text:
    """Text of every kind, from one random generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.req = 100

    def words(self, n: int) -> str:
        return " ".join(self.rng.choices(_VOCABULARY, cum_weights=_ZIPF, k=n))

    def sentence(self) -> str:
        r = self.rng
        text = self.words(r.randint(6, 18))
        roll = r.random()
        if roll < 0.08:
            self.req += r.randint(1, 3)
            text += f" per REQ-{self.req}"
        elif roll < 0.14:
            text += f" in {self.path()}"
        elif roll < 0.20:
            text += f" at {r.randint(2, 950)} {r.choice(_UNITS)}"
        return text[0].upper() + text[1:] + "."

    def prose(self, sentences: int) -> str:
        r = self.rng
        out = []
        for _ in range(sentences):
            roll = r.random()
            if roll < 0.04:
                out.append(f"Decision: we {r.choice(_VERBS)} the {self.words(3)} instead.")
            elif roll < 0.06:
                out.append(f"Open question: should the {self.words(4)} stay?")
            else:
                out.append(self.sentence())
        return " ".join(out)

    def ident(self) -> str:
        r = self.rng
        return f"{r.choice(_STEMS)}_{r.choice(_WORDS)}_{r.randint(0, 99)}"

    def path(self) -> str:
        r = self.rng
        parts = [r.choice(_DIRS) for _ in range(r.randint(1, 3))]
        return f"{'/'.join(parts)}/{r.choice(_STEMS)}_{r.randint(1, 40)}{r.choice(_EXTS)}"

    def code_lines(self, n: int) -> list[str]:
        r = self.rng
        lines: list[str] = []
        while len(lines) < n:
            name, arg = self.ident(), r.choice(_STEMS)
            lines += [
                f"def {name}({arg}: dict[str, int], limit: int = {r.randint(1, 500)}) -> int:",
                f'    """{self.sentence()}"""',
                f"    total = sum({arg}.values())",
                f"    if total > limit:  # {self.words(r.randint(2, 6))}",
                f'        raise ValueError(f"{self.words(3)}: {{total}} > {{limit}}")',
                f"    return total * {r.randint(2, 9)} + len({arg})",
                "",
            ]
        return lines[:n]

    def json_blob(self) -> str:
        r = self.rng
        data = {
            "id": f"{r.getrandbits(48):012x}",
            "name": self.ident(),
            "status": r.choice(["ok", "pending", "failed", "running"]),
            "count": r.randint(0, 10_000),
            "items": [
                {"key": r.choice(_STEMS), "value": r.randint(0, 999), "note": self.words(4)}
                for _ in range(r.randint(2, 8))
            ],
            "path": self.path(),
        }
        return json.dumps(data, indent=2)

    def listing(self) -> str:
        r = self.rng
        root = f"{_CWD}/{r.choice(_DIRS)}"
        lines = [f"- {root}/"]
        for _ in range(r.randint(4, 24)):
            depth = r.randint(1, 3)
            lines.append("  " * depth + f"- {self.path().rsplit('/', 1)[1]}")
        return "\n".join(lines)

    def numbered(self, lines: list[str], start: int) -> str:
        return "\n".join(f"{start + i:>6}→{line}" for i, line in enumerate(lines))


def _tool_call(text: _Text, name: str) -> tuple[dict[str, Any], str]:
    """A tool's input and the text of its result."""
    r = text.rng
    if name == "Bash":
        command = r.choice(
            [
                f"python -m pytest tests/test_{r.choice(_STEMS)}.py -q",
                f"git diff --stat {r.choice(_DIRS)}",
                f"ls -la {r.choice(_DIRS)}/{r.choice(_DIRS)}",
                f"curl -s localhost:{r.randint(3000, 9000)}/api/{r.choice(_STEMS)}",
            ]
        )
        if r.random() < 0.1:
            result = f"Error: {text.sentence()}\nTraceback (most recent call last):\n" + "\n".join(
                f'  File "{text.path()}", line {r.randint(1, 900)}, in {text.ident()}'
                for _ in range(r.randint(2, 6))
            )
        elif command.startswith("curl"):
            result = text.json_blob()
        else:
            result = "\n".join(
                f"{text.path()} {r.choice(['PASSED', 'ok', '+12 -3', 'modified'])} "
                f"{r.randint(1, 900)} {r.choice(_UNITS)}"
                for _ in range(r.randint(3, 30))
            )
        return {"command": command, "description": text.words(5)}, result
    if name == "Read":
        start = r.choice([1, 1, 1, r.randint(20, 400)])
        body = (
            text.code_lines(r.randint(10, 90)) if r.random() < 0.7 else text.prose(12).split(". ")
        )
        return {"file_path": f"{_CWD}/{text.path()}"}, text.numbered(body, start)
    if name == "Edit":
        path = f"{_CWD}/{text.path()}"
        old, new = text.code_lines(r.randint(1, 6)), text.code_lines(r.randint(1, 8))
        result = (
            f"The file {path} has been updated. Here's the result of running `cat -n` on a "
            "snippet of the edited file:\n" + text.numbered(new, r.randint(1, 500))
        )
        return {
            "file_path": path,
            "old_string": "\n".join(old),
            "new_string": "\n".join(new),
        }, result
    if name == "Write":
        path = f"{_CWD}/{text.path()}"
        content = "\n".join(text.code_lines(r.randint(15, 60)))
        return {"file_path": path, "content": content}, f"File created successfully at: {path}"
    if name == "Grep":
        pattern = text.ident()
        hits = [f"{_CWD}/{text.path()}" for _ in range(r.randint(1, 15))]
        return {"pattern": pattern, "output_mode": "files_with_matches"}, (
            f"Found {len(hits)} files\n" + "\n".join(hits)
        )
    if name == "Glob":
        hits = [f"{_CWD}/{text.path()}" for _ in range(r.randint(1, 20))]
        return {"pattern": f"{r.choice(_DIRS)}/**/*{r.choice(_EXTS)}"}, "\n".join(hits)
    if name == "LS":
        return {"path": f"{_CWD}/{r.choice(_DIRS)}"}, text.listing()
    if name == "TodoWrite":
        todos = [
            {
                "id": str(n + 1),
                "content": text.sentence(),
                "status": r.choice(["pending", "in_progress", "completed"]),
                "priority": r.choice(["high", "medium", "low"]),
            }
            for n in range(r.randint(2, 7))
        ]
        return {"todos": todos}, (
            "Todos have been modified successfully. Ensure that you continue to use the todo "
            "list to track your progress. Please proceed with the current tasks if applicable"
        )
    query = text.words(r.randint(3, 6))
    return {"query": query}, "\n\n".join(
        f"{n + 1}. {text.words(6).title()}\n{text.prose(2)}" for n in range(r.randint(3, 6))
    )


def session_records(items: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """The records of a session with exactly ``items`` context items (content blocks)."""
    if items < 1:
        raise ValueError("items must be at least 1")
    rng = random.Random(seed)
    text = _Text(rng)
    session_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    clock = datetime(2025, 7, 1, 9, 0, tzinfo=UTC)
    parent: str | None = None
    context = 12_000  # the system prompt and tool definitions Claude Code sends
    produced = 0

    def record(kind: str, message: dict[str, Any], **extra: Any) -> dict[str, Any]:
        nonlocal parent, clock
        clock += timedelta(seconds=rng.randint(1, 40))
        record_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        data: dict[str, Any] = {
            "parentUuid": parent,
            "isSidechain": False,
            "userType": "external",
            "cwd": _CWD,
            "sessionId": session_id,
            "version": "1.0.57",
            "gitBranch": "main",
            "type": kind,
            "message": message,
            "uuid": record_id,
            "timestamp": clock.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **extra,
        }
        parent = record_id
        return data

    def user_text() -> dict[str, Any]:
        nonlocal context, produced
        prompt = text.prose(rng.randint(1, 4))
        context += len(prompt) // 4
        produced += 1
        return record("user", {"role": "user", "content": prompt})

    def assistant(blocks: list[dict[str, Any]], message_id: str) -> Iterator[dict[str, Any]]:
        nonlocal produced
        usage = {
            "input_tokens": 4,
            "cache_creation_input_tokens": 600,
            "cache_read_input_tokens": max(0, context - 604),
            "output_tokens": sum(len(json.dumps(b)) for b in blocks) // 4,
            "service_tier": "standard",
        }
        for block in blocks:  # one record per content block, each repeating the usage
            produced += 1
            message = {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-20250514",
                "content": [block],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage,
            }
            yield record("assistant", message, requestId=f"req_{message_id[4:]}")

    yield user_text()
    while produced < items:
        left = items - produced
        if rng.random() < 0.03 and left >= 1:
            yield user_text()
            continue
        message_id = f"msg_{rng.getrandbits(96):024x}"
        said = text.prose(rng.randint(1, 5))
        if left < 3:  # no room for a call and its result: end on the assistant's text
            yield from assistant([{"type": "text", "text": said}], message_id)
            continue
        name = rng.choices(_TOOL_NAMES, _TOOL_WEIGHTS)[0]
        tool_input, result = _tool_call(text, name)
        call_id = f"toolu_{rng.getrandbits(96):024x}"
        blocks = [
            {"type": "text", "text": said},
            {"type": "tool_use", "id": call_id, "name": name, "input": tool_input},
        ]
        yield from assistant(blocks, message_id)
        context += (len(said) + len(json.dumps(tool_input))) // 4 + 30
        block = {"tool_use_id": call_id, "type": "tool_result", "content": result}
        produced += 1
        yield record("user", {"role": "user", "content": [block]}, toolUseResult={"stdout": result})
        context += len(result) // 4 + 10


def write_session(path: str | Path, items: int, seed: int = 7) -> int:
    """Write a session of ``items`` context items to ``path``; returns the record count."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for data in session_records(items, seed):
            out.write(json.dumps(data, ensure_ascii=False))
            out.write("\n")
            n += 1
    return n


def append_compaction(path: str | Path) -> None:
    """Append Claude Code's ``/compact`` to the session at ``path``: a boundary after
    its last record (``logicalParentUuid``), the summary, an answer after it."""
    with Path(path).open("rb") as lines:
        lines.seek(max(0, lines.seek(0, 2) - 1_000_000))
        last = json.loads(lines.read().splitlines()[-1])
    common = {"isSidechain": False, "sessionId": last["sessionId"], "cwd": _CWD}
    boundary = {
        **common,
        "parentUuid": None,
        "logicalParentUuid": last["uuid"],
        "type": "system",
        "subtype": "compact_boundary",
        "uuid": "compact-boundary",
        "content": "Conversation compacted",
        "compactMetadata": {"trigger": "manual"},
    }
    summary = {
        **common,
        "parentUuid": "compact-boundary",
        "type": "user",
        "uuid": "compact-summary",
        "isCompactSummary": True,
        "message": {
            "role": "user",
            "content": "This session is being continued from a previous conversation. "
            "Summary: the work so far on the atlas project.",
        },
    }
    usage = {"input_tokens": 5, "cache_read_input_tokens": 15_000, "output_tokens": 5}
    answer = {
        **common,
        "parentUuid": "compact-summary",
        "type": "assistant",
        "uuid": "compact-answer",
        "message": {
            "id": "msg_after_compact",
            "role": "assistant",
            "model": "claude-sonnet-4-20250514",
            "content": [{"type": "text", "text": "Continuing."}],
            "usage": usage,
        },
    }
    with Path(path).open("a", encoding="utf-8") as out:
        for record in (boundary, summary, answer):
            out.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, required=True, help="context items (blocks)")
    parser.add_argument("--out", required=True, help="the JSONL file to write")
    parser.add_argument("--seed", type=int, default=7, help="same seed, same bytes (7)")
    parser.add_argument(
        "--compacted", action="store_true", help="end with Claude Code's /compact (for recall)"
    )
    args = parser.parse_args(argv)
    if args.items < 1:
        parser.error("--items must be at least 1")
    records = write_session(args.out, args.items, args.seed)
    if args.compacted:
        append_compaction(args.out)
        records += 3
    size = Path(args.out).stat().st_size
    print(f"{args.out}: {args.items:,} items, {records:,} records, {size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
