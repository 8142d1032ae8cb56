"""Step 5 of the pipeline: the middle of the context summarized (``engine`` runs it).

The middle is everything between the kept head and tail that no protection holds,
whole messages, never a call without its result. When a summary of all of it would say
what it has in far less than its room, only its oldest part is summarized, as much as
the target needs, and the newer part stays as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model import Item, Kind, Layer, Role
from .structure import head_end
from .summarize import summarize_extractive
from .types import Action, Fact, Summarizer
from .work import Work

__all__ = ["SUMMARY_LEAST", "summarize_middle"]

#: The fewest tokens a summary is given, however far over the target the rest is.
SUMMARY_LEAST = 120
#: Tokens the oldest part of the middle frees beyond the target's need: room for a
#: summary of it a little over that of the whole (each is made to fit its own room).
_PART_MARGIN = 16


def summarize_middle(
    work: Work,
    keep: set[int],
    target: int,
    facts: Sequence[Fact],
    summarizer: Summarizer | None,
    sized: int | None = None,
) -> tuple[Item | None, bool]:
    """Step 5 on ``work``: the summary made (None: none), and whether it was given its
    least room (``SUMMARY_LEAST``), so that a lower target would make the same.
    ``sized``: the tokens of a summary of this middle made for a higher target, which
    sizes the oldest part without a summary of the whole middle first."""
    messages = work.messages
    head = head_end(work.items, messages, 0)
    # the middle: whole messages, none protected, between the kept head and tail
    middle_msgs = [m for m in messages[head:] if not any(i in keep for i in m.items)]
    if not middle_msgs:
        return None, False
    first = middle_msgs[0].items[0]
    last = middle_msgs[-1].items[-1]
    span = [i for m in messages for i in m.items if first <= i <= last and i not in keep]
    span_set = set(span)
    # never split a pair across the cut: results whose call stays, and calls whose result
    # stays, stay too
    calls = work.calls
    for i in list(span):
        item = work.items[i]
        if item.role is Role.TOOL:
            call = calls.get(item.pair_id or "")
            if call is not None and call not in span_set:
                span_set.discard(i)
    results = {
        item.pair_id
        for j, item in enumerate(work.items)
        if item.role is Role.TOOL and j not in span_set
    }
    span_set = {
        i
        for i in span_set
        if not (work.items[i].kind is Kind.TOOL_CALL and work.items[i].pair_id in results)
    }
    if not span_set:
        return None, False
    span = sorted(span_set)

    def room(chosen: list[int]) -> int:
        """The tokens the rest leaves a summary of ``chosen``."""
        chosen_set = set(chosen)
        kept_tokens = sum(t for i, t in enumerate(work.tokens) if i not in chosen_set)
        kept_tokens += work.item_cost * (len(work.items) - len(chosen) + 1)  # + the summary
        return max(SUMMARY_LEAST, target - kept_tokens - 8)

    def made(chosen: list[int], budget: int) -> str:
        chosen_set = set(chosen)
        middle = [work.items[i] for i in chosen]
        middle_facts = [f for f in facts if f.item in chosen_set]
        if summarizer is not None:
            return summarizer(middle, middle_facts, budget)
        return summarize_extractive(middle, middle_facts, budget, work.count, all_items=work.items)

    # A summary of the whole middle often says all it has in far less than its room, and
    # the context would end far under the target (a fifth asked, a fifteenth made). Then
    # only the oldest part of the middle is summarized, as much as reaching the target
    # needs, and the newer part stays as it is. The part is sized by the summary of the
    # whole middle (or ``sized``), which one of less of it does not outgrow. A paid
    # summary is made once, of the whole middle: sized by the extractive one, a part
    # would leave no room for the facts the ledger puts back, and there is no second try.
    budget = room(span)
    part: list[int] | None = None
    text = made(span, budget) if summarizer is not None or sized is None else None
    if summarizer is None:
        if text is not None:
            sized = work.count(text)
            # within a fiftieth of the target: close enough, the summary as it is
            if budget - sized <= max(_PART_MARGIN * 4, target // 50):
                sized = None
        if sized is not None:
            part = _oldest_part(work, span, work.total - target + _PART_MARGIN, sized)
        if part is not None:
            span, budget = part, room(part)
            text = made(span, budget)
        elif text is None:  # sized for a higher target, and it is all of the middle now
            text = made(span, budget)
    assert text is not None
    span_set = set(span)
    least = budget == SUMMARY_LEAST
    middle = [work.items[i] for i in span]
    summary = Item(
        role=Role.USER,
        kind=Kind.SUMMARY,
        text=text,
        layer=Layer.METADATA,
        message_index=middle[0].message_index,
        tokens=work.count(text),
    )
    which = "" if part is None else " (the oldest part of the middle: the rest stays as it is)"
    action = Action(
        step="summarize",
        description=f"summarize {len(middle)} middle items into one structured summary{which}",
        items=sorted(span_set),
        tokens_before=sum(work.tokens[i] for i in span_set),
        tokens_after=summary.tokens or 0,
    )
    replaced = action.tokens_before + work.item_cost * (len(span_set) - 1)
    if action.tokens_after >= replaced:
        return None, least  # a summary no smaller than what it replaces: the middle stays
    position = min(span_set)
    new_items, new_tokens = [], []
    for i, item in enumerate(work.items):
        if i == position:
            new_items.append(summary)
            new_tokens.append(summary.tokens or 0)
        if i not in span_set:
            new_items.append(item)
            new_tokens.append(work.tokens[i])
    work.replace_all(new_items, new_tokens)
    work.actions.append(action)
    return summary, least


def _oldest_part(work: Work, span: list[int], need: int, summary_tokens: int) -> list[int] | None:
    """The fewest oldest items of ``span`` (sorted positions) whose summary in
    ``summary_tokens`` frees ``need`` tokens, cut between messages and never between a
    call and its result; None when that is all of ``span``."""
    items, tokens, cost = work.items, work.tokens, work.item_cost
    freed = -summary_tokens - cost  # the summary is an item too
    open_calls: set[str] = set()
    for n, i in enumerate(span):
        item = items[i]
        freed += tokens[i] + cost
        if item.pair_id:
            if item.kind is Kind.TOOL_CALL:
                open_calls.add(item.pair_id)
            elif item.role is Role.TOOL:
                open_calls.discard(item.pair_id)
        if n + 1 == len(span):
            return None
        if (
            freed >= need
            and not open_calls
            and items[span[n + 1]].message_index != item.message_index
        ):
            return span[: n + 1]
    return None
