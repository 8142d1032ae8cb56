"""The facts a summary written by an earlier compaction holds, read back.

Compacting a context that already holds a summary of ours must keep what that summary
kept: its requests, files, todos and errors are in no other item any more, and the
user's words they came from are in the archive. This module reads them back from the
sections the extractive summarizer (``summarize``), the LLM summarizer's headings
(``llm.SECTIONS``) and the fact ledger's restoring section (``facts.ledger_section``)
write. Pure functions over strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from .types import FactKind

__all__ = ["LEDGER_TITLE", "LIST_LABELS", "summary_facts"]

LEDGER_TITLE = "## Ledger (facts restored by validation)"
#: The kinds a ledger section lists on one line each ("Files: a.py, b.py").
LIST_LABELS = {
    FactKind.REQUIREMENT: "Requirements",
    FactKind.FILE: "Files",
    FactKind.DATE: "Dates",
    FactKind.NUMBER: "Numbers",
    FactKind.ENTITY: "Entities",
}
# A summary's sections whose bullets are each one fact. Requirements, decisions and
# open questions are not read here: their text names them, as it did the first time.
_BULLET_SECTIONS = {
    "Requests": FactKind.REQUEST,
    "Todos": FactKind.TODO,
    "Errors": FactKind.ERROR,
}
_LEDGER_LINE_KINDS = {kind.value: kind for kind in FactKind if kind not in LIST_LABELS}
_LABEL_KINDS = {label: kind for kind, label in LIST_LABELS.items()}
_HEADING = re.compile(r"^## (.+?)\s*$")
_BULLET = re.compile(r"^\s*[-*]\s+(.*\S)\s*$")
_ROOT = re.compile(r"^\(paths under (.+/)\)$")
_FILE_GROUP = re.compile(r"^(?:edited|read|mentioned): (.+)$")
_LEDGER_LINE = re.compile(r"^(\w+): (.+)$")
_ARCHIVED = re.compile(r"^\(\d+ earlier \w+ (?:are|is) in the archive\)$")


def summary_facts(text: str) -> Iterator[tuple[FactKind, str, str, int]]:
    """Each fact a summary of ours holds in its sections: (kind, key, the line, where
    the line starts). Nothing for text without such a section (Claude Code's own
    summaries, a user's markdown with other headings)."""
    section: str | None = None
    root = ""
    at = 0
    for line in text.splitlines(keepends=True):
        start, at = at, at + len(line)
        line = line.rstrip("\r\n")
        heading = _HEADING.match(line)
        if heading:
            section = heading.group(1)
            root = ""
            continue
        if section is None:
            continue
        bullet = _BULLET.match(line)
        if section == LEDGER_TITLE[3:]:
            yield from _ledger_line(bullet.group(1) if bullet else line.strip(), line, start)
            continue
        if bullet is None:
            continue
        entry = bullet.group(1)
        if entry.casefold() == "none" or _ARCHIVED.match(entry):
            continue
        kind = _BULLET_SECTIONS.get(section)
        if kind is not None:
            yield kind, entry, entry, start
        elif section == "Files":
            found = _ROOT.match(entry)
            if found:
                root = found.group(1)
                continue
            group = _FILE_GROUP.match(entry)
            for name in group.group(1).split(", ") if group else ():
                name = name.strip()
                if name:
                    whole = name if not root or name.startswith(("/", "~")) else root + name
                    yield FactKind.FILE, whole, entry, start


def _ledger_line(entry: str, line: str, at: int) -> Iterator[tuple[FactKind, str, str, int]]:
    """ "request: Fix the login…" (one fact) or "Files: a.py, b.py" (one each)."""
    found = _LEDGER_LINE.match(entry)
    if found is None:
        return
    label, key = found.groups()
    kind = _LEDGER_LINE_KINDS.get(label)
    if kind is not None:
        if kind is FactKind.DECISION:
            key = key.lstrip("✅❌ ")
        yield kind, key.rstrip("…").rstrip(), line.strip(), at
        return
    listed = _LABEL_KINDS.get(label)
    if listed is None:
        return
    for name in key.split(", "):
        if name.strip():
            yield listed, name.strip(), line.strip(), at
