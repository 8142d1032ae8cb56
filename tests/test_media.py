"""Images are priced by their pixels and PDFs by their pages, in every reader and on
every surface: an image's size read from its own header (PNG, JPEG, GIF, WebP) under
Anthropic's patch rule (OpenAI's tile rule for an ``image_url`` part), a PDF's pages
counted in its bytes."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import png
from conftest import run_cli as run

from ctxbudget.claude_code.statusline import render_statusline
from ctxbudget.compaction import CompactionPolicy, compact
from ctxbudget.model import Kind, Role
from ctxbudget.sources import load_source
from ctxbudget.sources.media import local_tokens
from ctxbudget.sources.messages import read_messages
from ctxbudget.tokens.counters import get_counter
from ctxbudget.tokens.documents import PAGE_TOKENS, document_tokens, pdf_pages
from ctxbudget.tokens.images import (
    IMAGE_TOKENS,
    block_image_tokens,
    image_size,
    image_tokens,
    openai_image_tokens,
    takes_large,
)

SESSION = "3b1c2d4e-5f60-4718-9a2b-3c4d5e6f7a8b"


def jpeg(width: int, height: int, app_bytes: int = 20) -> bytes:
    """A JPEG's markers up to its frame header: SOI, an APP1 segment (EXIF-sized when
    asked), a quantization table, then SOF2 (progressive) with the size."""
    app = b"\xff\xe1" + struct.pack(">H", app_bytes + 2) + b"E" * app_bytes
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes(64)
    sof = b"\xff\xc2" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app + dqt + sof + b"\xff\xda" + b"\x00" * 16 + b"\xff\xd9"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def anthropic_image(data: bytes, media: str = "image/png") -> dict[str, Any]:
    source = {"type": "base64", "media_type": media, "data": b64(data)}
    return {"type": "image", "source": source}


def test_sizes_from_headers() -> None:
    assert image_size(png(64, 48)) == (64, 48)
    assert image_size(jpeg(1280, 720)) == (1280, 720)
    assert image_size(b"GIF89a" + struct.pack("<HH", 300, 200) + b"\x00" * 8) == (300, 200)
    vp8 = b"RIFF" + b"\x00" * 4 + b"WEBPVP8 " + b"\x00" * 10 + struct.pack("<HH", 640, 480)
    assert image_size(vp8) == (640, 480)
    bits = (800 - 1) | ((600 - 1) << 14)
    vp8l = b"RIFF" + b"\x00" * 4 + b"WEBPVP8L" + b"\x00" * 4 + b"\x2f" + bits.to_bytes(4, "little")
    assert image_size(vp8l) == (800, 600)
    vp8x = (
        b"RIFF" + b"\x00" * 4 + b"WEBPVP8X" + b"\x00" * 8
        + (1919).to_bytes(3, "little") + (1079).to_bytes(3, "little")
    )  # fmt: skip
    assert image_size(vp8x) == (1920, 1080)
    assert image_size(b"not an image at all") is None
    assert image_size(b"\xff\xd8\xff") is None  # a JPEG cut before its frame header


def test_anthropic_patches_and_scaling() -> None:
    assert image_tokens(64, 48) == 3 * 2  # ⌈64/28⌉ × ⌈48/28⌉
    assert image_tokens(700, 500) == 25 * 18
    assert image_tokens(1092, 1092) == 39 * 39
    # over 1,568 px on the long edge, or over 1,568 tokens: scaled down, shape kept
    assert image_tokens(4000, 100) == image_tokens(1568, 40)
    big = image_tokens(3000, 2000)
    assert 1450 < big <= 1568 and image_tokens(6000, 4000) == big
    assert image_tokens(0, 10) == 0


def test_models_that_take_large_images() -> None:
    """Claude Opus 4.7 and later (and any model of generation 5 on) take images up to
    2,576 px and 4,784 tokens: a 2,000 × 1,333 picture (as Claude Code sends a big one)
    is 72 × 48 patches there, scaled down to at most 1,568 tokens elsewhere."""
    for model in ("claude-opus-4-7", "claude-opus-4-8-20261001", "claude-opus-5-5"):
        assert takes_large(model), model
    for model in ("claude-opus-4-20250514", "claude-opus-4-1", "claude-sonnet-4-5", None):
        assert not takes_large(model), model
    assert image_tokens(2000, 1333, large=True) == 72 * 48
    assert image_tokens(2000, 1333) <= 1568
    assert image_tokens(4000, 3000, large=True) <= 4784
    block = anthropic_image(png(2000, 1333))
    assert block_image_tokens(block, "claude-opus-5-5") == 72 * 48
    assert block_image_tokens(block, "claude-sonnet-4-5") == image_tokens(2000, 1333)


def test_openai_tiles() -> None:
    assert openai_image_tokens(1920, 1080) == 1105  # OpenAI's own example for GPT-4o
    assert openai_image_tokens(512, 512) == 85 + 170
    assert openai_image_tokens(4096, 4096, "low") == 85


def test_blocks_of_each_format() -> None:
    assert block_image_tokens(anthropic_image(png(700, 500))) == 450
    # a JPEG whose EXIF segment is longer than the first part decoded
    assert block_image_tokens(anthropic_image(jpeg(700, 500, 60_000), "image/jpeg")) == 450
    data_uri = "data:image/png;base64," + b64(png(512, 512))
    url = {"type": "image_url", "image_url": {"url": data_uri}}
    assert block_image_tokens(url) == 255
    low = {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}}
    assert block_image_tokens(low) == 85
    # a size nobody can read: the most a scaled-down image costs
    assert block_image_tokens({"type": "image", "source": {"type": "url", "url": "x"}}) == 1568
    assert block_image_tokens(anthropic_image(b"garbage bytes")) == IMAGE_TOKENS
    broken = {"type": "image", "source": {"type": "base64", "data": "!!not base64!!"}}
    assert block_image_tokens(broken) == IMAGE_TOKENS


def test_a_message_lists_images_count_their_pixels() -> None:
    transcript = read_messages(
        [
            {
                "role": "user",
                "content": [anthropic_image(png(700, 500)), {"type": "text", "text": "Hi"}],
            },
            {"role": "assistant", "content": "A chart."},
        ]
    )  # fmt: skip
    [image] = [i for i in transcript.items if i.kind is Kind.IMAGE]
    assert local_tokens(image, get_counter("estimate").count) == 450  # not its stand-in


def _transcript_with_images(path: Path) -> Path:
    """A Claude Code session: a screenshot pasted by the user, a Read of a PNG (a result
    that is one image) and a browser tool's result (a text and an image)."""
    records: list[dict[str, Any]] = []

    def add(rtype: str, message: dict[str, Any]) -> None:
        n = len(records)
        records.append(
            {
                "type": rtype,
                "sessionId": SESSION,
                "uuid": f"u{n:03d}",
                "parentUuid": f"u{n - 1:03d}" if n else None,
                "isSidechain": False,
                "timestamp": f"2026-12-01T10:00:{n:02d}.000Z",
                "message": message,
            }
        )

    def answer(content: list[dict[str, Any]], context: int) -> None:
        usage = {"input_tokens": 5, "cache_read_input_tokens": context - 5, "output_tokens": 9}
        message = {"id": f"msg_{len(records)}", "role": "assistant", "model": "claude-opus-4-5"}
        add("assistant", {**message, "content": content, "usage": usage})

    def call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}

    def result(call_id: str, content: list[dict[str, Any]]) -> dict[str, Any]:
        block = {"type": "tool_result", "tool_use_id": call_id, "content": content}
        return {"role": "user", "content": [block]}

    pasted = [anthropic_image(png(700, 500)), {"type": "text", "text": "See this."}]
    add("user", {"role": "user", "content": pasted})
    answer([call("t1", "Read", {"file_path": "/p/a.png"})], 20_000)
    add("user", result("t1", [anthropic_image(png(1000, 800))]))
    answer([call("t2", "mcp__browser__screenshot", {})], 21_500)
    shot = [{"type": "text", "text": "Screenshot of the page"}, anthropic_image(png(1280, 720))]
    add("user", result("t2", shot))
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_a_claude_code_sessions_images_count_their_pixels_on_every_surface(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _transcript_with_images(tmp_path / f"{SESSION}.jsonl")
    transcript = load_source(path)
    [pasted] = [i for i in transcript.items if i.kind is Kind.IMAGE]
    assert local_tokens(pasted, get_counter("estimate").count, "claude-opus-4-5") == 450
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    # after the last usage (21,500): the screenshot's result, its text and 1,196 tokens
    # of image (⌈1280/28⌉ × ⌈720/28⌉ = 46 × 26), not the few of its stand-in text
    assert data["used_tokens"] - 21_500 > 1_196
    line = render_statusline(
        json.dumps({"session_id": SESSION, "transcript_path": str(path)}),
        cache_dir=tmp_path / "cache",
    )
    assert f"{data['used_tokens']:,}/" in line


def test_a_stub_that_replaced_an_image_result_costs_its_text_alone(tmp_path: Path) -> None:
    from ctxbudget import Tracker

    path = _transcript_with_images(tmp_path / f"{SESSION}.jsonl")
    session = Tracker(store="memory://").load(path, counter="estimate")
    [read] = [i for i in session.items if i.tool == "Read" and i.kind is not Kind.TOOL_CALL]
    assert session.count(read) == 36 * 29 + get_counter("estimate").count(read.text)
    total = sum(session.count(i) for i in session.items)
    policy = CompactionPolicy(keep_first=0, keep_last=0, keep_results=0)
    plan = compact(
        session.items, count=session.counter.count, target_tokens=total - 2_000, policy=policy
    )
    assert {"clear_tool_results", "reads_and_searches"} <= {a.step for a in plan.actions}
    results = [i for i in session.items if i.role is Role.TOOL]
    stubs = [i for i in plan.items if i.role is Role.TOOL]
    assert [i.pair_id for i in stubs] == ["t1", "t2"]
    assert all(
        i.text != r.text and "[image]" not in i.text for i, r in zip(stubs, results, strict=True)
    )
    session.load_context(plan.items, session.version, session.anchor)
    session.recount()  # counted afresh from their texts: no image left in a stub
    assert all((i.tokens or 0) < 100 for i in stubs)


def pdf(pages: int, *, packed: bool = False) -> bytes:
    """A PDF of ``pages`` pages; ``packed``: its page objects inside a compressed object
    stream (PDF 1.5), where they cannot be seen without inflating it."""
    page_objects = [
        f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {4 + n} 0 R >>"
        for n in range(pages)
    ]
    kids = " ".join(f"{3 + 2 * n} 0 R" for n in range(pages))
    head = b"%PDF-1.5\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    tree = f"2 0 obj\n<< /Type /Pages /Kids [{kids}] /Count {pages} >>\nendobj\n".encode()
    body = "\n".join(page_objects).encode()
    if packed:
        inflated = zlib.compress(body)
        stream = b"9 0 obj\n<< /Type /ObjStm /Filter /FlateDecode >>\nstream\n" + inflated
        return head + stream + b"\nendstream\nendobj\n%%EOF\n"
    return head + tree + body + b"\n%%EOF\n"


def pdf_block(data: bytes) -> dict[str, Any]:
    source = {"type": "base64", "media_type": "application/pdf", "data": b64(data)}
    return {"type": "document", "source": source}


def test_a_pdf_counts_its_pages() -> None:
    assert pdf_pages(pdf(3)) == 3
    assert pdf_pages(pdf(4, packed=True)) == 4  # found by inflating its object stream
    assert pdf_pages(b"%PDF-1.4\n2 0 obj << /Type /Pages /Count 7 /Kids [] >>") == 7
    assert pdf_pages(png(2, 2)) is None
    assert document_tokens(pdf_block(pdf(3))) == 3 * PAGE_TOKENS
    text = {"type": "document", "source": {"type": "text", "data": "Plain text."}}
    assert document_tokens(text) == 0  # a text document is counted as its text


def test_a_pdf_read_counts_its_pages_not_its_bytes(tmp_path: Path) -> None:
    """Claude Code sends a read PDF as a document block inside the result. Its base64
    was counted as text before: a 40-page PDF of 900 kB read as about a million tokens."""
    from ctxbudget import Tracker

    records: list[dict[str, Any]] = []
    big = pdf(40) + b"%" + b"x" * 900_000  # the pages, and the weight of their content
    call = {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/p/r.pdf"}}
    usage = {"input_tokens": 5, "cache_read_input_tokens": 19_995, "output_tokens": 9}
    answer = {"id": "m1", "role": "assistant", "model": "claude-opus-4-5", "content": [call]}
    head = {"type": "text", "text": "PDF file read: /p/r.pdf (900 KB)"}
    result = {"type": "tool_result", "tool_use_id": "t1", "content": [head, pdf_block(big)]}
    for n, (rtype, message) in enumerate(
        [
            ("user", {"role": "user", "content": "Read the report."}),
            ("assistant", {**answer, "usage": usage}),
            ("user", {"role": "user", "content": [result]}),
        ]
    ):
        parent = f"u{n - 1}" if n else None
        records.append(
            {"type": rtype, "sessionId": SESSION, "uuid": f"u{n}", "parentUuid": parent}
            | {"isSidechain": False, "message": message}
        )
    path = tmp_path / f"{SESSION}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    session = Tracker(store="memory://").load(path)
    [read] = [i for i in session.items if i.role is Role.TOOL]
    assert "[document]" in read.text and len(read.text) < 100
    assert 40 * PAGE_TOKENS <= session.count(read) < 40 * PAGE_TOKENS + 50


def test_a_message_lists_pdf_counts_its_pages() -> None:
    message = {"role": "user", "content": [pdf_block(pdf(2)), {"type": "text", "text": "Sum up"}]}
    transcript = read_messages([message])
    from ctxbudget import Tracker

    session = Tracker(store="memory://").session()
    items = session.extend(transcript.items)
    [document] = [i for i in items if i.text == "[document]"]
    assert document.tokens is not None and document.tokens >= 2 * PAGE_TOKENS


def test_an_openai_file_input_counts_its_pages() -> None:
    """OpenAI takes a PDF as a Chat Completions ``file`` part or a Responses
    ``input_file``, a data URL in ``file_data``: priced by its pages too, where it was
    its stand-in text alone. A file sent by id, or not a PDF, is not priced here."""
    url = "data:application/pdf;base64," + b64(pdf(3))
    chat = {"type": "file", "file": {"filename": "q3.pdf", "file_data": url}}
    responses = {"type": "input_file", "filename": "q3.pdf", "file_data": url}
    assert document_tokens(chat) == document_tokens(responses) == 3 * PAGE_TOKENS
    assert document_tokens({"type": "file", "file": {"file_id": "file-abc"}}) == 0
    text = "data:text/plain;base64," + b64(b"notes")
    assert document_tokens({"type": "file", "file": {"file_data": text}}) == 0
    message = {"role": "user", "content": [{"type": "text", "text": "Sum up"}, chat]}
    from ctxbudget import Tracker

    session = Tracker(store="memory://").session(model="gpt-4o")
    items = session.extend(read_messages([message]).items)
    [document] = [i for i in items if i.text == "[document q3.pdf]"]
    assert 3 * PAGE_TOKENS <= (document.tokens or 0) < 3 * PAGE_TOKENS + 20


def test_an_image_the_prompt_mentions_counts_its_pixels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``@shot.png`` in a prompt: Claude Code 2.x records the image as a file attachment
    without a rendered text and sends it as an image block. It is context, priced by its
    pixels, on every surface."""
    records: list[dict[str, Any]] = []
    for n, (rtype, fields) in enumerate(
        [
            ("user", {"message": {"role": "user", "content": "What is in @shot.png?"}}),
            (
                "attachment",
                {
                    "attachment": {
                        "type": "file",
                        "filename": "/p/shot.png",
                        "content": {"type": "image", "file": {"base64": b64(png(700, 500))}},
                    }
                },
            ),
        ]
    ):
        parent = f"u{n - 1}" if n else None
        records.append(
            {"type": rtype, "sessionId": SESSION, "uuid": f"u{n}", "parentUuid": parent}
            | {"isSidechain": False, "timestamp": f"2026-12-01T10:00:0{n}.000Z", **fields}
        )
    path = tmp_path / f"{SESSION}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    transcript = load_source(path)
    [image] = [i for i in transcript.items if i.kind is Kind.IMAGE]
    assert local_tokens(image, get_counter("estimate").count) == 450
    assert transcript.unknown_records == 0
    code, out, err = run(capsys, "tokens", str(path), "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["breakdown"]["kind"]["image"] >= 450
    line = render_statusline(
        json.dumps({"session_id": SESSION, "transcript_path": str(path)}),
        cache_dir=tmp_path / "cache",
    )
    assert f"{data['used_tokens']:,}/" in line
