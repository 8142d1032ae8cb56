"""A compacted context written to a file: in the format it was read from, as an
OpenAI message list, or as plain text; the file replaced atomically.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._files import write_atomic
from ..errors import SourceError
from ..model import Carried, Item
from .claude_code_writer import to_claude_code
from .responses import to_responses
from .writers import to_anthropic, to_openai

__all__ = ["FORMATS", "to_text", "write"]


def to_text(items: Sequence[Item]) -> str:
    """One ``[role/kind] text`` block per item, separated by blank lines."""
    blocks = [f"[{item.role.value}/{item.kind.value}] {item.text}" for item in items]
    return "\n\n".join(blocks) + ("\n" if blocks else "")


# ---------------------------------------------------------------- write


_SAME = {
    "claude-code": "claude-code",
    "anthropic-messages": "anthropic",
    "messages": "anthropic",
    "openai-messages": "openai",
    "openai-responses": "responses",
    "swe-agent": "openai",
}
FORMATS = ("same", "messages", "text")


def _atomic_write(path: Path, data: str) -> None:
    if path.is_dir():
        raise SourceError(f"{path} is a directory: give a file to write")
    parent = path.parent
    if not parent.is_dir():
        raise SourceError(f"{path}: directory {parent} does not exist")
    try:
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
        write_atomic(path, data.encode("utf-8"), mode)
    except (OSError, UnicodeEncodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SourceError(f"{path}: cannot write ({reason})") from exc


def _dump(value: Any) -> str:
    return _escaped_surrogates(json.dumps(value, ensure_ascii=False, indent=2)) + "\n"


# Half of a surrogate pair: a text cut between the two UTF-16 halves of an emoji (a
# JavaScript slice cuts by UTF-16 unit), or bytes that were not UTF-8 decoded with
# Python's surrogateescape. JSON holds it as "\ud83d", a Python string as the lone
# code point; UTF-8 cannot hold it.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped_surrogates(data: str) -> str:
    """JSON text with each lone surrogate written as its escape, as JavaScript writes
    it: valid JSON that reads back to the same string, and encodable as UTF-8."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", data)


def write(
    items: Sequence[Item],
    fmt: str,
    source_format: str,
    path: str | os.PathLike[str],
    *,
    model: str | None = None,
    session_id: str | None = None,
    records_hint: Any = None,
    carried: Carried | None = None,
) -> Path:
    """Write ``items`` to ``path`` as ``fmt`` (``same``, ``messages`` or ``text``).

    ``same`` is the input's own format, so the result can be fed back to the agent:
    ``claude-code`` → JSONL records (``to_claude_code``), ``anthropic-messages`` and
    ``messages`` → an Anthropic request (``to_anthropic``), ``openai-messages`` → an
    OpenAI message list. There is no writer for SWE-agent trajectories: ``swe-agent``
    is written as an OpenAI message list (what the agent sends its model).
    ``messages`` is always an OpenAI message list; ``text`` is ``to_text``.
    ``carried``: what a Claude Code session measured, carried into the new session
    (``to_claude_code``). The file
    is replaced atomically (temp file + rename). Returns the path written; any
    problem raises ``SourceError``.
    """
    if fmt == "text":
        data = _SURROGATE.sub("\ufffd", to_text(items))  # plain text has no escapes
    elif fmt == "messages":
        data = _dump(to_openai(items, model=model))
    elif fmt == "same":
        target = _SAME.get(source_format)
        if target is None:
            known = ", ".join(sorted(_SAME))
            raise SourceError(
                f"cannot write {source_format!r} in its own format (known: {known}); "
                "use --format messages or --format text"
            )
        if target == "claude-code":
            records = to_claude_code(
                items, records_hint, session_id=session_id, model=model, carried=carried
            )
            data = "".join(
                _escaped_surrogates(json.dumps(r, ensure_ascii=False)) + "\n" for r in records
            )
        elif target == "anthropic":
            data = _dump(to_anthropic(items, model=model))
        elif target == "responses":
            data = _dump(to_responses(items, model=model))
        else:
            data = _dump(to_openai(items, model=model))
    else:
        raise SourceError(f"unknown output format {fmt!r}: expected one of {', '.join(FORMATS)}")
    _atomic_write(Path(path).expanduser(), data)
    return Path(path).expanduser()
