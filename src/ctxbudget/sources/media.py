"""Images and PDF documents in a context: what they cost beside their stand-in text.

A reader turns an image or a PDF into a short stand-in text (``[image]``,
``[document report.pdf]``), an item of its own or inside a tool result's text. Its
cost is priced apart: an image by its pixels (``tokens.images``: the limits depend on
the model it is sent to), a PDF by its pages (``tokens.documents``), for as long as the
item's text is still the one the reader derived from its block; a stub that replaced
it (a compaction) carries none. ``local_tokens`` is an item's whole local count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..model import Item, Kind
from ..tokens.documents import document_tokens
from ..tokens.images import block_image_tokens
from .claude_code_items import tool_result_text
from .content import DOCUMENT_PARTS, IMAGE_PARTS, document_text, flatten_content, image_note

__all__ = ["local_tokens", "media_tokens", "result_text_unchanged"]


def result_text_unchanged(text: str, content: Any) -> bool:
    """Is ``text`` still what a reader derived from a tool result's ``content``?"""
    return text in (flatten_content(content)[0], tool_result_text(content))


def _part_tokens(part: Any, model: str | None) -> int:
    if not isinstance(part, dict):
        return 0
    if part.get("type") in IMAGE_PARTS:
        return block_image_tokens(part, model)
    if part.get("type") in DOCUMENT_PARTS:
        return document_tokens(part)
    return 0


def media_tokens(item: Item, model: str | None = None) -> int:
    """The tokens of the images and PDFs behind ``item``'s text, sent to ``model`` (0
    for any other item)."""
    if "[image" not in item.text and "[document" not in item.text:
        return 0
    raw = item.raw
    block = raw.get("block") if isinstance(raw, dict) else None
    if not isinstance(block, dict):
        return 0
    kind = str(block.get("type", ""))
    if kind in IMAGE_PARTS:
        return (
            block_image_tokens(block, model) if item.text in ("[image]", image_note(block)) else 0
        )
    if kind in DOCUMENT_PARTS:
        return document_tokens(block) if item.text == document_text(block) else 0
    content = block.get("content")
    if not kind.endswith("tool_result") or not isinstance(content, list):
        return 0
    if not result_text_unchanged(item.text, content):
        return 0
    return sum(_part_tokens(part, model) for part in content)


def local_tokens(item: Item, count_text: Callable[[str], int], model: str | None = None) -> int:
    """``item``'s local count: its text by ``count_text``, and its images and PDFs
    (``media_tokens``); an image of its own (``Kind.IMAGE``) is its image alone, its
    stand-in text not being sent."""
    media = media_tokens(item, model)
    if item.kind is Kind.IMAGE and media:
        return media
    return (count_text(item.text) if item.text else 0) + media
