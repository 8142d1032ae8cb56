"""A Claude Code transcript read incrementally into a ``TranscriptState``.

A call reads only the bytes appended since the state's offset (``read_transcript``; a
replaced or truncated file is read again from the start) and applies each record as
``replay_history`` would (``Tail``): the items are the Claude Code reader's, the context
rules its own (``sources.claude_code_context``).

Imports nothing heavy at run time (the status line's first call pays for every import);
the counter and the model are imported only when a record needs counting.
"""

from __future__ import annotations

import json
import os
import stat

from ..tokens.framing import response_reported
from .cache import open_regular
from .transcript_state import TranscriptState, count_field, debug

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from ..accounting import Calibration
    from ..model import Item

__all__ = ["DEFAULT_MAX_BYTES", "MAX_BYTES_ENV", "Tail", "max_read_bytes", "read_transcript"]

#: The most bytes one call reads of a transcript (``$CTXBUDGET_STATUSLINE_MAX_BYTES``
#: overrides): a first read of a bigger file, or a bigger append, is not read at all and
#: the line says ``?`` (or shows Claude Code's own figure) rather than stall the prompt.
MAX_BYTES_ENV = "CTXBUDGET_STATUSLINE_MAX_BYTES"
DEFAULT_MAX_BYTES = 64 << 20

_RECENT_IDS = 256
# How many of the latest main-thread records' counts are kept: a compaction keeps a few
# of the messages before it (Claude Code 2.x ``preservedMessages``).
_RECENT_RECORDS = 256
_HEAD_BYTES = 64
# From this many bytes to parse (a first read, not a status line's few appended lines)
# the lines go through the Claude Code reader's faster parser, which costs an import
# (orjson's).
_FAST_JSON_FROM = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"


class Tail:
    """Applies appended records to a state, as ``replay_history`` would see them.

    Records are kept uncounted until a new API call (or the end of the read) needs their
    count: then each item is counted once, in order, into ``state.added`` (or the
    unanchored sums), and at a new call with an anchor the calibration learns from
    what was added since that anchor.
    """

    def __init__(self, state: TranscriptState) -> None:
        # the Claude Code reader's rules, imported once there are records to apply
        from ..sources import claude_code_context as rules

        self.is_context = rules.is_context_record
        self.is_boundary = rules.is_compact_boundary
        self.opens_context = rules.opens_context
        self.preserved_messages = rules.preserved_messages
        self.carried_of = rules.carried_of
        self.named_model = rules.named_model
        self.system_blob = rules.system_blob
        self.sends_system_messages = rules.sends_system_messages
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
        elif s.model is None and not record.get("isSidechain"):
            s.model = self.named_model(record)  # before any answer: the model it is asked of
        if record.get("isSidechain"):
            return  # a sub-agent's own context, not the main window
        boundary = self.is_boundary(record)
        # a summary right after its boundary (reminders between) continues that context
        if self.opens_context(record, s.opened):
            # A new context starts (at a compaction, or at a record with no parent:
            # the reader's root); the summary or root record itself is part of it, and
            # the messages the compaction kept come after the summary.
            self._flush()  # counted: the compaction may keep some of them
            s.anchor = None
            s.added = []
            s.since_tokens = s.since_items = 0
            carried = self.carried_of(record) if boundary else None
            s.carried = carried.to_data() if carried is not None else None
        if boundary:
            s.opened = True
            kept = self.preserved_messages(record)
            s.kept = [kept[-1][0], kept[-1][1]] if kept else None
        elif rtype in ("user", "assistant"):
            s.opened = False
        if s.kept is not None and record.get("uuid") == s.kept[0]:
            counts = {row[0]: row[1:] for row in s.recent}
            for uuid in s.kept[1]:
                tokens, items = counts.get(uuid, (0, 0))
                s.since_tokens += tokens
                s.since_items += items
            s.kept = None
        if rtype == "api-request-shape":
            self._shape(record.get("shape"))
        elif rtype == "api-request-blob" and (blob := self.system_blob(record)) is not None:
            s.system_hashes = [*s.system_hashes[-(_RECENT_IDS - 1) :], blob]
        elif rtype == "api-request" and not record.get("isSidechain"):
            # a set: a request's tail names every message it sent
            sends = self.sends_system_messages(record, set(s.system_hashes), s.system)
            s.system = s.system if sends is None else sends
        if not self.is_context(record):
            return
        self._follow(record, rtype)
        if rtype == "user" and isinstance(message.get("content"), list):
            done = [
                block["tool_use_id"]
                for block in message["content"]
                if isinstance(block, dict)
                and block.get("type") == "tool_result"
                and isinstance(block.get("tool_use_id"), str)
            ]
            if done:
                s.results = [*s.results, *done][-_RECENT_IDS:]
        mid = message.get("id") if isinstance(message.get("id"), str) else None
        anchor_id = s.anchor[0] if s.anchor is not None else None
        usage = message.get("usage") if rtype == "assistant" else None
        if isinstance(usage, dict):
            context = sum(
                count_field(usage.get(k)) or 0
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            )
            output = count_field(usage.get("output_tokens")) or 0
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

    def _follow(self, record: dict[str, Any], rtype: Any) -> None:
        """Follow ``parentUuid`` as the reader does, for a prompt written off an earlier
        message and left (the conversation went on from the message before it): that
        prompt is no part of the context. A prompt whose parent is an earlier message
        than the latest is held as a branch until the next message: one that goes on
        from the latest leaves it out (its count taken back); one that goes on from it
        keeps it (an edit that rewound the conversation: the messages it left stay
        counted until the next usage, as the module's docstring says)."""
        s = self.state
        uuid, parent = record.get("uuid"), record.get("parentUuid")
        if s.branch is not None:
            left, old_tip = s.branch
            s.branch = None
            if parent == old_tip:
                self._take_back(left)
        if (
            rtype == "user"
            and not _holds_results(record)  # 2.x hangs each result on its own call
            and isinstance(uuid, str)
            and isinstance(parent, str)
            and s.tip is not None
            and parent != s.tip
            and self._known(parent)
        ):
            s.branch = [uuid, s.tip]
            return  # the tip stays: the next message says which branch goes on
        if isinstance(uuid, str):
            s.tip = uuid

    def _known(self, uuid: str) -> bool:
        """A main-thread message read before (a branch starts at one)."""
        return any(row[0] == uuid for row in self.state.recent) or any(
            r.get("uuid") == uuid for r, _ in self.pending
        )

    def _take_back(self, uuid: str) -> None:
        """Uncount the record ``uuid``, the last counted or still pending."""
        s = self.state
        for at, (record, _) in enumerate(self.pending):
            if record.get("uuid") == uuid:
                del self.pending[at]
                return
        if not s.recent or s.recent[-1][0] != uuid:
            return  # counted before others: left as it is (not seen in real files)
        _, tokens, items = s.recent.pop()
        if s.anchor is not None:
            if items and len(s.added) >= items:
                del s.added[-items:]
        else:
            s.since_tokens -= tokens
            s.since_items -= items

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
            out_n = a_items if response_reported(a_output, sum(s.added[:a_items])) else 0
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
        # remembered past compactions: Claude Code's status line may still report one
        s.usages = [*s.usages[-(_RECENT_IDS - 1) :], context]
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
            from ..sources.media import local_tokens
            from ..tokens.counters import get_counter

            s = self.state
            if s.counter is None:
                s.counter = s.counter_name()
            count_text = get_counter(s.counter).count

            def count(item: Item) -> int:
                if item.tokens is not None:
                    return item.tokens
                return local_tokens(item, count_text, s.model)

            self._count = count
        return self._count

    def _flush(self) -> None:
        """Count the pending records' items (the counter is imported only if needed)."""
        if not self.pending:
            return
        s = self.state
        count = self.counter()
        for record, is_out in self.pending:
            counts = [count(item) for item in _items_of(record, s.system is not False)]
            if isinstance(record.get("uuid"), str):
                s.recent.append([record["uuid"], sum(counts), len(counts)])
            if s.anchor is not None:
                if is_out:  # the anchor's response stays first, as the reader orders it
                    at = s.anchor[3]
                    s.added[at:at] = counts
                    s.anchor[3] += len(counts)
                else:
                    s.added.extend(counts)
            else:
                s.since_tokens += sum(counts)
                s.since_items += len(counts)
        self.pending.clear()
        del s.recent[:-_RECENT_RECORDS]

    def finish(self) -> None:
        self._flush()
        if self.shape_texts:
            count = self.counter()
            texts = self.shape_texts.values()
            self.state.shape = [sum(count(_text_item(t)) for t in texts), len(texts)]
        if self._calibration is not None:
            self.state.keep_calibration(self._calibration)


def _last_model_counter(f: Any, size: int) -> str | None:
    """The counter of the last model named by an assistant record in the file's last
    4 MiB (None when none is: the first part read picks one). Leaves ``f`` anywhere."""
    from ..tokens.counters import counter_name_for_model

    f.seek(max(0, size - (4 << 20)))
    for line in reversed(f.read(4 << 20).splitlines()):
        if b'"assistant"' not in line or b'"model"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        message = record.get("message") if isinstance(record, dict) else None
        model = message.get("model") if isinstance(message, dict) else None
        if record.get("type") == "assistant" and isinstance(model, str) and model[:1] != "<":
            return counter_name_for_model(model)
    return None


def _line_end(path: str, began: int, start: int) -> int | None:
    """The bytes from ``began`` to just past the end of the line there, which ends at
    or after ``start`` (None: the line runs to the end of the file)."""
    with open(path, "rb") as f:
        f.seek(start)
        while block := f.read(1 << 20):
            at = block.find(b"\n")
            if at >= 0:
                return start + at + 1 - began
            start += len(block)
    return None


def _holds_results(record: dict[str, Any]) -> bool:
    message = record.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return isinstance(content, list) and any(
        isinstance(block, dict) and block.get("type") == "tool_result" for block in content
    )


def _text_item(text: str) -> Item:
    from ..model import Item, Kind, Role

    return Item(role=Role.SYSTEM, kind=Kind.SYSTEM_PROMPT, text=text)


def _items_of(record: dict[str, Any], system_messages: bool) -> list[Item]:
    """The record's items exactly as the Claude Code reader makes them (the reminders as
    the latest request sent them: ``system_messages`` or the user's text)."""
    from ..model import MAIN_AGENT
    from ..sources.claude_code_items import TranscriptBuilder

    return TranscriptBuilder(system_messages).items_of(record, MAIN_AGENT, 0)


def read_transcript(
    path: str, saved: Any = None, *, max_bytes: int | None = None, partial: bool = False
) -> tuple[TranscriptState, bool]:
    """The state of the transcript at ``path``, from ``saved`` plus what was appended.

    Returns the state and whether it changed. Raises OSError when the file cannot be
    read at all: missing, not a regular file (a FIFO would block forever, ``/dev/zero``
    never ends), or more than ``max_bytes`` (default ``max_read_bytes()``) to read,
    unless ``partial``: then the whole lines of the first ``max_bytes`` are read and
    ``state.unread`` says how many bytes the next call goes on with (its figures are
    of the part read: not the transcript's until ``unread`` is 0).
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise OSError(f"{path} is not a regular file")
    state = TranscriptState.from_json(saved, path)
    if (
        state is not None
        and not state.unread
        and (state.dev, state.ino, state.size, state.mtime_ns)
        == (
            st.st_dev,
            st.st_ino,
            st.st_size,
            st.st_mtime_ns,
        )
    ):
        return state, False  # nothing happened since the last call
    state = _read(path, st, state, max_bytes, partial)
    # (the file's model is its last one: judged once the whole file is read, else a
    # read in parts whose parts end on models of two counters starts over for ever)
    if state.counter is not None and not state.unread:
        from ..tokens.counters import counter_name_for_model

        wanted = counter_name_for_model(state.model)
        if wanted != state.counter:
            # The model named in the records read so far picked another counter than
            # the whole file's model does: count everything again with that one.
            debug(f"{path}: counted with {state.counter}, its model wants {wanted}")
            fresh = TranscriptState(path)
            fresh.counter = wanted
            fresh.dev, fresh.ino = st.st_dev, st.st_ino  # the same file: keep the counter
            state = _read(path, st, fresh, max_bytes, partial)
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
    path: str,
    st: os.stat_result,
    state: TranscriptState | None,
    max_bytes: int | None = None,
    partial: bool = False,
) -> TranscriptState:
    """``state`` (None: a new one) plus the complete lines of ``path`` after its offset,
    up to the size ``st`` gave (what is appended meanwhile waits for the next call), or
    up to ``max_bytes`` of them when ``partial``."""
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
            if partial and st.st_size > cap:
                # read in parts: counted from the start with the counter of the file's
                # last model (the one a whole read picks), not the first part's
                state.counter = _last_model_counter(f, st.st_size)
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
            if size > cap and not partial:
                raise OSError(f"{size:,} bytes to read in {path}, above {cap:,} ({MAX_BYTES_ENV})")
            f.seek(state.offset)
            data = f.read(min(size, cap))
    end = data.rfind(b"\n") + 1  # a last line without newline waits for the next call
    if len(data) < st.st_size - state.offset and head[:2] != _GZIP_MAGIC:
        if not end:
            # one record longer than a call may read: left out, as a malformed line is
            # (the next usage counts it), rather than stop every later call on it
            past = _line_end(path, state.offset, state.offset + len(data))
            if past is None:
                raise OSError(f"a line of {path} is longer than {cap:,} bytes ({MAX_BYTES_ENV})")
            end = past
            debug(f"{path}: a record of {end:,} bytes, above {cap:,} ({MAX_BYTES_ENV}): left out")
            state.malformed += 1
            data = b""
        state.unread = st.st_size - state.offset - end
    else:
        state.unread = 0
    if end:  # whole lines to apply (a Tail imports the reader's rules)
        tail = Tail(state)
        # the reader's own parsing (a line nested too deeply is a malformed line, not
        # an error); from a first read on, its faster parser, which costs an import
        from ..sources import problems

        loads: Callable[[bytes], Any] = (
            problems.javascript_loads() if end >= _FAST_JSON_FROM else problems.loads
        )
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                record = loads(line)
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
