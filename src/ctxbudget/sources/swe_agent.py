"""Reader of SWE-agent trajectories (``.traj``, already-parsed JSON) into Items.

A ``.traj`` holds ``history`` (the messages sent to the model, with SWE-agent's own
``message_type``, ``thought``, ``action``, ``is_demo`` and, in function-calling
configs, OpenAI ``tool_calls`` / ``tool_call_ids``), ``trajectory`` (one step per
action: thought, action, observation) and ``info.model_stats`` (cumulative
tokens_sent / tokens_received / api_calls). The history is the context, so it is what
this module reads; the steps are used only when a file has no history. There is no
per-call usage, so ``calls`` stays empty; ``model_stats()`` gives the totals. This
module does no file I/O or JSON parsing and shares the tool heuristics of
``messages``.
"""

from __future__ import annotations

from typing import Any

from ..errors import SourceError
from ..model import Component, Item, Kind, Role, Transcript
from .content import PairIds, compact_json, flatten_content, parse_arguments, tool_result_kind
from .problems import ProblemLog, loads, shown

__all__ = ["FORMAT", "looks_like_swe_agent", "model_stats", "read_swe_agent"]

FORMAT = "swe-agent"

_ROLES = {"system": Role.SYSTEM, "user": Role.USER, "assistant": Role.ASSISTANT, "tool": Role.TOOL}
# Keys only SWE-agent puts on history entries; a plain message list has none of them.
_SWE_KEYS = ("message_type", "agent", "thought", "action", "is_demo", "tool_call_ids")


def looks_like_swe_agent(data: Any) -> bool:
    """A dict with a ``trajectory`` list, or a ``history`` of SWE-agent entries."""
    if not isinstance(data, dict):
        return False
    if isinstance(data.get("trajectory"), list):
        return True
    history = data.get("history")
    return isinstance(history, list) and any(
        isinstance(entry, dict) and any(key in entry for key in _SWE_KEYS) for entry in history
    )


def model_stats(transcript: Transcript) -> dict[str, Any] | None:
    """``info.model_stats`` of the trajectory read into ``transcript``: cumulative
    tokens_sent, tokens_received, api_calls and cost over the whole run."""
    info = transcript.raw.get("info") if isinstance(transcript.raw, dict) else None
    stats = info.get("model_stats") if isinstance(info, dict) else None
    return stats if isinstance(stats, dict) else None


def _first_word(action: str) -> str | None:
    words = action.split()
    return words[0] if words else None


class _Reader:
    """Walks the history, pairing each observation with the action before it."""

    def __init__(self, problems: ProblemLog) -> None:
        self.problems = problems
        self.items: list[Item] = []
        self.unknown = 0
        # Per call id: the tool's name, and the name and input its result is classified
        # by; text actions are classified as shell lines (``cat x``, ``find_file y``).
        self.calls: dict[str, tuple[str | None, str | None, Any]] = {}
        self.pending: str | None = None
        self.pair_ids = PairIds()

    def add(self, index: int, block: Any, role: Role, kind: Kind, text: str, **extra: Any) -> None:
        item = Item(
            role=role,
            kind=kind,
            text=text,
            message_index=index,
            raw={"message": index, "block": block},
            **extra,
        )
        self.items.append(item)

    def add_unknown(self, index: int, entry: Any, role: Role = Role.USER) -> None:
        self.unknown += 1
        self.add(index, entry, role, Kind.UNKNOWN, compact_json(entry))

    def entry(self, index: int, entry: Any) -> None:
        role = _ROLES.get(str(entry.get("role"))) if isinstance(entry, dict) else None
        if role is None or not isinstance(entry, dict):
            if not isinstance(entry, dict) or not isinstance(entry.get("role"), str):
                what = f"role {shown(entry.get('role'))}" if isinstance(entry, dict) else "entry"
                self.problems.add(
                    f"history[{index}]", f"{what} is not a message role: kept as unknown"
                )
            self.add_unknown(index, entry)
            return
        text, unknown_parts = flatten_content(entry.get("content"))
        self.unknown += unknown_parts
        message_type = entry.get("message_type")
        if entry.get("is_demo") or message_type == "demonstration":
            # Worked examples: reference material the agent can do without once it runs.
            self.add(index, None, role, Kind.INSTRUCTION, text, component=Component.KNOWLEDGE_BASE)
        elif role is Role.SYSTEM or message_type == "system_prompt":
            self.add(index, None, role, Kind.SYSTEM_PROMPT, text)
        elif role is Role.ASSISTANT:
            self.assistant(index, entry, text)
        elif role is Role.TOOL or entry.get("tool_call_ids") or self.pending:
            self.observation(index, entry, text)
        else:
            # The first user entry (the issue), or a message that answers no action.
            self.add(index, None, role, Kind.USER_TEXT, text)

    def assistant(self, index: int, entry: dict[str, Any], text: str) -> None:
        blocks = entry.get("thinking_blocks")
        for block in blocks if isinstance(blocks, list) else []:
            thinking = block.get("thinking") if isinstance(block, dict) else None
            if isinstance(thinking, str):
                self.add(index, block, Role.ASSISTANT, Kind.THINKING, thinking)
            else:
                self.add_unknown(index, block, Role.ASSISTANT)
        tool_calls = entry.get("tool_calls")
        if isinstance(tool_calls, list) and tool_calls:
            # Function calling: the content is the thought, the action is in tool_calls.
            if text:
                self.add(index, None, Role.ASSISTANT, Kind.ASSISTANT_TEXT, text)
            for call in tool_calls:
                self.tool_call(index, call)
            return
        thought = entry.get("thought")
        action = entry.get("action")
        if not isinstance(action, str) or not action.strip():
            self.add(index, None, Role.ASSISTANT, Kind.ASSISTANT_TEXT, text)
            return
        # Text-parsed actions: content is the thought followed by the fenced command.
        # Splitting there keeps the items' texts summing to exactly what was sent.
        if isinstance(thought, str) and thought and text.startswith(thought):
            self.add(index, None, Role.ASSISTANT, Kind.ASSISTANT_TEXT, thought)
            command_text = text[len(thought) :]
        else:
            command_text = text
        self.text_action(index, action, command_text)

    def text_action(self, index: int, action: str, text: str) -> None:
        pair_id = f"action:{index}"
        tool = _first_word(action)
        self.calls[pair_id] = (tool, "bash", {"command": action})
        self.pending = pair_id
        self.add(index, None, Role.ASSISTANT, Kind.TOOL_CALL, text, tool=tool, pair_id=pair_id)

    def tool_call(self, index: int, call: Any) -> None:
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(function, dict) or not isinstance(name, str):
            self.add_unknown(index, call, Role.ASSISTANT)
            return
        body, parsed = parse_arguments(function.get("arguments"))
        given = call.get("id")
        call_id = self.pair_ids.call(given if isinstance(given, str) else f"call:{index}")
        self.calls[call_id] = (name, name, parsed)
        self.pending = call_id
        self.add(
            index,
            call,
            Role.ASSISTANT,
            Kind.TOOL_CALL,
            f"{name} {body}",
            tool=name,
            pair_id=call_id,
        )

    def observation(self, index: int, entry: dict[str, Any], text: str) -> None:
        ids = entry.get("tool_call_ids")
        given = ids[0] if isinstance(ids, list) and ids and isinstance(ids[0], str) else None
        pair_id = self.pair_ids.result(given) if given else self.pending
        self.pending = None
        tool, name, call_input = self.calls.get(pair_id or "", (None, None, None))
        # Text-parsed configs send observations as user messages; it is still a result.
        kind = tool_result_kind(name, call_input)
        self.add(index, None, Role.TOOL, kind, text, tool=tool, pair_id=pair_id)

    def step(self, index: int, step: Any) -> None:
        """A ``trajectory`` step, for files that have no history."""
        if not isinstance(step, dict) or not any(k in step for k in ("action", "observation")):
            self.add_unknown(index, step)
            return
        thought, action = step.get("thought"), step.get("action")
        if isinstance(thought, str) and thought:
            self.add(index, None, Role.ASSISTANT, Kind.ASSISTANT_TEXT, thought)
        if isinstance(action, str) and action.strip():
            self.text_action(index, action, action)
        observation = step.get("observation")
        if isinstance(observation, str):
            self.observation(index, step, observation)


def _model_name(data: dict[str, Any]) -> str | None:
    """The model from ``replay_config`` (a JSON string or object), when it was kept."""
    config = data.get("replay_config")
    if isinstance(config, str):
        try:
            config = loads(config)
        except ValueError:
            return None
    agent = config.get("agent") if isinstance(config, dict) else None
    model = agent.get("model") if isinstance(agent, dict) else None
    name = model.get("name") if isinstance(model, dict) else None
    return name if isinstance(name, str) else None


def read_swe_agent(data: Any, *, path: str | None = None, name: str | None = None) -> Transcript:
    """Read a SWE-agent trajectory (parsed JSON) into a ``Transcript``.

    Items' ``raw`` is ``{"message": <history index>, "block": <tool call or None>}``;
    ``Transcript.raw`` is ``data`` itself (``model_stats()`` reads its totals). History
    entries that are no message are named in ``problems`` (``<name>:history[<i>]: ...``,
    ``name`` defaulting to ``path``).
    """
    if not isinstance(data, dict):
        raise SourceError("not a SWE-agent trajectory: expected a JSON object")
    reader = _Reader(ProblemLog(name or path or "<trajectory>"))
    history, steps = data.get("history"), data.get("trajectory")
    if isinstance(history, list):
        for index, entry in enumerate(history):
            reader.entry(index, entry)
        records = len(history)
    elif isinstance(steps, list):
        for index, step in enumerate(steps):
            reader.step(index, step)
        records = len(steps)
    else:
        raise SourceError('not a SWE-agent trajectory: no "history" or "trajectory" list')
    return Transcript(
        format=FORMAT,
        items=reader.items,
        history_items=list(reader.items),
        unknown_records=reader.unknown,
        records=records,
        model=_model_name(data),
        path=path,
        raw=data,
        problems=reader.problems.lines(),
    )
