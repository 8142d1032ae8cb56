"""What every Claude Code hook reads of its session: the stored row (the store's
answers retried when it is busy), the transcript's figure (read incrementally, from
where the last run stopped), a ``Session`` at that figure with the stored policy, and
the registration that keeps the stored row and its ledger of API calls up to date.
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .hook_io import HookOptions
from .incremental import HookMemory, TranscriptFigure, read_figure
from .windows import remembered_window

if TYPE_CHECKING:
    from ..session import Session
    from ..store import StoredSession
    from ..tracker import Tracker

__all__ = [
    "STORE_ATTEMPTS",
    "HookDeadline",
    "Registered",
    "follow_model",
    "hook_deadline",
    "hook_memory",
    "payload_figure",
    "payload_model",
    "payload_text",
    "payload_transcript",
    "record_event",
    "record_usage",
    "register",
    "retrying",
    "session_at",
    "store_row",
    "stored_session",
]

# Store writes retried on a busy store: attempts, and the first pause (doubled after
# each, with jitter) on top of the store's own busy timeout.
STORE_ATTEMPTS = 3
STORE_FIRST_PAUSE = 0.25
# Seconds an attempt needs at least: with less left before the hook's deadline, none
# is started (a PostgreSQL connection attempt takes 2 s to give up).
MIN_ATTEMPT = 2.0

T = TypeVar("T")


# -- the hook's deadline ----------------------------------------------------------------


class HookDeadline(BaseException):
    """The hook's time is up. A ``BaseException``, so that no ``except Exception`` of
    the work it interrupts (a retry, an event not recorded) swallows it and goes on."""


@contextlib.contextmanager
def hook_deadline(seconds: float) -> Iterator[None]:
    """Run the block with ``seconds`` to answer (0: no limit). The store's calls fit
    in them (``STORE_DEADLINE``: ``retrying`` starts no attempt and sleeps no pause
    that would end past it, a PostgreSQL connection attempt ends before it), and on
    POSIX, in the main thread, ``SIGALRM`` raises ``HookDeadline`` in the block when
    they are up, wherever it waits (a server that stopped answering mid-way)."""
    if seconds <= 0:
        yield
        return
    from ..store.base import STORE_DEADLINE

    token = STORE_DEADLINE.set(time.monotonic() + seconds)
    try:
        with _alarm(seconds):
            yield
    finally:
        STORE_DEADLINE.reset(token)


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """``HookDeadline`` raised in the block after ``seconds`` (where a signal can)."""
    armable = (
        seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not armable:
        yield
        return

    active = True

    def expired(signum: int, frame: object) -> None:
        if active:  # again each second after: a rollback on the way out may wait too
            raise HookDeadline(f"the store did not answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        active = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- the store, with retries ----------------------------------------------------------


def retrying(action: Callable[[], T]) -> T:
    """``action()``, tried again with backoff when the store is busy or failing."""
    from ..errors import ConfigurationError, SessionNotFoundError, StoreError
    from ..store.base import STORE_DEADLINE

    pause = STORE_FIRST_PAUSE
    due = STORE_DEADLINE.get()
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            return action()
        except (SessionNotFoundError, ConfigurationError):
            raise  # an answer, or a setting to fix: trying again changes nothing
        except StoreError:
            wait = pause * (1 + random.random())
            if attempt == STORE_ATTEMPTS:
                raise
            if due is not None and time.monotonic() + wait + MIN_ATTEMPT > due:
                raise  # no time left for another attempt: the answer is this error
            time.sleep(wait)
            pause *= 2
    raise AssertionError("unreachable")


def record_event(tracker: Tracker, session_id: str, kind: str, data: dict[str, Any]) -> str | None:
    """Append an event (retried); None when done, else the line saying it was not."""
    store = tracker.store

    def write() -> None:
        store.append_event(session_id, kind, {"source": "claude-code", **data})

    try:
        retrying(write)
    except Exception as exc:
        return _not_recorded(session_id, kind, exc)
    return None


def _not_recorded(session_id: str, kind: str, exc: Exception) -> str:
    return (
        f"ctxbudget hook: the {kind} event of session {session_id} was not recorded "
        f"after {STORE_ATTEMPTS} attempts: {exc}\n"
    )


def record_usage(
    tracker: Tracker, session_id: str, figure: TranscriptFigure, legacy: int | None = None
) -> str | None:
    """The usage of the API calls the hooks have not recorded yet: one ``usage_recorded``
    event (the last call's figure). None when done (or nothing is new), else the line
    saying it was not.

    What is new is decided against the hooks' count of recorded calls in the stored
    row (``HOOK_CALLS``), read and moved on in the transaction that appends the event:
    hooks running at once (sibling sub-agents stopping together) each read the
    transcript, and only the first to get there records its new calls. ``legacy``: the
    count an earlier ctxbudget kept in the hook's cache file, for a row without one.
    (``tokens --record`` keeps its own count: it writes a point per call, which the
    hooks' one event for several calls does not replace.)"""
    from ..recording import HOOK_CALLS

    if figure.reported_tokens is None:
        return None  # no usage reported yet: nothing to record
    store = tracker.store

    def write() -> None:
        with store.transaction():
            stored = store.get_session(session_id)
            kept = (stored.meta or {}).get(HOOK_CALLS)
            done = kept if isinstance(kept, int) and not isinstance(kept, bool) else legacy or 0
            if figure.calls <= done:
                return  # recorded already (another hook read further, or got there first)
            data = {
                "source": "claude-code",
                "call": figure.calls,
                "calls_since_last": figure.calls - done,
                "context_tokens": figure.reported_tokens,
                "predicted_tokens": figure.used_tokens,
            }
            store.append_event(session_id, "usage_recorded", data)
            stored.meta = {**stored.meta, HOOK_CALLS: figure.calls}
            store.update_session(stored)

    try:
        retrying(write)
    except Exception as exc:
        return _not_recorded(session_id, "usage_recorded", exc)
    return None


# -- reading the session ------------------------------------------------------------


def payload_text(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) and value else None


def payload_transcript(payload: Mapping[str, Any]) -> Path | None:
    path = payload_text(payload, "transcript_path")
    if path is None:
        return None
    p = Path(path).expanduser()
    return p if p.is_file() else None


def stored_session(tracker: Tracker, session_id: str | None) -> StoredSession | None:
    """The stored session of this id, or None (no store lookup without an id).
    Raises when the store cannot answer (after retries)."""
    from ..errors import SessionNotFoundError

    if session_id is None:
        return None
    try:
        return retrying(lambda: tracker.store.get_session(session_id))
    except SessionNotFoundError:
        return None


def hook_memory(payload: Mapping[str, Any], options: HookOptions) -> HookMemory | None:
    key = payload_text(payload, "transcript_path") or payload_text(payload, "session_id")
    if key is None:
        return None
    return HookMemory.load(str(Path(key).expanduser()), options.cache_dir)


def payload_figure(
    payload: Mapping[str, Any], memory: HookMemory | None
) -> TranscriptFigure | None:
    """The transcript's figure, read from where the last run stopped (None: no
    readable transcript, or nothing in it yet)."""
    path = payload_transcript(payload)
    if path is None or memory is None:
        return None
    try:
        figure = read_figure(str(path), memory)
    except OSError:
        return None
    return figure if figure.used_tokens is not None else None


def session_at(
    tracker: Tracker,
    session_id: str | None,
    figure: TranscriptFigure | None,
    stored: StoredSession | None,
    options: HookOptions,
    model: str | None = None,
) -> Session:
    """A Session (not stored) at the figure's size, with the stored session's policy
    and budgets when one of that id is stored, the hook's policy fields on top."""
    from ..accounting import Anchor
    from ..policy import Policy
    from ..session import Session

    fields = dict(options.policy_fields)
    if stored is not None:
        # stored at SessionStart before the first answer, it got the default window:
        # every hook judges by the model the transcript names and the window reported
        reported = remembered_window(session_id, options.cache_dir)
        follow_model(tracker, stored, (figure.model if figure else None) or model, reported)
    base = (
        Policy.from_mapping(stored.policy, origin=f"stored session {stored.id}") if stored else None
    )
    model = (
        fields.pop("model", None)
        or (base.model if base else None)
        or (figure.model if figure else None)
        or model
    )
    if base is None:
        base = Policy.for_model(model, window=remembered_window(session_id, options.cache_dir))
    policy = base.replace(model=model, **fields)
    session = Session(tracker, policy=policy, session_id=session_id, stored=False)
    if figure is not None and figure.used_tokens is not None:
        if figure.reported_tokens is not None:
            session.anchor = Anchor(
                reported=figure.used_tokens, last_reported=figure.reported_tokens
            )
        else:
            session.anchor = Anchor(overhead=figure.used_tokens)
    if stored is not None:
        session.use_stored_settings(stored)
    return session


def follow_model(
    tracker: Tracker, stored: StoredSession, model: str | None, reported: int | None
) -> None:
    """The stored session's model and window follow the model the transcript names and
    the window Claude Code reported (``windows``): a session stored at SessionStart,
    before its first answer, got the default window. A window the user chose (neither
    the model's nor one Claude Code reported) stays. Written in one transaction over the
    row as it is then (another process may have changed it since it was read)."""
    if not _followed(stored, model, reported):
        return

    def write() -> None:
        with tracker.store.transaction():
            fresh = tracker.store.get_session(stored.id)
            if _followed(fresh, model, reported):
                tracker.store.update_session(fresh)

    # the store busy: this run uses the updated policy, the next one stores it
    with contextlib.suppress(Exception):
        retrying(write)


def _followed(stored: StoredSession, model: str | None, reported: int | None) -> bool:
    """``stored`` with its policy's model and window followed (see ``follow_model``);
    False when nothing changes."""
    from ..policy import window_for_model

    policy = stored.policy
    old_model, old_window = policy.get("model"), policy.get("window")
    model = model or old_model
    window = reported or window_for_model(model)
    if (old_model, old_window) == (model, window):
        return False
    if old_window not in (window_for_model(old_model), stored.meta.get("reported_window")):
        return False  # the user's own window
    stored.policy = {**policy, "model": model, "window": window}
    if reported:
        stored.meta = {**stored.meta, "reported_window": reported}
    return True


def payload_model(payload: Mapping[str, Any]) -> str | None:
    """SessionStart's ``model``: an id, or (as the status line gets it) ``{"id": …}``."""
    model = payload.get("model")
    if isinstance(model, dict):
        model = model.get("id")
    return model if isinstance(model, str) and model else None


def store_row(
    tracker: Tracker,
    session_id: str,
    session: Session,
    payload: Mapping[str, Any],
    options: HookOptions,
) -> StoredSession:
    """Store the session's row (an empty one, with the policy ``session`` is judged by
    and the hook's policy fields), as SessionStart does; retried. Many hooks may do
    this at once: one stores it, the others get what it stored (``Tracker.session``)."""
    fields = dict(options.policy_fields)
    fields["model"] = session.policy.model
    fields.setdefault("window", session.policy.window)
    name = payload_text(payload, "cwd")
    retrying(lambda: tracker.session(session_id, name=name, **fields))
    return retrying(lambda: tracker.store.get_session(session_id))


@dataclass(slots=True)
class Registered:
    session_id: str
    session: Session | None  # None: no transcript figure yet
    notes: list[str]


def register(
    tracker: Tracker, payload: Mapping[str, Any], options: HookOptions
) -> Registered | None:
    """Make sure the session is stored (its row; an empty one when new) and put the
    API calls its ledger lacks there (``record_usage``). None without a session id."""
    session_id = payload_text(payload, "session_id")
    if session_id is None:
        return None
    memory = hook_memory(payload, options)
    figure = payload_figure(payload, memory)
    notes: list[str] = []
    stored = stored_session(tracker, session_id)
    session = session_at(tracker, session_id, figure, stored, options, payload_model(payload))
    if stored is None:
        store_row(tracker, session_id, session, payload, options)
    if figure is not None and memory is not None:
        notes.append(record_usage(tracker, session_id, figure, memory.legacy_calls) or "")
        memory.remember_figure(session.used_tokens, session.policy.window)
    if memory is not None:
        memory.save()
    return Registered(session_id, session if figure is not None else None, notes)
