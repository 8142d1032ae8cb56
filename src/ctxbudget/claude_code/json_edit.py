"""A JSON text edited in place: where each value is, and changes that keep the rest.

The installer edits the user's ``settings.json``: a value is added, replaced or removed
where it is, in the file's own indentation and style, and every other byte stays as
it was (comments aside: JSON has none). ``Spans`` parses text that is already valid
JSON into ``Node`` spans; ``append``, ``remove`` and ``replace`` return the new text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Node", "Spans", "Style", "append", "dump", "indent_at", "remove", "replace", "style_of"]


@dataclass(slots=True)
class Node:
    """One JSON value's span in the text; containers list their members or items."""

    start: int
    end: int
    kind: str  # "object", "array" or "scalar"
    members: list[tuple[str, int, Node]] = field(default_factory=list)  # key, key start
    items: list[Node] = field(default_factory=list)

    def member(self, key: str) -> tuple[int, Node] | None:
        """The last member named ``key`` (the one a JSON reader keeps), with its index."""
        for index in range(len(self.members) - 1, -1, -1):
            if self.members[index][0] == key:
                return index, self.members[index][2]
        return None


class Spans:
    """A parser of already validated JSON text that records where each value is."""

    def __init__(self, text: str) -> None:
        self.text = text

    def parse(self) -> Node:
        node, _ = self._value(self._ws(0))
        return node

    def _ws(self, i: int) -> int:
        text = self.text
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    def _string_end(self, i: int) -> int:
        text = self.text
        j = i + 1
        while text[j] != '"':
            j += 2 if text[j] == "\\" else 1
        return j + 1

    def _value(self, i: int) -> tuple[Node, int]:
        text = self.text
        c = text[i]
        if c == "{":
            node = Node(i, i, "object")
            j = self._ws(i + 1)
            while text[j] != "}":
                key_end = self._string_end(j)
                key = json.loads(text[j:key_end])
                value, k = self._value(self._ws(self._ws(key_end) + 1))  # past ':'
                node.members.append((key, j, value))
                k = self._ws(k)
                j = self._ws(k + 1) if text[k] == "," else k
            node.end = j + 1
            return node, node.end
        if c == "[":
            node = Node(i, i, "array")
            j = self._ws(i + 1)
            while text[j] != "]":
                value, k = self._value(j)
                node.items.append(value)
                k = self._ws(k)
                j = self._ws(k + 1) if text[k] == "," else k
            node.end = j + 1
            return node, node.end
        if c == '"':
            end = self._string_end(i)
            return Node(i, end, "scalar"), end
        j = i
        while j < len(text) and text[j] not in ",]} \t\r\n":
            j += 1
        return Node(i, j, "scalar"), j


def _line_indent(text: str, pos: int) -> str:
    """The leading whitespace of the line that holds ``pos``."""
    start = text.rfind("\n", 0, pos) + 1
    end = start
    while end < len(text) and text[end] in " \t":
        end += 1
    return text[start:end]


@dataclass(slots=True)
class Style:
    unit: str  # one level of indentation
    newline: str
    item_sep: str = ", "  # on one line: ", " and ": ", or "," and ":" in minified JSON
    key_sep: str = ": "


def style_of(text: str, root: Node) -> Style:
    newline = "\r\n" if "\r\n" in text else "\n"
    unit = "  "
    if root.members:
        before_first = text[root.start + 1 : root.members[0][1]]
        if "\n" in before_first:
            unit = before_first.rsplit("\n", 1)[1] or unit
    if "\n" not in text.strip() and '": ' not in text:  # minified: stay minified
        return Style(unit=unit, newline=newline, item_sep=",", key_sep=":")
    return Style(unit=unit, newline=newline)


def indent_at(text: str, pos: int) -> str | None:
    """The indentation a value written at ``pos`` continues with (None: one line)."""
    return _line_indent(text, pos) if "\n" in text.strip() else None


def dump(value: Any, indent: str | None, style: Style) -> str:
    if indent is None:
        return json.dumps(value, separators=(style.item_sep, style.key_sep))
    return json.dumps(value, indent=style.unit).replace("\n", style.newline + indent)


def _entries(node: Node) -> tuple[list[int], list[int]]:
    """Where each member (from its key) or item of a container starts and ends."""
    if node.kind == "object":
        return [k for _, k, _ in node.members], [v.end for _, _, v in node.members]
    return [v.start for v in node.items], [v.end for v in node.items]


def append(text: str, node: Node, key: str | None, value: Any, style: Style) -> str:
    """Add a member (``key``) or an item (``key`` None) at the end of a container."""
    starts, ends = _entries(node)
    prefix = "" if key is None else json.dumps(key) + style.key_sep
    if starts:
        # The separator before the last entry, copied: the new one looks like the rest.
        sep = (
            text[ends[-2] : starts[-1]]
            if len(starts) > 1
            else "," + text[node.start + 1 : starts[0]]
        )
        indent = sep.rsplit("\n", 1)[1] if "\n" in sep else None
        if indent is None and len(starts) == 1:
            sep = style.item_sep
        piece = sep + prefix + dump(value, indent, style)
        return text[: ends[-1]] + piece + text[ends[-1] :]
    # An empty container: open it up over lines (unless the document is one line).
    outer = _line_indent(text, node.start)
    if "\n" in text.strip() or not text[: node.start].strip():
        inner = outer + style.unit
        body = style.newline + inner + prefix + dump(value, inner, style) + style.newline + outer
    else:
        body = prefix + dump(value, None, style)
    return text[: node.start + 1] + body + text[node.end - 1 :]


def remove(text: str, node: Node, index: int) -> str:
    """Take out entry ``index`` of a container, with the separator that came with it."""
    starts, ends = _entries(node)
    if len(starts) == 1:
        return text[: node.start + 1] + text[node.end - 1 :]
    if index > 0:
        return text[: ends[index - 1]] + text[ends[index] :]
    return text[: starts[0]] + text[starts[1] :]


def replace(text: str, node: Node, new: str) -> str:
    return text[: node.start] + new + text[node.end :]
