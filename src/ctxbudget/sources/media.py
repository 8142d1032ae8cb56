"""Images and PDF documents in a context: what they cost beside their stand-in text.

A reader turns an image or a PDF into a short stand-in text (``[image]``,
``[document report.pdf]``), alone or inside a tool result's text; the counter counts
that text, and the media are priced on top: an image by its pixels
(``tokens.images``), a PDF by its pages (``tokens.documents``), for as long as the
item's text is still the one the reader derived from its block. A stub that replaced
it (a compaction) carries no media. A pasted image is an item of its own whose count
the reader sets (``Kind.IMAGE``); this is for the rest.
"""

from __future__ import annotations

from typing import Any

from ..model import Item
from ..tokens.documents import document_tokens
from ..tokens.images import block_image_tokens
from .claude_code import tool_result_text
from .messages import document_text, flatten_content

__all__ = ["media_tokens", "result_text_unchanged"]

_IMAGE_PARTS = ("image", "image_url", "input_image")


def result_text_unchanged(text: str, content: Any) -> bool:
    """Is ``text`` still what a reader derived from a tool result's ``content``?"""
    return text in (flatten_content(content)[0], tool_result_text(content))


def _part_tokens(part: Any) -> int:
    if not isinstance(part, dict):
        return 0
    if part.get("type") in _IMAGE_PARTS:
        return block_image_tokens(part)
    if part.get("type") == "document":
        return document_tokens(part)
    return 0


def media_tokens(item: Item) -> int:
    """The tokens of the images and PDFs behind ``item``'s text (0 for any other item)."""
    if "[image" not in item.text and "[document" not in item.text:
        return 0
    raw = item.raw
    block = raw.get("block") if isinstance(raw, dict) else None
    if not isinstance(block, dict):
        return 0
    kind = str(block.get("type", ""))
    if kind == "document":
        return document_tokens(block) if item.text == document_text(block) else 0
    content = block.get("content")
    if not kind.endswith("tool_result") or not isinstance(content, list):
        return 0
    if not result_text_unchanged(item.text, content):
        return 0
    return sum(_part_tokens(part) for part in content)
