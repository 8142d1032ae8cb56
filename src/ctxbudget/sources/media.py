"""Images inside a tool result: what they cost beside the result's text.

A reader turns a tool result into one item whose text holds a stand-in for each image
(``[image]``); the counter counts that text, and the images are priced by their pixels
(``tokens.images``) on top, for as long as the item's text is still the one the reader
derived from the result: a stub that replaced it (a compaction) carries no image.
"""

from __future__ import annotations

from typing import Any

from ..model import Item
from ..tokens.images import block_image_tokens
from .claude_code import tool_result_text
from .messages import flatten_content

__all__ = ["media_tokens", "result_text_unchanged"]

_IMAGE_PARTS = ("image", "image_url", "input_image")


def result_text_unchanged(text: str, content: Any) -> bool:
    """Is ``text`` still what a reader derived from a tool result's ``content``?"""
    return text in (flatten_content(content)[0], tool_result_text(content))


def media_tokens(item: Item) -> int:
    """The tokens of the images in ``item``'s tool result (0 for any other item)."""
    if "[image" not in item.text:
        return 0
    raw = item.raw
    block = raw.get("block") if isinstance(raw, dict) else None
    if not isinstance(block, dict) or not str(block.get("type", "")).endswith("tool_result"):
        return 0
    content = block.get("content")
    if not isinstance(content, list):
        return 0
    images = [p for p in content if isinstance(p, dict) and p.get("type") in _IMAGE_PARTS]
    if not images or not result_text_unchanged(item.text, content):
        return 0
    return sum(block_image_tokens(part) for part in images)
