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

1. ``context_window.current_usage`` when it is newer than the transcript: input +
   cache creation + cache read (the provider's own count of the last request) + its
   output tokens (the next request carries the response), in ``context_window_size``.
   Newer: the transcript cannot be read, or none of its latest main-thread API calls
   (compactions included) reported that context, so Claude Code made a call the
   transcript does not show yet. A usage the transcript holds, its latest call's or
   an earlier one's (a later call or a compaction came after), is not newer: the
   transcript's figure (2.) then, which adds that response's framing and what came
   after it;
2. the transcript at ``transcript_path``, with the definition and arithmetic of
   ``ctxbudget tokens`` (``Session._from_transcript`` over ``replay_history``), so
   both print the same figure (below);
3. ``context_window.used_percentage``;
4. nothing: ``Tokens: ?``.

A transcript is read incrementally (only what was appended since the last call). A
first read of more than ``$CTXBUDGET_STATUSLINE_MAX_BYTES`` (64 MiB) goes on that
much per call, so no call stalls the prompt; meanwhile the line shows 1. or 3. when
Claude Code sends them, else ``Tokens: ? · reading the transcript: N%``.

The transcript's figure. Records are taken in file order; sub-agent (``isSidechain``)
records are skipped. A context starts at a ``compact_boundary`` record, an
``isCompactSummary`` record or a user / assistant record without ``parentUuid``. An
API call is the first main-thread assistant record of a ``message.id`` (the last 256
ids are remembered), or one without an id, whose usage has input + cache creation +
cache read above 0; its output is the largest ``output_tokens`` of the records of
that id. Each user / assistant record gives the items the Claude Code reader makes of
it, each counted locally (an item's own ``tokens`` when it has them, images) with the
counter ``ctxbudget tokens`` picks: ``counter_name_for_model`` of the last assistant
model of the file (``<synthetic>`` aside), sub-agents' included (``claude-estimate``
for Claude models, ctok installed or not). The correction
``Calibration.for_counter`` (exact only for ``o200k_base`` / ``cl100k_base``) learns
from every call that has an anchor, the previous call of its context: with *added*
the items from the anchor's first record to this call's, *out_n* the number of them
in records of the anchor's id (0 when the anchor has no id, or reported no output or
less than half the local count of those items: ``framing.response_reported``)
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
(true of the shared Claude Code sessions), and after a prompt left on a side branch
(one written off an earlier message, the conversation going on from the latest: held
until the next message says so, then taken back); not after an edit that rewound the
conversation, until the next usage.

The window is ``context_window_size``, else ``--window`` / the policy file, else the
model's (``window_for_model``): Claude Code's ``model.id``, else the transcript's
model as above. Levels, bar and labels come from ``Policy``, ``build_status`` and
``ctxbudget.render``, as everywhere else.

Speed: the transcript's state (``transcript_state``: stat, byte offset of the last
complete line, the anchor and the local count of each item since it, the correction
learnt so far with its samples, the counter's name, recent message ids and the
reported context of recent calls) is kept in a small JSON file per transcript under the
user cache dir, whether or not Claude Code passed its usage, so a call reads only what
was appended since the last one and never replays the history; a read after which the
file's model picks another counter than the counts were made with counts the whole
file again. The first call on a transcript counts every main-thread item. The rendered
line is memoised on everything it depends on (the transcript's stat included): a call
that finds nothing changed imports no more than ``json`` and prints the memo. Nothing here
imports the store or the compaction engine, nor a tokenizer unless the transcript's
model picks one (``estimate`` is pure Python).

``render_statusline`` never raises: bad input still gives a line.
"""

from __future__ import annotations

import json
import os
import stat
import zlib

# Imports nothing: the status line's arithmetic is ``ctxbudget tokens``'s.
from .cache import cache_root, load_json, save_private_json
from .statusline_format import DEFAULT_FORMAT, FORMAT_ENV, default_line, format_line
from .transcript_read import read_transcript
from .transcript_state import STATE_VERSION, TranscriptState, count_field, debug

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..policy import Policy
    from ..status import Status

# The code the line depends on, from the package's root.
_CODE = (
    "claude_code/statusline.py",
    "claude_code/statusline_format.py",
    "claude_code/transcript_state.py",
    "claude_code/transcript_read.py",
    "claude_code/cache.py",
    "render.py",
    "status.py",
    "policy.py",
    "accounting.py",
    "model.py",
    "tokens/framing.py",
)


# -- input ---------------------------------------------------------------------------


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
        size = count_field(window.get("context_window_size"))
        result.window = size if size else None
        usage = window.get("current_usage")
        if isinstance(usage, dict):
            parts = [
                count_field(usage.get(k))
                for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
            ]
            if any(p is not None for p in parts):
                result.context_tokens = sum(p or 0 for p in parts)
                result.output_tokens = count_field(usage.get("output_tokens")) or 0
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


def usage_figure(context: int, output: int) -> Figure:
    """Claude Code's usage as the next request's context: the last one's input and
    cache, and the response, which it will carry (the transcript's figure counts it
    too)."""
    return Figure(context + output, "context_window", reported=context, estimated=output)


def choose_figure(inp: StatuslineInput, state: TranscriptState | None) -> Figure:
    """The transcript's figure, unless Claude Code's usage is newer than what the
    transcript shows (or the transcript could not be read): then that usage's."""
    context = inp.context_tokens
    if context is not None and (state is None or not state.holds_usage(context)):
        # a call the transcript does not show yet (its records are written after it)
        return usage_figure(context, inp.output_tokens)
    if state is not None:
        # the usage is the transcript's latest (the figure adds its response's framing
        # and what came after, as `ctxbudget tokens` does) or older than it: a later
        # call, or a compaction, which leaves that usage no part of the context
        return transcript_figure(state)
    return Figure(None, "none")


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
    memo_key = [
        STATE_VERSION,
        _code_stamp(),
        inp.key(),
        fmt,
        window,
        _file_stamp(policy_file),
        color,
        _file_stamp(path),
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
    if path:
        # Read with or without Claude Code's usage (from the state saved by the last
        # call, only the bytes appended since): the state is saved on every call, so
        # the transcript's figure is there whenever Claude Code's usage is not newer.
        try:
            try:
                state, changed = read_transcript(path, saved.get("transcript"), partial=True)
            except OSError:
                raise
            except Exception as exc:  # a cache we do not understand: start over
                debug(f"cached state dropped ({type(exc).__name__}: {exc})")
                state, changed = read_transcript(path, None, partial=True)
        except OSError as exc:
            debug(f"transcript not read ({exc})")
    reading = state is not None and state.unread > 0
    # a first read of a big transcript goes on call after call: its figure is of the
    # part read until then, no figure to show
    figure = choose_figure(inp, None if reading else state)
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
    if reading and status is None and state is not None:
        done = state.offset / max(1, state.offset + state.unread)
        line = f"{model + ' | ' if model else ''}Tokens: ? · reading the transcript: {done:.0%}"
    elif fmt == DEFAULT_FORMAT:
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
        if reading:  # the next call reads on: no line to repeat
            out.pop("memo", None)
        else:
            out["memo"] = {"key": memo_key, "line": line, "source": figure.source}
        if not save_private_json(cache_path, out):
            debug(f"cache not written ({cache_path})")
    return line
