"""What the status line and the hooks remember of a Claude Code transcript between two
runs, and the figure it gives.

The state (``TranscriptState``) is the byte offset of the last complete line read, the
anchor (the latest main-thread API call: its reported context and output), the local
count of what came after it, the correction learnt so far and what each usage counted
beyond its transcript. ``transcript_read`` reads only the bytes appended since and
applies each record to it as ``replay_history`` would. The arithmetic is ``ctxbudget
tokens``'s: the same items (the Claude Code reader's), the same correction.

Imports nothing heavy at run time (the status line's first call pays for every import).
"""

from __future__ import annotations

import os
import sys

from ..tokens.framing import EXACT_COUNTERS, response_reported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..accounting import Calibration
    from ..model import Carried

__all__ = ["STATE_VERSION", "TranscriptState", "count_field", "debug"]

DEBUG_ENV = "CTXBUDGET_DEBUG"
#: Bump when the cached state's meaning changes: older cache files are then ignored.
STATE_VERSION = 9


def debug(message: str) -> None:
    """One line on stderr when ``CTXBUDGET_DEBUG`` is set; never on the user's line."""
    if os.environ.get(DEBUG_ENV):
        import contextlib

        with contextlib.suppress(Exception):
            print(f"ctxbudget statusline: {message}", file=sys.stderr)


def count_field(value: Any) -> int | None:
    """A non-negative token count, or None for anything else (bools, strings, NaN)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value == value and 0 <= value < 1e15:
        return int(value)
    return None


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
    counter the counts were made with (None: nothing counted yet). ``recent`` holds the
    latest main-thread records' ``[uuid, tokens, items]``, ``usages`` the reported context
    of the latest main-thread API calls (oldest first, across compactions), ``kept`` the
    messages the last
    compaction kept (``[summary uuid, [uuids]]``) until its summary comes, ``opened``
    whether a compaction boundary was read and no message since (its summary then
    continues the context the boundary started). ``system_hashes`` are the latest
    system-role request messages by hash, ``system`` whether the latest request sent
    system messages (None: not known), which decides how its reminders are counted.
    """

    __slots__ = (
        "added",
        "anchor",
        "branch",
        "calibration",
        "calls",
        "carried",
        "context",
        "counter",
        "dev",
        "head",
        "ids",
        "ino",
        "kept",
        "malformed",
        "model",
        "mtime_ns",
        "offset",
        "opened",
        "overheads",
        "path",
        "recent",
        "records",
        "results",
        "session_id",
        "shape",
        "since_items",
        "since_tokens",
        "size",
        "system",
        "system_hashes",
        "tip",
        "unread",
        "usages",
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
        # bytes of the file not read yet: a first read bigger than one call may read
        # goes on at the next call (``read_transcript(..., partial=True)``)
        self.unread = 0
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
        # what the latest compact boundary carried over (a fork's: ``Carried.to_data``)
        self.carried: dict[str, Any] | None = None
        self.ids: list[str] = []
        self.usages: list[int] = []
        self.model: str | None = None
        self.session_id: str | None = None
        self.records = 0
        self.malformed = 0
        self.recent: list[list[Any]] = []
        # the tool_use ids of the latest tool results in the main thread (a spawn's room
        # is held until its result is in the context: ``hooks.pre_tool_use``)
        self.results: list[str] = []
        # the latest main-thread message's uuid, and a prompt that branched off an
        # earlier one ([its uuid, the tip it left]) until the next message says which
        # branch goes on (``Tail.add``)
        self.tip: str | None = None
        self.branch: list[str] | None = None
        self.kept: list[Any] | None = None
        self.opened = False  # a compaction boundary read, and no message since
        self.system_hashes: list[str] = []
        self.system: bool | None = None

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
            ints = (state.dev, state.ino, state.size, state.mtime_ns, state.offset, state.unread)
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
                and _str_list(state.results)
                and isinstance(state.usages, list)
                and all(_is_int(v) for v in state.usages)
                and isinstance(state.context, list)
                and len(state.context) == 2
                and all(_is_int(v) for v in state.context)
                and isinstance(state.overheads, list)
                and all(_is_int(v) for v in state.overheads)
                and isinstance(state.shape, list)
                and len(state.shape) == 2
                and all(_is_int(v) for v in state.shape)
                and isinstance(state.model, str | None)
                and isinstance(state.tip, str | None)
                and (state.branch is None or (_str_list(state.branch) and len(state.branch) == 2))
                and isinstance(state.counter, str | None)
                and isinstance(state.added, list)
                and all(_is_int(v) for v in state.added)
                and isinstance(state.opened, bool)
                and isinstance(state.carried, dict | None)
                and _str_list(state.system_hashes)
                and isinstance(state.system, bool | None)
                and isinstance(state.recent, list)
                and all(
                    isinstance(row, list)
                    and len(row) == 3
                    and isinstance(row[0], str)
                    and _is_int(row[1])
                    and _is_int(row[2])
                    for row in state.recent
                )
                and (
                    state.kept is None
                    or (
                        isinstance(state.kept, list)
                        and len(state.kept) == 2
                        and isinstance(state.kept[0], str)
                        and _str_list(state.kept[1])
                    )
                )
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

    def holds_usage(self, context: int) -> bool:
        """Whether one of the latest main-thread API calls read reported ``context``
        (input + cache creation + cache read): a usage the transcript holds is not newer
        than it, even when a later call or a compaction followed it."""
        return context in self.usages

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
        correction = self._carried().correction_for(name) if self.carried is not None else None
        if correction is not None:  # a fork's: what the session it came from learned
            calibration = Calibration.carried_over(*correction)
        else:
            exact = name in EXACT_COUNTERS
            calibration = Calibration.for_counter(exact_for_model=exact, counter=name)
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
        shape counts them, else as the session a fork came from measured them; else 0."""
        if self.anchor is not None:
            return 0
        from ..accounting import unmeasured_overhead  # the rule ``ctxbudget tokens`` follows

        tokens, blocks = self.shape

        def shape() -> int:
            return round(calibration.per_token * tokens + max(0.0, calibration.framing) * blocks)

        carried = self._carried().overhead if self.carried is not None else None
        return unmeasured_overhead(self.overheads, shape if blocks else None, carried) or 0

    def _carried(self) -> Carried:
        from ..model import Carried

        return Carried.from_data(self.carried) or Carried(0)

    # The figure, with the same arithmetic as Session._from_transcript / used_tokens.
    def used_tokens(self, calibration: Calibration) -> int:
        if self.anchor is None:
            framing = calibration.framing
            local = round(calibration.per_token * self.since_tokens + framing * self.since_items)
            return local + self.estimated_overhead(calibration)
        context, output, out_items = (int(v) for v in self.anchor[1:])
        # The response's size is reported (output tokens): its items are its first
        # ``out_n`` ones, of which only the framing is estimated.
        out_n = out_items if response_reported(output, sum(self.added[:out_items])) else 0
        rest = self.added[out_n:]
        known = context + output * (out_n > 0) + round(calibration.per_item * out_n)
        return known + calibration.predict(sum(rest), len(rest))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
