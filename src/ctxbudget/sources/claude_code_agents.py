"""Reader of Claude Code's sub-agent transcripts (``agent-<id>.jsonl``).

Newer Claude Code keeps each sub-agent's traffic out of the main transcript, in a file
of its own: ``<project>/<session>/subagents/agent-<id>.jsonl`` (2.1.2+), else
``<project>/agent-<id>.jsonl`` next to the main transcript, whose records carry the
``sessionId`` of the session that started it. Next to it, ``agent-<id>.meta.json``
may hold the sub-agent's ``agentType``.

``subagent_usages`` gives each sub-agent's own usage (last context size, API calls,
output tokens) for the per-sub-agent breakdown; ``read_agent_transcript`` reads one
file (the SubagentStop hook records what it finds); ``find_subagent_transcripts`` and
``agent_dirs`` say where the files are. Like every reader it does no counting: the
figures are the usage the provider reported.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..model import AgentUsage, Usage
from .problems import loads
from .tools import AGENT_TOOLS

__all__ = [
    "AgentTranscript",
    "AgentUsage",
    "agent_dirs",
    "find_subagent_transcripts",
    "read_agent_transcript",
    "subagent_usages",
]


def _lines(path: Path) -> Iterator[str]:
    with path.open("rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    if compressed:
        import gzip

        try:
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
                yield from f
        except (OSError, EOFError):
            return  # a damaged or cut-short archive: what was read is what there is
    else:
        with path.open("r", encoding="utf-8", errors="replace") as f:
            yield from f


def _records(path: Path) -> Iterator[dict[str, Any]]:
    for line in _lines(path):
        if not line.strip():
            continue
        try:
            record = loads(line)
        except ValueError:
            continue  # a line cut short while Claude Code was writing it
        if isinstance(record, dict):
            yield record


def _message_text(message: Any) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(b.get("text", ""))
            for b in content
            if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


@dataclass(slots=True)
class AgentTranscript:
    """What one sub-agent transcript says: who the agent is and what it used."""

    path: Path
    agent_id: str | None = None
    session_id: str | None = None
    agent_type: str | None = None
    first_prompt: str | None = None
    first_timestamp: str = ""
    last_context: int = 0
    outputs: dict[str, int] = field(default_factory=dict)  # message id -> final output
    items: int = 0
    bad_usage: int = 0  # assistant records whose usage has a count that is no count

    @property
    def warmup(self) -> bool:
        """Claude Code's prompt-cache warm-up agents: no work of the user's."""
        return (self.first_prompt or "").strip() == "Warmup"

    def usage(self, name: str) -> AgentUsage:
        return AgentUsage(
            name=name,
            context_tokens=self.last_context,
            calls=len(self.outputs),
            output_tokens=sum(self.outputs.values()),
            items=self.items,
        )


def read_agent_transcript(path: Path) -> AgentTranscript:
    """One sub-agent transcript: its usage counted once per ``message.id``."""
    stats = AgentTranscript(path=path, agent_type=_meta_agent_type(path))
    anonymous = 0
    for record in _records(path):
        stats.agent_id = stats.agent_id or _str(record.get("agentId"))
        stats.session_id = stats.session_id or _str(record.get("sessionId"))
        if not stats.first_timestamp:
            stats.first_timestamp = _str(record.get("timestamp")) or ""
        rtype = record.get("type")
        message = record.get("message")
        if rtype not in ("user", "assistant") or not isinstance(message, dict):
            continue
        content = message.get("content")
        stats.items += len(content) if isinstance(content, list) else 1
        if rtype == "user" and stats.first_prompt is None:
            stats.first_prompt = _message_text(message)
        usage = message.get("usage")
        if rtype != "assistant" or not isinstance(usage, dict):
            continue
        try:
            parsed = Usage.from_api(usage)
        except ValueError:
            stats.bad_usage += 1  # a count that is not a whole number: not a usage
            continue
        if parsed.context_tokens <= 0:
            continue  # Claude Code's own messages (errors, aborts) report zero usage
        message_id = _str(message.get("id"))
        if message_id is None:
            anonymous += 1
            message_id = f"#{anonymous}"
        elif message_id in stats.outputs:
            # one response over several records: the last carries the final output
            stats.outputs[message_id] = max(stats.outputs[message_id], parsed.output_tokens)
            continue
        stats.outputs[message_id] = parsed.output_tokens
        stats.last_context = parsed.context_tokens
    return stats


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _meta_agent_type(path: Path) -> str | None:
    """``agent-<id>.meta.json`` (next to the transcript) holds ``agentType``."""
    meta = path.with_name(path.name.removesuffix(".jsonl") + ".meta.json")
    try:
        data = loads(meta.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return None
    return _str(data.get("agentType")) if isinstance(data, dict) else None


def _session_of(path: Path) -> str:
    name = path.name
    for suffix in (".gz", ".jsonl"):
        name = name.removesuffix(suffix)
    return name


def agent_dirs(transcript: Path, session_id: str | None = None) -> list[Path]:
    """Where a session's sub-agent transcripts live: ``<project>/<session>/subagents/``
    (Claude Code 2.1.2+), else the project directory itself (earlier versions)."""
    return [
        transcript.parent / (session_id or _session_of(transcript)) / "subagents",
        transcript.parent,
    ]


def find_subagent_transcripts(
    transcript_path: str | os.PathLike[str], session_id: str | None = None
) -> list[Path]:
    """The ``agent-*.jsonl`` files of this session, oldest first.

    In ``<project>/<session_id>/subagents/`` every file belongs to the session; in the
    project directory (older versions) only those whose records carry this
    ``sessionId``. Claude Code's internal compaction agents (``agent-acompact-*``) are
    left out. A sub-agent's own file (``agent-<id>.jsonl``) has none: its siblings are
    the session's.
    """
    main = Path(transcript_path).expanduser()
    if main.name.startswith("agent-"):
        return []
    sid = session_id or _session_of(main)
    nested, legacy = agent_dirs(main, sid)
    found: list[Path] = []
    if nested.is_dir():
        found.extend(sorted(nested.glob("agent-*.jsonl")))
    if legacy.is_dir():
        for candidate in sorted(legacy.glob("agent-*.jsonl")):
            first = next(_records(candidate), None)
            if first is not None and first.get("sessionId") == sid:
                found.append(candidate)
    return [p for p in found if not p.name.startswith("agent-acompact")]


def _parent_index(transcript: Path) -> tuple[dict[str, list[str]], set[str]]:
    """From the main transcript: sub-agent names by prompt (from each Task/Agent call,
    named as the transcript reader names them) and the agent ids whose records the
    main file already holds as sidechains (not to be counted twice)."""
    names: dict[str, list[str]] = {}
    inline: set[str] = set()
    for line in _lines(transcript):
        sidechain = '"isSidechain":true' in line or '"isSidechain": true' in line
        if not sidechain and '"tool_use"' not in line:
            continue
        try:
            record = loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("isSidechain"):
            agent_id = _str(record.get("agentId"))
            if agent_id:
                inline.add(agent_id)
            continue
        message = record.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if not isinstance(block, dict) or block.get("type") != "tool_use":
                continue
            name = block.get("name")
            if not isinstance(name, str) or name not in AGENT_TOOLS:
                continue
            if not isinstance(block.get("input"), dict):
                continue
            tool_input = block["input"]
            name = str(tool_input.get("subagent_type") or tool_input.get("description") or "")
            names.setdefault(str(tool_input.get("prompt", "")).strip(), []).append(name)
    return names, inline


def subagent_usages(
    transcript_path: str | os.PathLike[str], session_id: str | None = None
) -> list[AgentUsage]:
    """Each sub-agent's own usage, from the ``agent-*.jsonl`` files of this session.

    Newer Claude Code keeps sub-agents out of the main transcript; this reads each
    one's last reported context size, its API calls and output tokens. A sub-agent is
    named after the Task/Agent call that started it (``subagent_type``, else its
    description), else its ``.meta.json`` ``agentType``, else ``agent-<id>``; repeats
    get ``#2``, ``#3``. Agents the main transcript already holds as sidechain records,
    and warm-up agents, are left out. Returns [] when there are none.
    """
    main = Path(transcript_path).expanduser()
    files = [read_agent_transcript(p) for p in find_subagent_transcripts(main, session_id)]
    files = [f for f in files if not f.warmup]
    if not files:
        return []
    prompts, inline = _parent_index(main) if main.is_file() else ({}, set())
    files.sort(key=lambda f: (f.first_timestamp, f.path.name))
    used: dict[str, int] = {}
    out = []
    for f in files:
        if f.agent_id is not None and f.agent_id in inline:
            continue
        candidates = prompts.get((f.first_prompt or "").strip())
        base = (candidates.pop(0) if candidates else None) or f.agent_type
        base = base or f"agent-{f.agent_id or f.path.stem.removeprefix('agent-')}"
        used[base] = used.get(base, 0) + 1
        out.append(f.usage(base if used[base] == 1 else f"{base}#{used[base]}"))
    return out
