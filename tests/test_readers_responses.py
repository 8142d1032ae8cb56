"""OpenAI Responses API input: read as the messages its items stand for, and written
back as a Responses request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import run_cli as run

from ctxbudget.model import Kind, Role
from ctxbudget.sources import load_source
from ctxbudget.sources.responses import RESPONSES, looks_like_responses, read_responses

WEATHER = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}


def request(**extra: Any) -> dict[str, Any]:
    return {
        "model": "gpt-5",
        "instructions": "You are a terse weather assistant.",
        "tools": [WEATHER],
        "input": [
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "What is the weather in Paris? REQ-12 applies."}
            ]},
            {"type": "reasoning", "id": "rs_1", "summary": [
                {"type": "summary_text", "text": "I need the weather tool for Paris."}
            ]},
            {"type": "function_call", "call_id": "call_1", "name": "get_weather",
             "arguments": '{"city":"Paris"}'},
            {"type": "function_call_output", "call_id": "call_1",
             "output": '{"temp": 18, "sky": "cloudy"}'},
            {"type": "web_search_call", "id": "ws_1", "status": "completed",
             "action": {"type": "search", "query": "Paris forecast"}},
            {"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": "18 degrees and cloudy in Paris."}
            ]},
            {"role": "user", "content": "And tomorrow?"},
        ],
        **extra,
    }  # fmt: skip


def test_a_request_reads_as_the_messages_its_items_stand_for() -> None:
    t = read_responses(request())
    assert t.format == RESPONSES and t.problems == [] and t.unknown_records == 0
    kinds = [(i.role, i.kind) for i in t.items]
    assert kinds[:2] == [(Role.SYSTEM, Kind.SYSTEM_PROMPT)] * 2  # the tool, the instructions
    assert "terse weather assistant" in t.items[1].text
    by_kind = {i.kind: i for i in t.items}
    assert by_kind[Kind.THINKING].text == "I need the weather tool for Paris."
    call = next(i for i in t.items if i.kind is Kind.TOOL_CALL and i.tool == "get_weather")
    result = next(i for i in t.items if i.role is Role.TOOL)
    assert call.pair_id == result.pair_id and result.tool == "get_weather"
    assert any(i.kind is Kind.TOOL_CALL and i.tool == "web_search" for i in t.items)
    assert [i.text for i in t.items if i.kind is Kind.USER_TEXT][-1] == "And tomorrow?"
    assert t.model == "gpt-5"


def test_an_input_list_alone_and_a_string_input() -> None:
    items = request()["input"]
    assert looks_like_responses(items) and looks_like_responses(request())
    assert read_responses(items).format == RESPONSES
    plain = read_responses({"model": "gpt-5", "input": "Hello there"})
    assert [(i.kind, i.text) for i in plain.items] == [(Kind.USER_TEXT, "Hello there")]
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert not looks_like_responses(chat) and not looks_like_responses({"messages": chat})
    assert not looks_like_responses({"input": [1, 2, 3]})  # some other JSON: refused
    assert not looks_like_responses({"input": "just text"})  # no model: not a request


def test_a_computer_calls_screenshot_is_an_image() -> None:
    """A computer_call_output's screenshot is a data URL: read as an image's stand-in,
    not its base64 as text (hundreds of thousands of tokens for one screenshot)."""
    import base64

    from conftest import png

    url = "data:image/png;base64," + base64.b64encode(png(640, 480)).decode()
    items = [
        {"role": "user", "content": "Open the settings page."},
        {"type": "computer_call", "call_id": "cu_1", "action": {"type": "screenshot"}},
        {"type": "computer_call_output", "call_id": "cu_1",
         "output": {"type": "computer_screenshot", "image_url": url}},
    ]  # fmt: skip
    t = read_responses(items)
    [shot] = [i for i in t.items if i.role is Role.TOOL]
    assert url not in shot.text and shot.text.startswith("[image")
    assert shot.tool == "computer" and shot.pair_id is not None


def test_an_item_of_an_unknown_type_is_kept_and_named(tmp_path: Path) -> None:
    data = request()
    data["input"].insert(1, {"type": "hologram", "payload": "x"})
    path = tmp_path / "r.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    t = load_source(path)
    assert t.format == RESPONSES and t.unknown_records == 1
    assert any(i.kind is Kind.UNKNOWN and "hologram" in i.text for i in t.items)


def test_compacted_it_is_written_back_as_a_responses_request(tmp_path: Path, capsys: Any) -> None:
    data = request()
    for n in range(2, 40):  # a long run of tool rounds to compact
        call_id = f"call_{n}"
        data["input"][-1:-1] = [
            {"type": "function_call", "call_id": call_id, "name": "get_weather",
             "arguments": json.dumps({"city": f"City {n}"})},
            {"type": "function_call_output", "call_id": call_id,
             "output": json.dumps({"temp": n, "notes": "mild " * 80})},
        ]  # fmt: skip
    source = tmp_path / "r.json"
    source.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "out.json"
    code, _, err = run(
        capsys, "compact", str(source), "--ratio", "3", "--output", str(out), "--store", "memory://"
    )
    assert code == 0, err
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["model"] == "gpt-5" and "terse weather assistant" in written["instructions"]
    called: dict[str, int] = {}
    answered = 0
    for at, item in enumerate(written["input"]):
        if item.get("type") == "function_call":
            called[item["call_id"]] = at
        elif item.get("type") == "function_call_output":
            assert item["call_id"] in called  # every output answers a call before it
            answered += 1
    assert answered
    back = read_responses(written)
    assert back.problems == [] and back.unknown_records == 0
    assert json.loads(out.read_text())["input"][-1] == {"role": "user", "content": "And tomorrow?"}
    assert len(out.read_text()) < len(source.read_text()) / 2
