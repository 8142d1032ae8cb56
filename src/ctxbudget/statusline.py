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
   provider's own count of the last request), in ``context_window_size``;
2. the transcript at ``transcript_path``: the last main-thread usage since the last
   compaction (once per ``message.id``, sub-agent records ignored), plus the reported
   size of that response and a local estimate of what was appended after it, the same
   arithmetic as ``Session`` (so ``ctxbudget tokens`` prints the same figure), with
   the accounting's prior correction instead of a per-session fit;
3. ``context_window.used_percentage``;
4. nothing: ``Tokens: ?``.

The window is ``context_window_size``, else ``--window`` / the policy file, else the
model's (``window_for_model``). Levels, bar and labels come from ``Policy``,
``build_status`` and ``ctxbudget.render``, as everywhere else.

Speed: the transcript's state (stat, byte offset of the last complete line, last usage,
recent message ids, pending local estimate) is kept in a small JSON file per transcript
under the user cache dir, so a call reads only what was appended since the last one,
and the rendered line is memoised on everything it depends on: a call that finds
nothing changed imports no more than ``json`` and prints the memo. Nothing here imports
a tokenizer, the store or the compaction engine.

``render_statusline`` never raises: bad input still gives a line.
"""

from __future__ import annotations

import json
import math
import os
import sys
import zlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .model import Item
    from .policy import Policy
    from .status import Status

#: Placeholders: {model} {used} {max} {percent} {bar} {level} {action} {remaining}
#: {session}. ``{action}`` is empty below the warning level, else " · compact soon" etc.
DEFAULT_FORMAT = "{model} | Tokens: {used}/{max} ({percent}%) | {bar} | {level}{action}"
FORMAT_ENV = "CTXBUDGET_STATUSLINE_FORMAT"
CACHE_ENV = "CTXBUDGET_CACHE_DIR"
DEBUG_ENV = "CTXBUDGET_DEBUG"
#: What to do, by level (short forms of ``status.RECOMMENDATIONS``).
ACTIONS = {
    "warning": "compact soon",
    "critical": "compact now",
    "blocked": "new agents blocked",
}
#: Framing per item when the transcript never reported usage (``session.UNANCHORED_PER_ITEM``).
UNANCHORED_PER_ITEM = 5.0
#: Bump when the cached state's meaning changes: older cache files are then ignored.
STATE_VERSION = 1

_MAX_STDIN = 1 << 20
_RECENT_IDS = 256
_HEAD_BYTES = 64
_GZIP_MAGIC = b"\x1f\x8b"
_CODE = ("statusline.py", "render.py", "status.py", "policy.py", "accounting.py", "model.py")
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
        self.context_tokens: int | None = None  # from context_window.current_usage
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
        used = window.get("used_percentage")
        if isinstance(used, int | float) and not isinstance(used, bool) and 0 <= used <= 1000:
            result.used_percentage = float(used)
    return result


# -- cache -----------------------------------------------------------------------------


def cache_root() -> str:
    """``$CTXBUDGET_CACHE_DIR``, else platformdirs' ``user_cache_dir("ctxbudget")``.

    On Linux that is ``$XDG_CACHE_HOME/ctxbudget`` or ``~/.cache/ctxbudget``, computed
    here because importing platformdirs costs more than the whole warm call.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return override
    if sys.platform.startswith("linux"):
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache")
        return os.path.join(base, "ctxbudget")
    import platformdirs

    return platformdirs.user_cache_dir("ctxbudget")


def cache_file(key: str, root: str | None = None) -> str:
    """The cache file of a transcript path (or session id)."""
    raw = key.encode("utf-8", "surrogatepass")
    name = f"{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}.json"
    return os.path.join(root or cache_root(), "statusline", name)


def _load_json(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_json(path: str, data: dict[str, Any]) -> bool:
    """Write atomically (temporary file, then rename); False when it cannot."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, separators=(",", ":"), ensure_ascii=False)
        os.replace(tmp, path)
        return True
    except OSError as exc:
        debug(f"cache not written ({exc})")
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False


def _code_stamp() -> list[int]:
    """Modification times of the code the line depends on: a change redraws it."""
    here = os.path.dirname(os.path.abspath(__file__))
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
    its newline is left for the next call. ``anchor`` is the last main-thread usage
    since the last compaction boundary: ``[message_id, context_tokens, output_tokens,
    output_items, output_local_tokens]``. ``since_tokens`` / ``since_items`` are the
    local count (estimate counter, uncorrected) of what came after that response.
    """

    __slots__ = (
        "anchor",
        "calls",
        "dev",
        "head",
        "ids",
        "ino",
        "malformed",
        "model",
        "mtime_ns",
        "offset",
        "path",
        "records",
        "session_id",
        "since_items",
        "since_tokens",
        "size",
    )

    def __init__(self, path: str) -> None:
        self.path = path
        self.dev = 0
        self.ino = 0
        self.size = -1
        self.mtime_ns = 0
        self.offset = 0
        self.head = ""
        self.anchor: list[Any] | None = None
        self.since_tokens = 0
        self.since_items = 0
        self.calls = 0  # main-thread API calls seen in the whole file
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
            if not all(isinstance(v, int) for v in (*ints, *counts)) or not isinstance(
                state.ids, list
            ):
                return None
            bytes.fromhex(state.head)
            if not all(isinstance(i, str) for i in state.ids) or not isinstance(
                state.model, str | None
            ):
                return None
            anchor = state.anchor
            if anchor is not None and not (
                isinstance(anchor, list)
                and len(anchor) == 5
                and all(isinstance(v, int) for v in anchor[1:])
            ):
                return None
        except (TypeError, AttributeError, ValueError):
            return None
        return state

    # The figure, with the same arithmetic as Session.used_tokens.
    def used_tokens(self, per_token: float, per_item: float) -> int:
        since_tokens, since_items = self.since_tokens, self.since_items
        if self.anchor is None:
            # Session.framing: the learned per-item framing once two calls taught it
            # something, else a message's role markers.
            framing = per_item if self.calls >= 2 else min(per_item, UNANCHORED_PER_ITEM)
            return round(per_token * since_tokens + framing * since_items)
        _, context, output, out_items, out_local = self.anchor
        known = int(context)
        if output and out_items:
            # The response's size is reported: only its blocks' framing is estimated.
            known += output + round(per_item * out_items)
        else:
            since_tokens += out_local
            since_items += out_items
        return known + round(per_token * since_tokens + per_item * since_items)


def _is_boundary(record: dict[str, Any]) -> bool:
    return bool(
        (record.get("type") == "system" and record.get("subtype") == "compact_boundary")
        or record.get("isCompactSummary")
    )


class _Tail:
    """Applies appended records to a state; counts pending items once, at the end."""

    def __init__(self, state: TranscriptState) -> None:
        self.state = state
        self.pending: list[dict[str, Any]] = []  # records after the anchor's response
        self.pending_out: list[dict[str, Any]] = []  # more records of the anchor's response
        self.ids = set(state.ids)

    def add(self, record: dict[str, Any]) -> None:
        s = self.state
        s.records += 1
        if s.session_id is None and isinstance(record.get("sessionId"), str):
            s.session_id = record["sessionId"]
        if record.get("isSidechain"):
            return  # a sub-agent's own context, not the main window
        if _is_boundary(record):
            # A new context starts (the summary record itself is part of it).
            s.anchor = None
            s.since_tokens = s.since_items = 0
            self.pending.clear()
            self.pending_out.clear()
        rtype = record.get("type")
        if rtype not in ("user", "assistant"):
            return
        message = record.get("message")
        message = message if isinstance(message, dict) else {}
        mid = message.get("id") if isinstance(message.get("id"), str) else None
        usage = message.get("usage") if rtype == "assistant" else None
        model = message.get("model")
        if rtype == "assistant" and isinstance(model, str) and not model.startswith("<"):
            s.model = model
        if isinstance(usage, dict):
            context = sum(
                _count(usage.get(k)) or 0
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            )
            output = _count(usage.get("output_tokens")) or 0
            if s.anchor is not None and mid is not None and mid == s.anchor[0]:
                # Another block of the anchor's response: its last record has the final
                # output count.
                s.anchor[2] = max(s.anchor[2], output)
                self.pending_out.append(record)
                return
            if context > 0 and (mid is None or mid not in self.ids):
                s.anchor = [mid, context, output, 0, 0]
                s.calls += 1
                s.since_tokens = s.since_items = 0
                self.pending.clear()
                self.pending_out = [record]
                if mid is not None:
                    self.ids.add(mid)
                    s.ids.append(mid)
                    del s.ids[:-_RECENT_IDS]
                return
        elif s.anchor is not None and mid is not None and mid == s.anchor[0]:
            self.pending_out.append(record)
            return
        self.pending.append(record)

    def finish(self) -> None:
        """Count what is pending with the estimate counter (imported only if needed)."""
        if not self.pending and not self.pending_out:
            return
        s = self.state
        out_items = out_local = 0
        since_items = since_local = 0
        for records, is_out in ((self.pending_out, True), (self.pending, False)):
            for record in records:
                for item in _items_of(record):
                    tokens = item.tokens if item.tokens is not None else _estimate(item.text)
                    if is_out:
                        out_items += 1
                        out_local += tokens
                    else:
                        since_items += 1
                        since_local += tokens
        if s.anchor is not None:
            s.anchor[3] += out_items
            s.anchor[4] += out_local
        else:  # records of a response with no usage cannot be pending_out
            since_items += out_items
            since_local += out_local
        s.since_items += since_items
        s.since_tokens += since_local
        self.pending.clear()
        self.pending_out.clear()


def _items_of(record: dict[str, Any]) -> list[Item]:
    """The record's items exactly as the Claude Code reader makes them."""
    from .model import MAIN_AGENT
    from .sources.claude_code import _Builder

    return _Builder().items_of(record, MAIN_AGENT, 0)


_COUNTER: Any = None


def _estimate(text: str) -> int:
    global _COUNTER
    if _COUNTER is None:
        from .tokens.estimate import EstimateCounter

        _COUNTER = EstimateCounter()
    return int(_COUNTER.count(text))


def read_transcript(path: str, saved: Any = None) -> tuple[TranscriptState, bool]:
    """The state of the transcript at ``path``, from ``saved`` plus what was appended.

    Returns the state and whether it changed. Raises OSError when the file cannot be
    read at all.
    """
    st = os.stat(path)
    state = TranscriptState.from_json(saved, path)
    if state is not None and (state.dev, state.ino, state.size, state.mtime_ns) == (
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
    ):
        return state, False  # nothing happened since the last call
    with open(path, "rb") as f:
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
            data = gzip.decompress(f.read())
            state.offset = 0
        else:
            f.seek(state.offset)
            data = f.read()
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
    return state, True


# -- the line --------------------------------------------------------------------------


class Figure:
    """The context size the line shows, and where it came from."""

    __slots__ = ("anchored", "estimated", "reported", "source", "used")

    def __init__(
        self,
        used: int | None,
        source: str,
        *,
        reported: int | None = None,
        anchored: bool = True,
        estimated: int = 0,
    ) -> None:
        self.used = used
        self.source = source  # context_window, transcript, used_percentage, none
        self.reported = reported
        self.anchored = anchored
        self.estimated = estimated


def transcript_figure(state: TranscriptState) -> Figure:
    from .accounting import PRIOR_PER_ITEM, PRIOR_PER_TOKEN

    if state.records == 0:
        return Figure(None, "none")  # not a Claude Code transcript, or still empty

    used = state.used_tokens(PRIOR_PER_TOKEN, PRIOR_PER_ITEM)
    reported = state.anchor[1] if state.anchor is not None else None
    return Figure(
        used,
        "transcript",
        reported=reported,
        anchored=reported is not None,
        estimated=used - (reported or 0),
    )


def make_policy(
    inp: StatuslineInput,
    *,
    window: int | None = None,
    policy_file: str | None = None,
    transcript_model: str | None = None,
) -> Policy:
    """The policy the line is judged by: file and flags as for ``ctxbudget tokens``,
    and the window Claude Code reports above both."""
    from .errors import CtxBudgetError
    from .policy import Policy, fields_from_toml

    model = inp.model_id or transcript_model
    fields: dict[str, Any] = {}
    if policy_file:
        try:
            fields = fields_from_toml(policy_file)
        except CtxBudgetError as exc:
            debug(str(exc))
    model = fields.pop("model", None) or model
    if window is not None and window > 0:
        fields["window"] = window
    if inp.window:
        fields["window"] = inp.window
    try:
        return Policy.for_model(model, **fields)
    except CtxBudgetError as exc:
        debug(f"{exc}: default thresholds used")
        return Policy.for_model(model, window=fields.get("window"))


def build(figure: Figure, policy: Policy, inp: StatuslineInput) -> Status | None:
    from .status import Breakdown, build_status

    if figure.used is None:
        return None
    return build_status(
        used_tokens=figure.used,
        policy=policy,
        breakdown=Breakdown(),
        anchored=figure.anchored,
        reported_tokens=figure.reported,
        estimated_since_report=figure.estimated,
        counter="estimate" if figure.source == "transcript" else "provider",
        tokens_per_exchange=None,
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
    from .render import LEVEL_LABEL, bar, paint

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
    from .render import paint, status_line

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
            saved = _load_json(cache_path)
        except Exception as exc:
            debug(f"no cache ({exc})")
            cache_path = None
    memo_key = [
        STATE_VERSION,
        _code_stamp(),
        inp.key(),
        fmt,
        window,
        _file_stamp(policy_file),
        color,
        _file_stamp(path) if inp.context_tokens is None else None,
    ]
    memo = saved.get("memo")
    if isinstance(memo, dict) and memo.get("key") == memo_key and isinstance(memo.get("line"), str):
        return str(memo["line"])

    state: TranscriptState | None = None
    changed = False
    figure = Figure(None, "none")
    if inp.context_tokens is not None:
        figure = Figure(inp.context_tokens, "context_window", reported=inp.context_tokens)
    elif path:
        try:
            try:
                state, changed = read_transcript(path, saved.get("transcript"))
            except OSError:
                raise
            except Exception as exc:  # a cache we do not understand: start over
                debug(f"cached state dropped ({type(exc).__name__}: {exc})")
                state, changed = read_transcript(path, None)
            figure = transcript_figure(state)
        except OSError as exc:
            debug(f"transcript not read ({exc})")
    policy = make_policy(
        inp,
        window=window,
        policy_file=policy_file,
        transcript_model=state.model if state else None,
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
        _save_json(cache_path, out)
    return line
