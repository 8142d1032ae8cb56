"""What a PDF document costs in a request: its pages.

Anthropic's PDF support documentation: each page of a PDF is given to the model as
the page's extracted text and the page as an image, which costs 1,500 to 3,000 tokens
a page depending on how dense it is. A transcript keeps the PDF's bytes (base64), not
its text: ctxbudget counts its pages (the page objects, in the file or in its
compressed object streams; no PDF library) at ``PAGE_TOKENS`` each, the middle of that
range. Counting the base64 as text, as a PDF's bytes read as characters, would make a
1 MB file a million tokens. OpenAI's file inputs (a PDF in a Chat Completions ``file``
part or a Responses ``input_file``) likewise give the model each page's text and image;
OpenAI documents no count per page, and the same figure stands for it.
"""

from __future__ import annotations

import base64
import binascii
import re
import zlib
from collections.abc import Mapping
from typing import Any

__all__ = ["PAGE_TOKENS", "document_tokens", "pdf_pages"]

#: Tokens of one PDF page (its text and its image), the middle of the documented range.
PAGE_TOKENS = 2_250

_PAGE = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_COUNT = re.compile(rb"/Type\s*/Pages\b[^>]*?/Count\s+(\d+)|/Count\s+(\d+)[^>]*?/Type\s*/Pages\b")
_STREAM = re.compile(rb"stream\r?\n")
_INFLATED_AT_MOST = 64 << 20  # bytes inflated from object streams, in all


def pdf_pages(data: bytes) -> int | None:
    """The number of pages of a PDF, or None when ``data`` is no PDF or none is found.

    Page objects are counted where the file writes them in the open; a file that packs
    its objects into compressed object streams (PDF 1.5 and later) is inflated stream by
    stream first. The page tree's own ``/Count`` answers when no page object is seen.
    """
    if not data.startswith(b"%PDF"):
        return None
    pages = len(_PAGE.findall(data))
    if pages:
        return pages
    budget = _INFLATED_AT_MOST
    counts: list[int] = [int(a or b) for a, b in _COUNT.findall(data)]
    view = memoryview(data)  # each stream inflated in place, up to its end: no copy
    for match in _STREAM.finditer(data):
        if budget <= 0:
            break
        end = data.find(b"endstream", match.end())
        inflate = zlib.decompressobj()
        try:
            inner = inflate.decompress(view[match.end() : end if end >= 0 else None], budget)
        except zlib.error:
            continue
        budget -= len(inner)
        pages += len(_PAGE.findall(inner))
        counts += [int(a or b) for a, b in _COUNT.findall(inner)]
    if pages:
        return pages
    return max(counts) if counts else None


def document_tokens(block: Any) -> int:
    """The tokens of a base64 PDF by its pages: an Anthropic ``document`` block, an
    OpenAI Chat Completions ``file`` part or a Responses ``input_file`` (a data URL in
    ``file_data``); 0 for any other block (a text document is counted as its text, a
    file sent by id alone cannot be priced here)."""
    data = _pdf_data(block)
    if data is None:
        return 0
    try:
        pages = pdf_pages(base64.b64decode(data))
    except (binascii.Error, ValueError):
        return PAGE_TOKENS
    return PAGE_TOKENS * (pages or 1)


def _pdf_data(block: Any) -> str | None:
    """The base64 of the PDF a block carries, or None."""
    if not isinstance(block, Mapping):
        return None
    source = block.get("source")
    if isinstance(source, Mapping):  # Anthropic
        if source.get("type") != "base64" or source.get("media_type") not in (
            None,
            "application/pdf",
        ):
            return None
        data = source.get("data")
        return data if isinstance(data, str) else None
    file = block.get("file")
    url = (file if isinstance(file, Mapping) else block).get("file_data")  # OpenAI
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    head, _, data = url.partition(",")
    if ";base64" not in head or head[5:].split(";", 1)[0] not in ("", "application/pdf"):
        return None
    return data
