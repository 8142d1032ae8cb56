"""Recall: what compactions archived, searched and brought back within a budget.

The archive is the items of a stored session's older context versions (ctxbudget's
compactions) and the contexts a transcript's own compactions replaced (Claude Code's
``/compact`` leaves the items before its boundary in the file). ``recall`` offers
the best matches of a query, and the reply after each of the best few, without
ctxbudget's own reports.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from itertools import zip_longest

from .compaction.fact_rules import is_report_or_command
from .errors import CompactionError, SessionNotFoundError
from .model import Item, Kind
from .session_state import SessionState
from .sources.tools import is_ctxbudget_tool


def recall(session: SessionState, query: str, budget: int = 500) -> list[Item]:
    """The archived items that best match ``query``, within ``budget`` tokens: what
    ctxbudget's compactions of a stored session archived, and what the compactions
    recorded in its transcript took out (Claude Code's ``/compact`` leaves the items
    before its boundary in the file)."""
    if budget <= 0:
        raise CompactionError(f"the recall budget must be positive (got {budget})")
    current = {item.hash for item in session.items}
    reports: set[str] = set()  # ctxbudget's reports and the model's echo of them
    hits, held = _archived(session, query, current, reports)
    # The reply to a matching message often holds what was asked about ("Where did
    # you go?" / "To Paris."): the best few hits bring their next message along.
    following = _following(session, held, [item for item, _ in hits[:NEIGHBOURS]])
    chosen: list[Item] = []
    taken: set[str] = set()
    spent = 0

    def take(item: Item) -> bool:
        nonlocal spent
        if item.hash in current or item.hash in taken or item.hash in reports:
            return False
        tokens = session.count(item)
        if spent + tokens > budget:
            return False
        chosen.append(item)
        taken.add(item.hash)
        spent += tokens
        return True

    for rank, (item, _score) in enumerate(hits):
        tokens = session.count(item)
        if not chosen and tokens > budget and item.hash not in current:
            chosen.append(_clip_to(item, query, budget, session))
            break
        take(item)
        if rank < NEIGHBOURS:
            for after in following.get(item.hash, ()):
                take(after)
    return chosen


NEIGHBOURS = 2
#: At most this many hits from a transcript's own history (a store gives its own)
TRANSCRIPT_HITS = 50


def _archived(
    session: SessionState, query: str, current: set[str], reports: set[str]
) -> tuple[list[tuple[Item, float]], int | None]:
    """The archived items matching ``query``, best first (the transcript's best and the
    store's best in turn), and the stored version the archive leaves out (None: the
    store holds no copy of the session). ``reports`` receives the hashes of the
    reports ctxbudget printed into a transcript and of the model's echo of each (never
    offered: what they say is stale or archived already)."""
    from .store import search_texts

    hits: list[tuple[Item, float]] = []
    # The store's archive of this session (of its id, when the session was read from
    # its transcript: what ctxbudget's compactions of the stored copy took out)
    held = session.version if session.is_stored else _stored_version(session)
    if held is not None:
        hits += session.store.search_archive(session.id, query, exclude_version=held)
    transcript = session.transcript
    replaced = transcript.replaced if transcript is not None else []
    if replaced:
        # the latest copy of each text, most recent first: equal scores list it first
        for context in replaced:
            reports.update(_reports_in(context))
        gone: dict[str, Item] = {}
        for context in reversed(replaced):
            for item in reversed(context):
                if item.hash not in current and item.hash not in gone and item.hash not in reports:
                    gone[item.hash] = item
        found = search_texts(query, [(item, item.text) for item in gone.values()], TRANSCRIPT_HITS)
        # the two searches' scores are not comparable: their best in turn, the live
        # transcript's first (what the session went through; the store's archive is
        # of ctxbudget's compactions of it)
        stored, hits = hits, []
        for pair in zip_longest(found, stored):
            hits += [hit for hit in pair if hit is not None]
    hits = [hit for hit in hits if not _is_report(hit[0])]
    return hits, held


def _stored_version(session: SessionState) -> int | None:
    """The current version of the stored session of ``session``'s id, or None."""
    try:
        return session.store.get_session(session.id).context_version
    except SessionNotFoundError:
        return None


def _reports_in(context: list[Item]) -> Iterator[str]:
    """The hashes of the marked reports in ``context`` and of the assistant's text
    right after each (the model showing it, as the plugin commands ask)."""
    for at, item in enumerate(context):
        if _is_report(item):
            yield item.hash
            after = next((i for i in context[at + 1 :] if i.kind is not Kind.REMINDER), None)
            if after is not None and after.kind is Kind.ASSISTANT_TEXT:
                yield after.hash


def _is_report(item: Item) -> bool:
    """A report ctxbudget itself printed into the conversation (its figures, an earlier
    recall, a hook's alert) or a slash command's record (its invocation, its output:
    the ``/compact --dry-run`` preview): what it says is in the archive already, was
    stale when shown, or is no part of the conversation."""
    return is_report_or_command(item.text) or is_ctxbudget_tool(item.tool)


def _following(session: SessionState, held: int | None, hits: list[Item]) -> dict[str, list[Item]]:
    """For each hit, the archived item that came right after it, and when that one asks
    something ("Wow! What's it about?"), the answer after it too: in the store's
    archive (the earliest version first, ``held`` left out), else in the contexts the
    transcript's own compactions replaced. Only those rows are read, not whole
    versions."""
    out: dict[str, list[Item]] = {}
    transcript = session.transcript
    replaced = transcript.replaced if transcript is not None else []
    for hit in hits:
        if hit.hash in out:
            continue
        after: list[Item] = []
        if held is not None:
            after = session.store.items_after(session.id, hit.hash, exclude_version=held)
        if not after:
            after = next(
                (
                    items[at + 1 : at + 3]
                    for items in replaced
                    for at, before in enumerate(items[:-1])
                    if before.hash == hit.hash
                ),
                [],
            )
        if after:
            out[hit.hash] = after if "?" in after[0].text else after[:1]
    return out


def _clip_to(item: Item, query: str, budget: int, session: SessionState) -> Item:
    """The part of a long archived item around the query's words, within budget."""
    words = {w.lower() for w in query.split() if len(w) > 3}
    lines = item.text.splitlines()
    best = max(
        range(len(lines)), key=lambda i: sum(w in lines[i].lower() for w in words), default=0
    )
    out: list[str] = []
    lo = hi = best
    while True:
        candidate = "\n".join(lines[lo : hi + 1])
        if session.counter.count(candidate) > budget:
            break
        out = [candidate]
        if lo == 0 and hi == len(lines) - 1:
            break
        lo, hi = max(0, lo - 1), min(len(lines) - 1, hi + 1)
    text = out[0] if out else item.text[: budget * 3]
    while text and session.counter.count(text) > budget:  # never over the budget
        text = text[: int(len(text) * 0.8)]
    return replace(item, text=text, tokens=session.counter.count(text), _hash=None)
