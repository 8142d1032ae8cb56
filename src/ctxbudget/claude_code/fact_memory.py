"""The fact ledger of a transcript's current context, kept between two PreCompact runs.

Before Claude Code compacts, the PreCompact hook stores the facts of the context about
to go. Extracting them from a transcript of hundreds of
megabytes takes longer than a hook should, so the ledger (``FactLedger``) is kept in a
file beside the hooks' state (``<cache dir>/hooks/<name>.facts.json``, 0600) with the
byte offset it has read up to: a run reads only what was appended since, and a
compaction boundary in what it reads starts the ledger afresh. The first run on a
transcript reads from the last compaction boundary (found by a byte search, then
checked), not from the first record.

Secrets in the facts are redacted before the file is written (``ctxbudget.redact``,
unless redaction is off). Owns no decision: the hooks decide what to store.
"""

from __future__ import annotations

import json
import mmap
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from ..collector import Paused
from ..compaction.facts import FactLedger
from ..compaction.types import Fact
from ..sources.claude_code import read_claude_code
from ..sources.claude_code_context import starts_new_context
from ..sources.problems import loads
from .cache import open_regular, save_private_json
from .incremental import hook_state_file

__all__ = ["current_facts", "facts_file"]

#: Bump when the meaning of the saved file changes: older files are then ignored.
FACTS_VERSION = 2
_HEAD_BYTES = 4096
# What a record that starts a new context holds (a quote inside a string is escaped:
# text that mentions them does not match, and each match is checked by parsing).
_MARKERS = (b'"compact_boundary"', b'"isCompactSummary"')


def facts_file(transcript: str, root: str | None = None) -> str:
    """Where the fact ledger of ``transcript`` is kept."""
    return hook_state_file(transcript, root).removesuffix(".json") + ".facts.json"


def current_facts(transcript: str, root: str | None = None) -> list[Fact]:
    """The facts of the transcript's current context (after its last compaction), read
    from where the last call stopped. Raises OSError when the transcript cannot be read."""
    saved = _load(facts_file(transcript, root))
    f, st = open_regular(transcript)
    ledger: FactLedger
    with f:
        # the file, and its first record (ids, time): a file rewritten in place starts over
        identity = [st.st_dev, st.st_ino, f"{zlib.crc32(f.readline(_HEAD_BYTES)):08x}"]
        if saved is not None and saved["identity"] == identity and saved["offset"] <= st.st_size:
            ledger, offset, count = saved["ledger"], saved["offset"], saved["count"]
        else:  # a new (or rewritten) transcript: from its last compaction on
            ledger, offset, count = FactLedger(), _context_start(f, st.st_size), 0
        f.seek(offset)
        lines = _Lines(f)
        with Paused():  # millions of records and items, no cycles among them
            items = read_claude_code(lines, path=transcript, context_only=True).items
    if lines.new_context:
        ledger, count = FactLedger(), 0
    with Paused():
        ledger.feed(items, start=count)
    _save(
        facts_file(transcript, root),
        {
            "version": FACTS_VERSION,
            "identity": identity,
            "offset": offset + lines.read,
            "count": count + len(items),
            "ledger": ledger.to_data(),
        },
    )
    return ledger.result()


class _Lines:
    """The complete lines from the file's position on, as bytes (the reader parses them
    as they are, and replaces bytes that are not UTF-8); ``read`` counts their bytes (a
    last line without its newline is being written: left for the next run), and
    ``new_context`` says whether one of them started a new context (the reader then
    returns only what follows it)."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.read = 0
        self.new_context = False

    def __iter__(self) -> Iterator[bytes]:
        for raw in self._f:
            if not raw.endswith(b"\n"):
                return
            self.read += len(raw)
            if (_MARKERS[0] in raw or _MARKERS[1] in raw) and _starts_context(raw):
                self.new_context = True
            yield raw


def _starts_context(raw: bytes) -> bool:
    try:
        data = loads(raw)  # a line nested too deeply is a bad line, as to the reader
    except ValueError:
        return False
    return isinstance(data, dict) and starts_new_context(data)


def _context_start(f: BinaryIO, size: int) -> int:
    """The offset of the line of the last record that starts a new context, else 0."""
    if size == 0:
        return 0
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        end = size
        while end > 0:
            at = max(m.rfind(marker, 0, end) for marker in _MARKERS)
            if at < 0:
                return 0
            start = m.rfind(b"\n", 0, at) + 1
            stop = m.find(b"\n", at)
            if _starts_context(m[start : stop if stop >= 0 else size]):
                return start
            end = start  # the marker was inside some text: look further back
    return 0


def _load(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.get("version") != FACTS_VERSION:
            return None
        return {
            "identity": [
                int(data["identity"][0]),
                int(data["identity"][1]),
                str(data["identity"][2]),
            ],
            "offset": int(data["offset"]),
            "count": int(data["count"]),
            "ledger": FactLedger.from_data(data["ledger"]),
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # none yet, or unreadable: read the transcript again


def _save(path: str, data: dict[str, Any]) -> None:
    """Written private to the user; a failure only costs the next run a longer read."""
    from ..redact import redact_data, redaction_enabled

    if redaction_enabled():
        data["ledger"] = redact_data(data["ledger"])
    save_private_json(path, data)
