"""The Claude Code status line: one line, computed every few hundred milliseconds.

Claude Code runs the ``statusLine`` command of its settings with one JSON document on
stdin (code.claude.com/docs/en/statusline): ``hook_event_name`` ("Status"),
``session_id``, ``transcript_path``, ``cwd``, ``model`` {``id``, ``display_name``},
``workspace`` {``current_dir``, ``project_dir``}, ``version``, ``output_style``
{``name``}, ``cost`` {``total_cost_usd``, …} and, in newer versions,
``context_window`` {``context_window_size``, ``used_percentage``,
``remaining_percentage``, ``total_input_tokens``, ``total_output_tokens``,
``current_usage`` {``input_tokens``, ``output_tokens``,
``cache_creation_input_tokens``, ``cache_read_input_tokens``}}; ``current_usage`` is
null until the first API call. Older versions send no ``context_window``.

The figure comes from the first of these that is there:

1. ``context_window.current_usage``: input + cache creation + cache read (the
   provider's own count of the last request), in ``context_window_size``; except
   when the transcript (2.) can be read and its last usage has that same size: then
   the transcript's figure, which adds that response and what came after it;
2. the transcript at ``transcript_path``, with the definition and arithmetic of
   ``ctxbudget tokens`` (``Session._from_transcript`` over ``replay_history``), so
   both print the same figure (below);
3. ``context_window.used_percentage``;
4. nothing: ``Tokens: ?``.

The transcript's figure. Records are taken in file order; sub-agent (``isSidechain``)
records are skipped. A context starts at a ``compact_boundary`` record, an
``isCompactSummary`` record or a user / assistant record without ``parentUuid``. An
API call is the first main-thread assistant record of a ``message.id`` (the last 256
ids are remembered), or one without an id, whose usage has input + cache creation +
cache read above 0; its output is the largest ``output_tokens`` of the records of
that id. Each user / assistant record gives the items the Claude Code reader makes of
it, each counted locally (an item's own ``tokens`` when it has them, images) with the
counter ``ctxbudget tokens`` picks: ``counter_name_for_model`` of the last assistant
model of the file (``<synthetic>`` aside), sub-agents' included (``estimate`` for
Claude without ``ctok``, i.e. on Python 3.11). The correction
``Calibration.for_counter`` (exact only for ``o200k_base`` / ``cl100k_base``) learns
from every call that has an anchor, the previous call of its context: with *added*
the items from the anchor's first record to this call's, *out_n* the number of them
in records of the anchor's id (0 when the anchor reported no output or has no id)
and *rest* ``added[out_n:]``, it learns (local count of rest, len(rest), reported −
anchor's reported − anchor's output × (out_n > 0) − round(per_item × out_n)), with
per_item as it was before this observation, across compactions too. The figure, when
the current context has a call (the anchor, and *added* since it): anchor's reported
+ its output × (out_n > 0) + round(per_item × out_n) + round(per_token × local count
of rest + per_item × len(rest)); without one: round(per_token × local count + framing
× items) of the context since its start, where framing is per_item once the
correction has a sample, else min(per_item, ``UNANCHORED_PER_ITEM``), plus the
provider's overhead (system prompt, tools) as earlier calls measured it
(``accounting.estimate_overhead`` of each call's reported − round(per_token × local
count + per_item × items) of the whole context it sent, right after learning from it). ``ctxbudget
tokens`` follows ``parentUuid`` chains where this follows the file: the two agree
where each record's context is what precedes it in the file since the context's start
(true of the shared Claude Code sessions), not after an edit that branched the
conversation.

The window is ``context_window_size``, else ``--window`` / the policy file, else the
model's (``window_for_model``): Claude Code's ``model.id``, else the transcript's
model as above. Levels, bar and labels come from ``Policy``, ``build_status`` and
``ctxbudget.render``, as everywhere else.

Speed: the transcript's state (stat, byte offset of the last complete line, the
anchor and the local count of each item since it, the correction learnt so far with
its samples, the counter's name, recent message ids) is kept in a small JSON file per
transcript under the user cache dir, so a call reads only what was appended since the
last one and never replays the history; a read after which the file's model picks
another counter than the counts were made with counts the whole file again. The
first call on a transcript counts every main-thread item. The rendered line is
memoised on everything it depends on (the transcript's stat included): a call that
finds nothing changed imports no more than ``json`` and prints the memo. Nothing here
imports the store or the compaction engine, nor a tokenizer unless the transcript's
model picks one (``estimate`` is pure Python).

``render_statusline`` never raises: bad input still gives a line.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
import zlib

# Imports nothing: the status line's arithmetic is ``ctxbudget tokens``'s.
from ..tokens.framing import EXACT_COUNTERS, UNANCHORED_PER_ITEM
from .cache import cache_root, load_json, open_regular, save_private_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..accounting import Calibration
    from ..model import Item
    from ..policy import Policy
    from ..status import Status

#: Placeholders: {model} {used} {max} {percent} {bar} {level} {action} {remaining}
#: {session}. ``{action}`` is empty below the warning level, else " · compact soon" etc.
DEFAULT_FORMAT = "{model} | Tokens: {used}/{max} ({percent}%) | {bar} | {level}{action}"
FORMAT_ENV = "CTXBUDGET_STATUSLINE_FORMAT"
DEBUG_ENV = "CTXBUDGET_DEBUG"
#: What to do, by level (short forms of ``status.RECOMMENDATIONS``).
ACTIONS = {
    "warning": "compact soon",
    "critical": "compact now",
    "blocked": "new agents blocked",
}
#: Bump when the cached state's meaning changes: older cache files are then ignored.
STATE_VERSION = 4

#: The most bytes one call reads of a transcript (``$CTXBUDGET_STATUSLINE_MAX_BYTES``
#: overrides): a first read of a bigger file, or a bigger append, is not read at all and
#: the line says ``?`` (or shows Claude Code's own figure) rather than stall the prompt.
MAX_BYTES_ENV = "CTXBUDGET_STATUSLINE_MAX_BYTES"
DEFAULT_MAX_BYTES = 64 << 20

_MAX_STDIN = 1 << 20
_RECENT_IDS = 256
_HEAD_BYTES = 64
_GZIP_MAGIC = b"\x1f\x8b"
# The code the line depends on, from the package's root.
_CODE = (
    "claude_code/statusline.py",
    "render.py",
    "status.py",
    "policy.py",
    "accounting.py",
    "model.py",
    "tokens/framing.py",
)
_PLACEHOLDER_NAMES = ("model", "used", "max", "percent", "bar", "level", "action", "remaining")


def debug(message: str) -> None:
    """One line on stderr when ``CTXBUDGET_DEBUG`` is set; never on the user's line."""
    if os.environ.get(DEBUG_ENV):
        import contextlib

        with contextlib.suppress(Exception):
            print(f"ctxbudget statusline: {message}", file=sys.stderr)


# -- input ---------------------------------------------------------------------------


def _count(value: Any) -> int | None:
    """A non-negative token count, or None for anything else (bools, strings, NaN)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value == value and 0 <= value < 1e15:
        return int(value)
    return None


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None


class StatuslineInput:
    """What the status line uses of Claude Code's JSON; every field may be missing."""

    __slots__ = (
        "context_tokens",
        "error",
        "model_id",
        "model_name",
        "output_tokens",
        "session_id",
        "transcript_path",
        "used_percentage",
        "window",
    )

    def __init__(self) -> None:
        self.session_id: str | None = None
        self.transcript_path: str | None = None
        self.model_id: str | None = None
        self.model_name: str | None = None
        self.window: int | None = None  # context_window.context_window_size
        self.context_tokens: int | None = None  # current_usage: input + cache creation + read
        self.output_tokens = 0  # current_usage.output_tokens: the last response's size
        self.used_percentage: float | None = None
        self.error: str | None = None  # why the input was not usable, for debugging

    def key(self) -> list[Any]:
        return [
            self.session_id,
            self.transcript_path,
            self.model_id,
            self.model_name,
            self.window,
            self.context_tokens,
            self.output_tokens,
            self.used_percentage,
        ]


def parse_input(text: str) -> StatuslineInput:
    """Claude Code's status line JSON, read defensively: never raises."""
    result = StatuslineInput()
    if not text.strip():
        result.error = "empty stdin"
        return result
    try:
        data = json.loads(text)
    except ValueError as exc:
        result.error = f"stdin is not JSON ({exc})"
        return result
    if not isinstance(data, dict):
        result.error = "stdin JSON is not an object"
        return result
    result.session_id = _text(data.get("session_id"))
    result.transcript_path = _text(data.get("transcript_path"))
    model = data.get("model")
    if isinstance(model, dict):
        result.model_id = _text(model.get("id"))
        result.model_name = _text(model.get("display_name"))
    elif isinstance(model, str):
        result.model_id = _text(model)
    window = data.get("context_window")
    if isinstance(window, dict):
        size = _count(window.get("context_window_size"))
        result.window = size if size else None
        usage = window.get("current_usage")
        if isinstance(usage, dict):
            parts = [
                _count(usage.get(k))
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            ]
            if any(p is not None for p in parts):
                result.context_tokens = sum(p or 0 for p in parts)
                result.output_tokens = _count(usage.get("output_tokens")) or 0
        used = window.get("used_percentage")
        if isinstance(used, int | float) and not isinstance(used, bool) and 0 <= used <= 1000:
            result.used_percentage = float(used)
    return result


# -- cache -----------------------------------------------------------------------------


def cache_file(key: str, root: str | None = None) -> str:
    """The cache file of a transcript path (or session id)."""
    raw = key.encode("utf-8", "surrogatepass")
    name = f"{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}.json"
    return os.path.join(root or cache_root(), "statusline", name)


def _code_stamp() -> list[int]:
    """Modification times of the code the line depends on: a change redraws it."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = []
    for name in _CODE:
        try:
            out.append(os.stat(os.path.join(here, name)).st_mtime_ns)
        except OSError:
            out.append(0)
    return out


def _file_stamp(path: str | None) -> list[Any] | None:
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return [os.path.abspath(path), None]
    return [os.path.abspath(path), st.st_ino, st.st_size, st.st_mtime_ns]


# -- the transcript, read incrementally -------------------------------------------------


class TranscriptState:
    """What the status line remembers of a transcript between two calls.

    ``offset`` is the byte just after the last complete line read; a last line without
    its newline is left for the next call. ``anchor`` is the last main-thread API call
    since the last context start: ``[message_id, context_tokens, output_tokens,
    output_items]``, where ``output_items`` counts the items of the records that carry
    its message id (none when it has no id). ``added`` is the local count of each
    main-thread item from the anchor's first record on (that record included), in file
    order. Without an anchor, ``since_tokens`` / ``since_items`` are the local count of
    the context since its start. ``calibration`` is the learned correction
    ``[per_token, per_item, samples]`` (None: the prior), ``counter`` the name of the
    counter the counts were made with (None: nothing counted yet).
    """

    __slots__ = (
        "added",
        "anchor",
        "calibration",
        "calls",
        "context",
        "counter",
        "dev",
        "head",
        "ids",
        "ino",
        "malformed",
        "model",
        "mtime_ns",
        "offset",
        "overheads",
        "path",
        "records",
        "session_id",
        "shape",
        "since_items",
        "since_tokens",
        "size",
        "version",
    )

    def __init__(self, path: str) -> None:
        self.version = STATE_VERSION
        self.path = path
        self.dev = 0
        self.ino = 0
        self.size = -1
        self.mtime_ns = 0
        self.offset = 0
        self.head = ""
        self.anchor: list[Any] | None = None
        self.added: list[int] = []
        self.since_tokens = 0
        self.since_items = 0
        self.calibration: list[Any] | None = None
        self.counter: str | None = None
        self.calls = 0  # main-thread API calls seen in the whole file
        # local tokens and items of the whole context the anchor call sent
        self.context = [0, 0]
        # what each call's usage counted beyond its transcript (the latest ones)
        self.overheads: list[int] = []
        # local tokens and blocks of the latest request's system prompt and tools, where
        # the transcript records them (Claude Code 2.x ``api-request-shape``)
        self.shape = [0, 0]
        self.ids: list[str] = []
        self.model: str | None = None
        self.session_id: str | None = None
        self.records = 0
        self.malformed = 0

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_json(cls, data: Any, path: str) -> TranscriptState | None:
        """The saved state of ``path``, or None when absent or not understood."""
        if not isinstance(data, dict) or data.get("path") != path:
            return None
        if data.get("version") != STATE_VERSION:
            return None
        state = cls(path)
        try:
            for name in cls.__slots__:
                if name in data:
                    setattr(state, name, data[name])
            ints = (state.dev, state.ino, state.size, state.mtime_ns, state.offset)
            counts = (
                state.since_tokens,
                state.since_items,
                state.records,
                state.calls,
                state.malformed,
            )
            if not all(_is_int(v) for v in (*ints, *counts)):
                return None
            bytes.fromhex(state.head)
            if not (
                _str_list(state.ids)
                and isinstance(state.context, list)
                and len(state.context) == 2
                and all(_is_int(v) for v in state.context)
                and isinstance(state.overheads, list)
                and all(_is_int(v) for v in state.overheads)
                and isinstance(state.shape, list)
                and len(state.shape) == 2
                and all(_is_int(v) for v in state.shape)
                and isinstance(state.model, str | None)
                and isinstance(state.counter, str | None)
                and isinstance(state.added, list)
                and all(_is_int(v) for v in state.added)
            ):
                return None
            anchor = state.anchor
            if anchor is not None and not (
                isinstance(anchor, list)
                and len(anchor) == 4
                and isinstance(anchor[0], str | None)
                and all(_is_int(v) for v in anchor[1:])
            ):
                return None
            cal = state.calibration
            if cal is not None and not (
                isinstance(cal, list)
                and len(cal) == 3
                and all(isinstance(v, float) for v in cal[:2])
                and isinstance(cal[2], list)
                and all(
                    isinstance(row, list) and len(row) == 3 and all(_is_int(v) for v in row)
                    for row in cal[2]
                )
            ):
                return None
        except (TypeError, AttributeError, ValueError):
            return None
        return state

    def counter_name(self) -> str:
        """The counter of this transcript: the one already used, else the one
        ``ctxbudget tokens`` picks for its model."""
        if self.counter is None:
            from ..tokens.counters import counter_name_for_model

            return counter_name_for_model(self.model)
        return self.counter

    def new_calibration(self) -> Calibration:
        """The saved calibration, else the prior of the counter (``Session`` rule)."""
        from ..accounting import Calibration

        name = self.counter_name()
        calibration = Calibration.for_counter(exact_for_model=name in EXACT_COUNTERS, counter=name)
        if self.calibration is not None:
            per_token, per_item, samples = self.calibration
            calibration.per_token = float(per_token)
            calibration.per_item = float(per_item)
            calibration.samples = [(int(a), int(b), int(c)) for a, b, c in samples]
        return calibration

    def keep_calibration(self, calibration: Calibration) -> None:
        self.calibration = [
            calibration.per_token,
            calibration.per_item,
            [list(row) for row in calibration.samples],
        ]

    def estimated_overhead(self, calibration: Calibration) -> int:
        """Without a usage in the current context (after a compaction): the system
        prompt and tools as the earlier calls measured them (``load_transcript``'s
        ``estimate_overhead``); before the first usage of all, as the recorded request
        shape counts them; else 0."""
        if self.anchor is not None:
            return 0
        if self.overheads:
            from ..accounting import estimate_overhead

            return estimate_overhead(self.overheads) or 0
        tokens, blocks = self.shape
        return round(calibration.per_token * tokens + max(0.0, _framing(calibration)) * blocks)

    # The figure, with the same arithmetic as Session._from_transcript / used_tokens.
    def used_tokens(self, calibration: Calibration) -> int:
        if self.anchor is None:
            framing = _framing(calibration)
            local = round(calibration.per_token * self.since_tokens + framing * self.since_items)
            return local + self.estimated_overhead(calibration)
        context, output, out_items = (int(v) for v in self.anchor[1:])
        # The response's size is reported (output tokens): its items are its first
        # ``out_n`` ones, of which only the framing is estimated.
        out_n = out_items if output else 0
        rest = self.added[out_n:]
        known = context + output * (out_n > 0) + round(calibration.per_item * out_n)
        return known + calibration.predict(sum(rest), len(rest))


def _framing(calibration: Calibration) -> float:
    """Session.framing: the learned per-item framing once a usage taught it something,
    else a message's role markers."""
    per_item = calibration.per_item
    return per_item if calibration.samples else min(per_item, UNANCHORED_PER_ITEM)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _context_records() -> tuple[str, ...]:
    """The record types whose items are context: the Claude Code reader's."""
    from ..sources.claude_code import CONTEXT_RECORDS

    return CONTEXT_RECORDS


def _starts_context(record: dict[str, Any]) -> bool:
    """A compaction boundary or summary: the Claude Code reader's rule."""
    from ..sources.claude_code import starts_new_context

    return starts_new_context(record)


class _Tail:
    """Applies appended records to a state, as ``replay_history`` would see them.

    Records are kept uncounted until a new API call (or the end of the read) needs their
    count: then each item is counted once, in order, into ``state.added`` (or the
    unanchored sums), and at a new call with an anchor the calibration learns from
    what was added since that anchor.
    """

    def __init__(self, state: TranscriptState) -> None:
        self.state = state
        # Records not counted yet, each with whether it is part of the anchor's response.
        self.pending: list[tuple[dict[str, Any], bool]] = []
        self.ids = set(state.ids)
        self._calibration: Calibration | None = None
        self._count: Callable[[Item], int] | None = None
        self.shape_texts: dict[str, str] = {}

    def add(self, record: dict[str, Any]) -> None:
        s = self.state
        s.records += 1
        if s.session_id is None and isinstance(record.get("sessionId"), str):
            s.session_id = record["sessionId"]
        rtype = record.get("type")
        message = record.get("message")
        message = message if isinstance(message, dict) else {}
        model = message.get("model")
        # The model as the reader names it: the last response's, sub-agents' included.
        if rtype == "assistant" and isinstance(model, str) and not model.startswith("<"):
            s.model = model
        if record.get("isSidechain"):
            return  # a sub-agent's own context, not the main window
        if _starts_context(record) or (
            rtype in ("user", "assistant") and record.get("parentUuid") is None
        ):
            # A new context starts (at a compaction, or at a record with no parent:
            # the reader's root); the summary or root record itself is part of it.
            self.pending.clear()
            s.anchor = None
            s.added = []
            s.since_tokens = s.since_items = 0
        if rtype == "api-request-shape":
            self._shape(record.get("shape"))
        if rtype not in _context_records():
            return
        mid = message.get("id") if isinstance(message.get("id"), str) else None
        anchor_id = s.anchor[0] if s.anchor is not None else None
        usage = message.get("usage") if rtype == "assistant" else None
        if isinstance(usage, dict):
            context = sum(
                _count(usage.get(k)) or 0
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            )
            output = _count(usage.get("output_tokens")) or 0
            if s.anchor is not None and anchor_id is not None and mid == anchor_id:
                # Another block of the anchor's response: its last record has the final
                # output count.
                s.anchor[2] = max(s.anchor[2], output)
                self.pending.append((record, True))
                return
            if context > 0 and (mid is None or mid not in self.ids):
                self._call(record, mid, context, output)
                return
        elif anchor_id is not None and mid == anchor_id:
            self.pending.append((record, True))
            return
        self.pending.append((record, False))

    def _shape(self, shape: Any) -> None:
        """The latest request's system prompt and tools (the reader's texts), counted at
        the end of the read: by then the model, and so the counter, is known."""
        from ..sources.claude_code import request_shape

        self.shape_texts = request_shape(shape) or self.shape_texts

    def _call(self, record: dict[str, Any], mid: str | None, context: int, output: int) -> None:
        """A new main-thread API call: learn from it as ``replay_history`` does, then
        anchor on it."""
        s = self.state
        self._flush()
        if s.anchor is not None:
            _, a_context, a_output, a_items = s.anchor
            out_n = a_items if a_output else 0
            rest = s.added[out_n:]
            known = a_context + a_output * (out_n > 0)
            calibration = self.calibration()
            calibration.learn(
                sum(rest), len(rest), context - known - round(calibration.per_item * out_n)
            )
            sent = [s.context[0] + sum(s.added), s.context[1] + len(s.added)]
        else:
            sent = [s.since_tokens, s.since_items]
        # what this usage counted beyond the transcript sent (replay_history's sample)
        from ..accounting import OVERHEAD_SAMPLES, overhead_sample

        s.context = sent
        s.overheads.append(overhead_sample(context, sent[0], sent[1], self.calibration()))
        del s.overheads[:-OVERHEAD_SAMPLES]
        s.anchor = [mid, context, output, 0]
        s.added = []
        s.since_tokens = s.since_items = 0
        s.calls += 1
        self.pending.append((record, mid is not None))
        if mid is not None:
            self.ids.add(mid)
            s.ids.append(mid)
            del s.ids[:-_RECENT_IDS]

    def calibration(self) -> Calibration:
        if self._calibration is None:
            if self.state.counter is None:
                self.state.counter = self.state.counter_name()
            self._calibration = self.state.new_calibration()
        return self._calibration

    def counter(self) -> Callable[[Item], int]:
        """An item's local count, as ``Session._count`` makes it."""
        if self._count is None:
            from ..tokens.counters import get_counter

            s = self.state
            if s.counter is None:
                s.counter = s.counter_name()
            count_text = get_counter(s.counter).count

            def count(item: Item) -> int:
                if item.tokens is not None:
                    return item.tokens
                return count_text(item.text) if item.text else 0

            self._count = count
        return self._count

    def _flush(self) -> None:
        """Count the pending records' items (the counter is imported only if needed)."""
        if not self.pending:
            return
        s = self.state
        count = self.counter()
        for record, is_out in self.pending:
            counts = [count(item) for item in _items_of(record)]
            if s.anchor is not None:
                s.added.extend(counts)
                if is_out:
                    s.anchor[3] += len(counts)
            else:
                s.since_tokens += sum(counts)
                s.since_items += len(counts)
        self.pending.clear()

    def finish(self) -> None:
        self._flush()
        if self.shape_texts:
            count = self.counter()
            texts = self.shape_texts.values()
            self.state.shape = [sum(count(_text_item(t)) for t in texts), len(texts)]
        if self._calibration is not None:
            self.state.keep_calibration(self._calibration)


def _text_item(text: str) -> Item:
    from ..model import Item, Kind, Role

    return Item(role=Role.SYSTEM, kind=Kind.SYSTEM_PROMPT, text=text)


def _items_of(record: dict[str, Any]) -> list[Item]:
    """The record's items exactly as the Claude Code reader makes them."""
    from ..model import MAIN_AGENT
    from ..sources.claude_code import TranscriptBuilder

    return TranscriptBuilder().items_of(record, MAIN_AGENT, 0)


def read_transcript(
    path: str, saved: Any = None, *, max_bytes: int | None = None
) -> tuple[TranscriptState, bool]:
    """The state of the transcript at ``path``, from ``saved`` plus what was appended.

    Returns the state and whether it changed. Raises OSError when the file cannot be
    read at all: missing, not a regular file (a FIFO would block forever, ``/dev/zero``
    never ends), or more than ``max_bytes`` (default ``max_read_bytes()``) to read.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"{path} is not a regular file")
    state = TranscriptState.from_json(saved, path)
    if state is not None and (state.dev, state.ino, state.size, state.mtime_ns) == (
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    ):
        return state, False  # nothing happened since the last call
    state = _read(path, st, state, max_bytes)
    if state.counter is not None:
        from ..tokens.counters import counter_name_for_model

        wanted = counter_name_for_model(state.model)
        if wanted != state.counter:
            # The model named in the records read so far picked another counter than
            # the whole file's model does: count everything again with that one.
            debug(f"{path}: counted with {state.counter}, its model wants {wanted}")
            fresh = TranscriptState(path)
            fresh.counter = wanted
            fresh.dev, fresh.ino = st.st_dev, st.st_ino  # the same file: keep the counter
            state = _read(path, st, fresh, max_bytes)
    return state, True


def max_read_bytes() -> int:
    """``$CTXBUDGET_STATUSLINE_MAX_BYTES`` when it is a positive integer, else
    ``DEFAULT_MAX_BYTES``."""
    try:
        value = int(os.environ.get(MAX_BYTES_ENV, ""))
    except ValueError:
        return DEFAULT_MAX_BYTES
    return value if value > 0 else DEFAULT_MAX_BYTES


def _read(
    path: str, st: os.stat_result, state: TranscriptState | None, max_bytes: int | None = None
) -> TranscriptState:
    """``state`` (None: a new one) plus the complete lines of ``path`` after its offset,
    up to the size ``st`` gave (what is appended meanwhile waits for the next call)."""
    cap = max_bytes or max_read_bytes()
    f, opened = open_regular(path)
    with f:
        if (opened.st_dev, opened.st_ino) != (st.st_dev, st.st_ino):
            raise OSError(f"{path} was replaced while being read")
        head = f.read(_HEAD_BYTES)
        if state is not None and (
            (state.dev, state.ino) != (st.st_dev, st.st_ino)
            or st.st_size < state.offset
            or not head.startswith(bytes.fromhex(state.head))
            or head[:2] == _GZIP_MAGIC
        ):
            debug(f"{path} was replaced or truncated: reading it again")
            state = None
        if state is None:
            state = TranscriptState(path)
        state.head = head.hex()
        if head[:2] == _GZIP_MAGIC:
            import gzip

            f.seek(0)
            with gzip.GzipFile(fileobj=f) as unpacked:
                data = unpacked.read(cap + 1)
            if len(data) > cap:
                raise OSError(f"{path} unpacks to more than {cap:,} bytes ({MAX_BYTES_ENV})")
            state.offset = 0
        else:
            size = st.st_size - state.offset
            if size > cap:
                raise OSError(f"{size:,} bytes to read in {path}, above {cap:,} ({MAX_BYTES_ENV})")
            f.seek(state.offset)
            data = f.read(size)
    end = data.rfind(b"\n") + 1  # a last line without newline waits for the next call
    tail = _Tail(state)
    for line in data[:end].splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            state.malformed += 1
            continue
        if isinstance(record, dict):
            tail.add(record)
        else:
            state.malformed += 1
    tail.finish()
    if head[:2] != _GZIP_MAGIC:
        state.offset += end
    state.dev, state.ino, state.size, state.mtime_ns = (
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    )
    return state


# -- the line --------------------------------------------------------------------------


class Figure:
    """The context size the line shows, and where it came from."""

    __slots__ = ("anchored", "counter", "estimated", "reported", "source", "used")

    def __init__(
        self,
        used: int | None,
        source: str,
        *,
        reported: int | None = None,
        anchored: bool = True,
        estimated: int = 0,
        counter: str = "provider",
    ) -> None:
        self.used = used
        self.source = source  # context_window, transcript, used_percentage, none
        self.reported = reported
        self.anchored = anchored
        self.estimated = estimated
        self.counter = counter  # what the estimated part was counted with


def transcript_figure(state: TranscriptState) -> Figure:
    """The transcript's figure, with the calibration learned from its whole history."""
    if state.records == 0:
        return Figure(None, "none")  # not a Claude Code transcript, or still empty

    used = state.used_tokens(state.new_calibration())
    reported = state.anchor[1] if state.anchor is not None else None
    return Figure(
        used,
        "transcript",
        reported=reported,
        anchored=reported is not None,
        estimated=used - (reported or 0),
        counter=state.counter_name(),
    )


def _regular_or_missing(path: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return True  # missing: the policy reader says so


def make_policy(
    inp: StatuslineInput,
    *,
    window: int | None = None,
    policy_file: str | None = None,
    transcript_model: str | None = None,
    reported_window: int | None = None,
) -> Policy:
    """The policy the line is judged by: file and flags as for ``ctxbudget tokens``,
    and the window Claude Code reports above both."""
    from ..errors import CtxBudgetError
    from ..policy import Policy, fields_from_toml

    model = inp.model_id or transcript_model
    fields: dict[str, Any] = {}
    if policy_file and not _regular_or_missing(policy_file):
        debug(f"policy file {policy_file} is not a regular file: ignored")
        policy_file = None
    if policy_file:
        try:
            fields = fields_from_toml(policy_file)
        except CtxBudgetError as exc:
            debug(str(exc))
    model = fields.pop("model", None) or model
    if window is not None and window > 0:
        fields["window"] = window
    if inp.window or reported_window:
        fields["window"] = inp.window or reported_window
    try:
        return Policy.for_model(model, **fields)
    except CtxBudgetError as exc:
        debug(f"{exc}: default thresholds used")
        return Policy.for_model(model, window=fields.get("window"))


def build(figure: Figure, policy: Policy, inp: StatuslineInput) -> Status | None:
    from ..status import Breakdown, build_status

    if figure.used is None:
        return None
    return build_status(
        used_tokens=figure.used,
        policy=policy,
        breakdown=Breakdown(),
        anchored=figure.anchored,
        reported_tokens=figure.reported,
        estimated_since_report=figure.estimated,
        counter=figure.counter,
        model=policy.model,
        session_id=inp.session_id,
    )


def percent_text(status: Status) -> str:
    """The percent as ``render.status_line`` prints it (a test keeps them equal)."""
    return str(math.floor(status.percent + 1e-9))  # rounded down, as render.pct


def action_text(status: Status) -> str:
    return ACTIONS.get(status.level.value, "")


def format_line(
    fmt: str,
    status: Status | None,
    *,
    model: str | None,
    session_id: str | None,
    window: int,
    color: bool = False,
) -> str:
    """Fill the placeholders of ``fmt``; unknown ``{names}`` stay as written."""
    from ..render import LEVEL_LABEL, bar, paint

    values: dict[str, str] = {
        "model": model or "",
        "session": (session_id or "")[:8],
        "max": f"{window:,}",
    }
    if status is None:
        values.update(used="?", percent="?", bar="", level="", action="", remaining="?")
    else:
        action = action_text(status)
        values.update(
            used=f"{status.used_tokens:,}",
            max=f"{status.max_tokens:,}",
            percent=percent_text(status),
            bar=paint(bar(status.percent), status.level, color),
            level=paint(LEVEL_LABEL[status.level], status.level, color),
            action=paint(f" · {action}", status.level, color) if action else "",
            remaining=f"{status.remaining_tokens:,}",
        )
    out = []
    i = 0
    while i < len(fmt):
        start = fmt.find("{", i)
        if start < 0:
            out.append(fmt[i:])
            break
        end = fmt.find("}", start)
        name = fmt[start + 1 : end] if end > 0 else ""
        if name in values:
            out.append(fmt[i:start])
            out.append(values[name])
            i = end + 1
        else:
            out.append(fmt[i : start + 1])
            i = start + 1
    return "".join(out).replace("\n", " ")


def default_line(
    status: Status | None, *, model: str | None, window: int, color: bool = False
) -> str:
    """``DEFAULT_FORMAT``, drawn by ``render.status_line`` itself."""
    from ..render import paint, status_line

    if status is None:
        return f"{model} | Tokens: ?/{window:,}" if model else f"Tokens: ?/{window:,}"
    line = status_line(status, color=color, prefix=model or None)
    action = action_text(status)
    return line + (paint(f" · {action}", status.level, color) if action else "")


def render_statusline(
    stdin_text: str,
    *,
    fmt: str | None = None,
    window: int | None = None,
    policy_file: str | None = None,
    color: bool = False,
    cache_dir: str | None = None,
    use_cache: bool = True,
) -> str:
    """The status line for Claude Code's JSON ``stdin_text``. Never raises."""
    try:
        return _render(stdin_text, fmt, window, policy_file, color, cache_dir, use_cache)
    except Exception as exc:  # a bug of ours must not blank the user's prompt
        debug(f"internal error: {type(exc).__name__}: {exc}")
        try:
            inp = parse_input(stdin_text)
            return f"{inp.model_name or inp.model_id or 'ctxbudget'} | Tokens: ?"
        except Exception:
            return "Tokens: ?"


def _render(
    stdin_text: str,
    fmt: str | None,
    window: int | None,
    policy_file: str | None,
    color: bool,
    cache_dir: str | None,
    use_cache: bool,
) -> str:
    inp = parse_input(stdin_text)
    if inp.error:
        debug(inp.error)
    fmt = fmt or os.environ.get(FORMAT_ENV) or DEFAULT_FORMAT
    path = os.path.abspath(os.path.expanduser(inp.transcript_path)) if inp.transcript_path else None
    cache_key = path or inp.session_id
    cache_path = None
    saved: dict[str, Any] = {}
    if use_cache and cache_key:
        try:
            cache_path = cache_file(cache_key, cache_dir)
            saved = load_json(cache_path)
        except Exception as exc:
            debug(f"no cache ({exc})")
            cache_path = None
    # With Claude Code's current usage the figure is known: the transcript adds only its
    # estimate of what came after that usage, and is consulted only through a state an
    # earlier call saved (brought up to date from the bytes appended since); a first
    # call does not open it. Without that usage, the transcript is the figure.
    use_transcript = bool(path) and (
        inp.context_tokens is None
        or TranscriptState.from_json(saved.get("transcript"), path or "") is not None
    )
    memo_key = [
        STATE_VERSION,
        _code_stamp(),
        inp.key(),
        fmt,
        window,
        _file_stamp(policy_file),
        color,
        _file_stamp(path) if use_transcript else None,
    ]
    memo = saved.get("memo")
    if isinstance(memo, dict) and memo.get("key") == memo_key and isinstance(memo.get("line"), str):
        return str(memo["line"])

    # The window Claude Code reports, kept for every other surface (``windows``); a
    # payload without it (older Claude Code) takes the one reported earlier.
    reported_window = inp.window
    if inp.session_id:
        from .windows import remember_window, remembered_window

        if inp.window:
            remember_window(inp.session_id, inp.window, cache_dir)
        else:
            reported_window = remembered_window(inp.session_id, cache_dir)
    state: TranscriptState | None = None
    changed = False
    if path and use_transcript:
        try:
            try:
                state, changed = read_transcript(path, saved.get("transcript"))
            except OSError:
                raise
            except Exception as exc:  # a cache we do not understand: start over
                debug(f"cached state dropped ({type(exc).__name__}: {exc})")
                state, changed = read_transcript(path, None)
        except OSError as exc:
            debug(f"transcript not read ({exc})")
    figure = Figure(None, "none")
    if inp.context_tokens is not None:
        if state is not None and state.anchor is not None and state.anchor[1] == inp.context_tokens:
            # Claude Code's usage is the transcript's last one: the transcript's figure
            # (that usage, its response, what came after), as `ctxbudget tokens` has it.
            figure = transcript_figure(state)
        else:
            # The next request's context: the last one's input and cache, and the
            # response, which it will carry (the transcript's figure counts it too).
            figure = Figure(
                inp.context_tokens + inp.output_tokens,
                "context_window",
                reported=inp.context_tokens,
                estimated=inp.output_tokens,
            )
    elif state is not None:
        figure = transcript_figure(state)
    policy = make_policy(
        inp,
        window=window,
        policy_file=policy_file,
        transcript_model=state.model if state else None,
        reported_window=reported_window,
    )
    if figure.used is None and inp.used_percentage is not None:
        figure = Figure(
            round(inp.used_percentage * policy.window / 100), "used_percentage", anchored=True
        )
    status = build(figure, policy, inp)
    model = inp.model_name or inp.model_id or (state.model if state else None)
    model = " ".join(model.split()) if model else None  # one line, whatever it holds
    if fmt == DEFAULT_FORMAT:
        line = default_line(status, model=model, window=policy.window, color=color)
    else:
        line = format_line(
            fmt,
            status,
            model=model,
            session_id=inp.session_id or (state.session_id if state else None),
            window=policy.window,
            color=color,
        )
    if cache_path:
        out = dict(saved)
        if state is not None and changed:
            out["transcript"] = state.to_json()
        out["memo"] = {"key": memo_key, "line": line, "source": figure.source}
        if not save_private_json(cache_path, out):
            debug(f"cache not written ({cache_path})")
    return line
