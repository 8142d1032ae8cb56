"""What an image costs in a request: its pixels, read from the image's own header.

An Anthropic image block, by Anthropic's vision documentation: Claude sees an image in
patches of 28×28 pixels, one visual token each, so an image costs ⌈width / 28⌉ ×
⌈height / 28⌉ tokens; an image over the model's native resolution is first scaled down
with its aspect ratio kept: at most 1,568 pixels on the long edge and 1,568 tokens, or
for Claude Opus 4.7 and later models 2,576 pixels and 4,784 tokens (``takes_large``;
Claude Code sends a picture it reads at most 2,000 pixels wide, which those models take
as it is). A transcript or message list keeps the
image's bytes (base64), whose header (PNG, JPEG, GIF, WebP) gives the width and height:
no image library is needed. An image whose size cannot be read (a URL, a file id, bytes
of another format) counts as the largest a scaled-down image costs.

An OpenAI ``image_url`` part is priced by OpenAI's documented rule for its vision
models (GPT-4o): 85 tokens at ``detail: "low"``; otherwise the image is fitted within
2048×2048, then its short side scaled to 768, and each 512×512 tile it spans costs 170
more.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Mapping
from typing import Any

__all__ = [
    "IMAGE_TOKENS",
    "block_image_tokens",
    "image_size",
    "image_tokens",
    "openai_image_tokens",
    "takes_large",
]

PATCH = 28  # pixels on a side of one visual token
# The long edge an image is scaled down to, and the most visual tokens it keeps: most
# models, and those that take large images.
LIMITS = (1568, 1568)
LARGE_LIMITS = (2576, 4784)
#: What an image of unknown size counts: the most a scaled-down image costs.
IMAGE_TOKENS = LIMITS[1]
# "claude-opus-4-7", "claude-3-5-sonnet-20241022": the family and the version (a minor
# version is one or two digits: "claude-opus-4-20250514" is Opus 4)
_GENERATION = re.compile(
    r"claude-(?:(opus|sonnet|haiku)-)?(\d+)(?:[-.](\d{1,2})(?!\d))?(?:-(opus|sonnet|haiku))?"
)


def takes_large(model: str | None) -> bool:
    """Whether ``model`` takes images up to 2,576 pixels and 4,784 tokens: Claude Opus
    4.7 and later, and every model of a later generation (5 and on)."""
    m = _GENERATION.search((model or "").lower())
    if m is None:
        return False
    family = m[1] or m[4]
    major, minor = int(m[2]), int(m[3] or 0)
    return major >= 5 or (family == "opus" and (major, minor) >= (4, 7))


# JPEG start-of-frame markers (baseline, progressive, …): not DHT, JPG or DAC.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_HEADER_CHARS = 1 << 16  # base64 characters decoded first (a JPEG may need more)


def _patches(width: float, height: float) -> int:
    return math.ceil(width / PATCH) * math.ceil(height / PATCH)


def image_tokens(width: int, height: int, large: bool = False) -> int:
    """The visual tokens of a ``width`` × ``height`` image, scaled down first when its
    long edge or its tokens are over the limits (``LARGE_LIMITS`` when ``large``)."""
    if width <= 0 or height <= 0:
        return 0
    max_edge, max_patches = LARGE_LIMITS if large else LIMITS
    scale = min(1.0, max_edge / max(width, height))
    w, h = width * scale, height * scale
    if _patches(w, h) > max_patches:
        # the largest size of the same shape within the patch budget
        scale *= math.sqrt(max_patches * PATCH * PATCH / (w * h))
        w, h = width * scale, height * scale
        while _patches(w, h) > max_patches:  # the ceilings of both sides: a step smaller
            scale *= 0.995
            w, h = width * scale, height * scale
    return _patches(w, h)


def openai_image_tokens(width: int, height: int, detail: str = "auto") -> int:
    """An OpenAI image part's tokens (GPT-4o's rule, see the module's docstring)."""
    if detail == "low":
        return 85
    scale = min(1.0, 2048 / max(width, height, 1))
    w, h = width * scale, height * scale
    if min(w, h) > 768:
        w, h = w * 768 / min(w, h), h * 768 / min(w, h)
    return 85 + 170 * math.ceil(w / 512) * math.ceil(h / 512)


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header of a PNG, GIF, WebP or JPEG image."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length
            at += 2
            continue
        length = int.from_bytes(data[at + 2 : at + 4], "big")
        if marker in _SOF:
            if at + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return int(width), int(height)
        at += 2 + length
    return None


def _base64_size(data: str) -> tuple[int, int] | None:
    """The size of a base64 image, decoding only its start unless a JPEG needs more."""
    head = data[: _HEADER_CHARS - _HEADER_CHARS % 4]
    try:
        size = image_size(base64.b64decode(head))
        if size is None and len(data) > len(head) and head.startswith("/9j/"):  # JPEG
            size = image_size(base64.b64decode(data))
    except (binascii.Error, ValueError):
        return None
    return size


def block_image_tokens(block: Any, model: str | None = None) -> int:
    """The tokens of an image block, sent to ``model``: Anthropic's (``source.data``
    base64) or an OpenAI ``image_url`` part (a data URI); ``IMAGE_TOKENS`` when its size
    cannot be read."""
    if not isinstance(block, Mapping):
        return IMAGE_TOKENS
    source = block.get("source")
    if isinstance(source, Mapping):
        data = source.get("data") if source.get("type") == "base64" else None
        size = _base64_size(data) if isinstance(data, str) else None
        return IMAGE_TOKENS if size is None else image_tokens(*size, takes_large(model))
    part: Any = block.get("image_url")
    url = part.get("url") if isinstance(part, Mapping) else part
    detail = part.get("detail") if isinstance(part, Mapping) else None
    if detail == "low":
        return openai_image_tokens(0, 0, "low")
    size = None
    if isinstance(url, str) and url.startswith("data:") and ";base64," in url[:100]:
        size = _base64_size(url.split(",", 1)[1])
    return IMAGE_TOKENS if size is None else openai_image_tokens(*size)
