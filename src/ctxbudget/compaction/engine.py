"""The compaction pipeline: cheapest and safest steps first, stop once the target is met.

1. clear old tool results (a stub keeps tool, target, size, first line);
2. file reads → path and line range; search results → query, hit count, top hits;
3. exact and near duplicates, and failed attempts a later success superseded → stubs;
4. sub-agent reports → metadata (title, short summary, key findings, path);
5. summarize the middle (everything but the system prompt, the first M and last N
   exchanges, the latest todo list and pinned items) into one structured summary, or
   only its oldest part when that is all the target needs;
6. check the fact ledger taken before step 1; put missing facts back as a ledger
   section, or refuse (``on_missing_facts="rollback"``).

Once under the target, the newest items steps 1–4 shortened that still fit come back
(``give_back``): the context ends near the target, not far under it.

Steps 1–4 are in ``steps``, step 5 in ``middle``, the context they work on in ``work``;
this module protects, checks the facts and chooses. ``compact`` is a pure function:
items in, ``CompactionResult`` out. It never splits a tool call from its result: steps
1–4 only shorten texts, and step 5 removes whole messages between a head and a tail
whose boundaries respect pairs. Token figures are in the units of the ``count``
function given (the session's local counter).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from ..collector import Paused
from ..errors import CompactionError
from ..model import Item, Kind, Layer, Role
from .fact_check import FactCheck
from .facts import extract_facts, ledger_section
from .middle import summarize_middle
from .steps import (
    clear_results,
    drop_duplicates,
    give_back,
    reports_to_metadata,
    shorten_call_inputs,
)
from .structure import always_kept, exchanges_kept
from .types import (
    MUST_KEEP,
    Action,
    CompactionPolicy,
    CompactionResult,
    Fact,
    FactKind,
    FactReport,
    Summarizer,
)
from .work import Work


@dataclasses.dataclass(slots=True)
class _Pass:
    """One pass of steps 1–5 under one protection: the result, and the state it had
    before step 5 (steps 1–4 do the same whatever lower target comes after them: a pass
    aiming lower summarizes again from there)."""

    work: Work
    summary: Item | None
    protection: tuple[int, int]
    keep: set[int]
    before_summary: Work | None
    # the items when steps 1–4 were done: the positions their actions name
    stepped: list[Item]
    # the summary was given its least room: a pass aiming lower would make the same
    least: bool = False


def _run_steps(
    start: Work,
    policy: CompactionPolicy,
    target: int,
    facts: Sequence[Fact],
    summarizer: Summarizer | None,
    keep: set[int],
) -> _Pass:
    """Steps 1–5 on a copy of ``start``, each only while over ``target``; ``keep``:
    the items no step may touch (``Compactor.kept``)."""
    protection = (policy.keep_first, policy.keep_last)
    work = start.copy()
    if work.total <= target:
        return _Pass(work, None, protection, set(), None, [])
    clear_results(
        work,
        keep,
        policy,
        target,
        {Kind.TOOL_RESULT, Kind.IMAGE, Kind.UNKNOWN},
        "clear_tool_results",
        "clear old tool results (stub: tool, target, size, first line)",
    )
    if work.total > target:
        shorten_call_inputs(work, keep, policy, target)
    if work.total > target:
        clear_results(
            work,
            keep,
            policy,
            target,
            {Kind.FILE_READ, Kind.SEARCH_RESULT},
            "reads_and_searches",
            "file reads → path and line range; searches → query, hits, top hits",
        )
    if work.total > target:
        drop_duplicates(work, keep, target)
    if work.total > target:
        reports_to_metadata(work, keep, target)
    if work.total <= target:
        return _Pass(work, None, protection, keep, None, list(work.items))
    before_summary = work.snapshot()
    summary, least = summarize_middle(work, keep, target, facts, summarizer)
    return _Pass(work, summary, protection, keep, before_summary, before_summary.items, least)


def _summarize_again(
    done: _Pass, target: int, facts: Sequence[Fact], summarizer: Summarizer | None
) -> _Pass:
    """``done`` with step 5 run again for a lower ``target`` (steps 1–4 unchanged)."""
    assert done.before_summary is not None
    work = done.before_summary.snapshot()
    sized = done.summary.tokens if done.summary is not None else None
    summary, least = summarize_middle(work, done.keep, target, facts, summarizer, sized)
    return _Pass(
        work, summary, done.protection, done.keep, done.before_summary, done.stepped, least
    )


def _validate(
    work: Work,
    summary: Item | None,
    facts: Sequence[Fact],
    policy: CompactionPolicy,
    count: Callable[[str], int],
    target: int,
    checks: dict[str, FactCheck],
    original: Sequence[Item],
) -> tuple[Item | None, FactReport]:
    """Step 6: check the fact ledger; put missing facts back, or refuse.

    ``checks`` keeps the check of the text around the summary, which the attempts that
    aim lower share (only the summary changes between them). ``original``: the items
    the facts were found in (``Fact.item``)."""

    fixed = "\n".join("" if it is summary else it.text for it in work.items)
    if fixed not in checks:
        now = {id(it) for it in work.items}
        whole = {i for i, it in enumerate(original) if id(it) in now}
        checks[fixed] = FactCheck(facts, fixed, whole)
    first = checks[fixed]
    report = first.report(summary.text if summary is not None else "")
    if not report.missing:
        return summary, report
    must = [f for f in report.missing if f.kind in MUST_KEEP]
    optional = [f for f in report.missing if f.kind not in MUST_KEEP]
    if policy.on_missing_facts == "rollback" and must:
        raise CompactionError(
            f"compaction would lose {len(must)} fact(s) "
            f"(e.g. {must[0].kind} {must[0].key[:60]!r}): rolled back"
        )
    # newest requests first: the latest asks matter most
    optional.sort(key=lambda f: (f.kind != FactKind.REQUEST, -f.item))
    ledger = ledger_section(must)
    room = target - work.total - (count(ledger) if ledger else 0)
    if optional and room > 20:
        extra = ledger_section(optional, max_chars=room * 3)
        if extra:
            body = extra.split("\n", 1)[1] if "\n" in extra else ""
            ledger = (ledger + "\n" + body) if ledger else extra
    if not ledger:
        return summary, report
    restored_now = list(report.missing)  # must and optional: every missing fact
    action = Action(step="fact_ledger", description="put back facts the summary missed")
    if summary is not None:
        index = next(i for i, it in enumerate(work.items) if it is summary)
        text = summary.text + "\n\n" + ledger
        tokens = count(text)
        action.tokens_before = 0
        action.tokens_after = tokens - (summary.tokens or 0)
        summary = dataclasses.replace(summary, text=text, tokens=tokens, _hash=None)
        work.set_item(index, summary, tokens)
    else:
        position = next(
            (i for i, it in enumerate(work.items) if it.role is not Role.SYSTEM),
            len(work.items),
        )
        anchor = work.items[position] if position < len(work.items) else work.items[-1]
        summary = Item(
            role=Role.USER,
            kind=Kind.SUMMARY,
            text=ledger,
            tokens=count(ledger),
            layer=Layer.METADATA,
            message_index=anchor.message_index,
        )
        work.insert_item(position, summary, summary.tokens or 0)
        action.tokens_after = summary.tokens or 0
    # The same text around it (a ledger of its own sits between two of its items, as
    # the summary does; checked again, the cache key changed by that item's newline and
    # a 100k-item check was built twice): look for what was missed in what was added.
    report = first.report(summary.text, since=report)
    still_missing = {id(f) for f in report.missing}  # the same Fact objects: by identity
    report.restored = [f for f in restored_now if id(f) not in still_missing]
    action.description = f"put back {len(report.restored)} fact(s) the summary missed"
    work.actions.append(action)
    return summary, report


def compact(
    items: Sequence[Item],
    *,
    count: Callable[[str], int],
    target_tokens: int,
    policy: CompactionPolicy | None = None,
    summarizer: Summarizer | None = None,
    protect: Callable[[Item], bool] | None = None,
    item_cost: int = 0,
) -> CompactionResult:
    """Compact ``items`` towards ``target_tokens``; pure: returns the result to apply.

    ``protect`` marks more items that no step may touch (e.g. every item outside the
    budget component being cleaned up). ``item_cost`` is what each item costs beyond
    its text, in ``count``'s units (the provider's framing of a block): counted into
    every total, the target included.
    """
    compactor = Compactor(
        items,
        count=count,
        policy=policy,
        summarizer=summarizer,
        protect=protect,
        item_cost=item_cost,
    )
    return compactor.compact(target_tokens)


class Compactor:
    """``compact`` over one list of items, for a caller that asks more than once: the
    items are counted, their facts extracted and their messages, calls and protected
    sets found once, and shared by every target asked (``compact``) and by ``floor``.
    Pure, as ``compact`` is: the items given are never changed."""

    def __init__(
        self,
        items: Sequence[Item],
        *,
        count: Callable[[str], int],
        policy: CompactionPolicy | None = None,
        summarizer: Summarizer | None = None,
        protect: Callable[[Item], bool] | None = None,
        item_cost: int = 0,
    ) -> None:
        if not items:
            raise CompactionError("nothing to compact: the session is empty")
        self.policy = policy or CompactionPolicy()
        self.summarizer = summarizer
        self.count = count
        self.item_cost = item_cost
        self.original = list(items)
        # counted once: every pass starts from a copy
        self.start = Work(self.original, count, item_cost)
        self._protect = protect
        self._facts: list[Fact] | None = None
        self._always: set[int] | None = None
        self._kept: dict[tuple[int, int], set[int]] = {}
        # the check of the text around the summary, by that text: attempts that aim
        # lower share it (only the summary changes between them)
        self._checks: dict[str, FactCheck] = {}

    @property
    def facts(self) -> list[Fact]:
        """The fact ledger of the items, taken before any step."""
        if self._facts is None:
            self._facts = extract_facts(self.original)
        return self._facts

    def kept(self, keep_first: int, keep_last: int) -> set[int]:
        """What no step may touch when the first ``keep_first`` and last ``keep_last``
        exchanges are protected: those, what every protection keeps (``always_kept``)
        and what ``protect`` marks."""
        key = (keep_first, keep_last)
        if key not in self._kept:
            start = self.start
            if self._always is None:
                self._always = always_kept(start.items, start.calls)
                if self._protect is not None:
                    protect = self._protect
                    self._always.update(i for i, item in enumerate(start.items) if protect(item))
            self._kept[key] = self._always | exchanges_kept(
                start.items, start.messages, keep_first, keep_last, start.calls
            )
        return self._kept[key]

    def floor(self, keep_first: int, keep_last: int) -> tuple[int, int]:
        """Tokens (without ``item_cost``) and items no step may remove under that
        protection: what any target must leave."""
        keep = self.kept(keep_first, keep_last)
        tokens = self.start.tokens
        return sum(tokens[i] for i in keep), len(keep)

    def compact(self, target_tokens: int) -> CompactionResult:
        """The compaction towards ``target_tokens`` (see ``compact``)."""
        # Millions of objects (stubs, word sets, facts) and no cycles among them: the
        # cyclic collector walking them again and again was a twentieth of a 100k-item plan.
        with Paused():
            return self._compact(target_tokens)

    def _compact(self, target_tokens: int) -> CompactionResult:
        policy, summarizer, count, item_cost = (
            self.policy,
            self.summarizer,
            self.count,
            self.item_cost,
        )
        original, start = self.original, self.start
        before = start.total
        facts = self.facts
        notes: list[str] = []
        if before <= target_tokens:
            notes.append(
                f"already under the target ({before:,} ≤ {target_tokens:,} tokens): nothing to do"
            )
        # Protection first as the policy says. When that misses the target (and the policy
        # lets the kept exchanges shrink), protect less only as far as needed: if the last
        # exchange alone reaches it, keep as many of the last ones as still do (the first
        # exchange goes); a target nothing reaches keeps the protection that came closer
        # (the least, unseen, when the full one's own items are over it). Each pass
        # starts from the original items. When the facts the ledger puts back overshoot the
        # target, the summary gets less room and runs again (the extractive one only: an
        # LLM summary is paid for).
        passes = [(policy.keep_first, policy.keep_last)]
        if policy.shrink_kept and (policy.keep_last > 1 or policy.keep_first):
            passes.append((0, min(1, policy.keep_last)))
        aim = target_tokens

        def attempt_with(keep: tuple[int, int], paid: bool = False) -> _Pass:
            """A pass under ``keep``; the summary a paid one only with ``paid`` (the
            protection is chosen with the extractive summary, free, and paid for once)."""
            pass_policy = dataclasses.replace(policy, keep_first=keep[0], keep_last=keep[1])
            pay = summarizer if paid else None
            return _run_steps(start, pass_policy, aim, facts, pay, self.kept(*keep))

        def floor(keep: tuple[int, int]) -> int:
            """What a pass keeping ``keep`` exchanges cannot go below: its protected items."""
            tokens, n = self.floor(*keep)
            return tokens + item_cost * n

        def most_that_fit(least: _Pass) -> _Pass:
            for n in range(policy.keep_last - 1, 1, -1):  # the most that still fit
                if floor((0, n)) > aim:
                    continue  # its protected items alone are over: it cannot fit
                more = attempt_with((0, n))
                if more.work.total <= aim:
                    return more
            return least

        def choose() -> _Pass:
            if len(passes) > 1 and floor(passes[0]) > aim:
                # the full protection cannot reach the aim: try the least first
                least = attempt_with(passes[1])
                if least.work.total <= aim:
                    return most_that_fit(least)
                # Neither reaches it: the least comes closer, as protecting more keeps
                # more whole (so on all 47 such plans of the shared sessions, at
                # targets from 1/8 to 1/200): a pass under the full protection would
                # only be thrown away (a second of a 100k-item plan).
                return least
            first = attempt_with(passes[0])
            if first.work.total > aim and len(passes) > 1:
                least = attempt_with(passes[1])
                if least.work.total <= aim:
                    return most_that_fit(least)
                if least.work.total < first.work.total:  # closer, and the next attempt aims lower
                    return least
            return first

        done: _Pass | None = None
        for attempt in range(3 if summarizer is None else 1):
            # the protection chosen first stays for the attempts that aim lower, which only
            # summarize again (steps 1–4 do the same for any lower aim)
            if done is None:
                done = choose()
                if summarizer is not None and done.summary is not None:
                    done = attempt_with(done.protection, paid=True)
            elif done.before_summary is not None:
                if done.least:
                    break  # its least room already: aiming lower makes the same summary
                again = _summarize_again(done, aim, facts, summarizer)
                if (
                    again.summary is not None
                    and done.summary is not None
                    and again.summary.text == done.summary.text
                ):
                    break  # the summary cannot shrink (it is all facts that must stay)
                done = again
            else:
                done = attempt_with(done.protection)
            work = done.work
            summarized = work.total  # before the ledger: the summary as it came out
            summary, report = _validate(
                work, done.summary, facts, policy, count, aim, self._checks, original
            )
            overshoot = work.total - target_tokens
            if overshoot <= 0 or summary is None or attempt == 2 or before <= target_tokens:
                break
            # lower than the summary that came out, which may have been under its aim: a
            # summary already within the next aim would come out the same
            aim = max(1, min(aim, summarized) - overshoot - max(2, overshoot // 10))
        if done is not None and before > target_tokens:
            # what steps 1–4 shortened and the target still has room for, newest first
            # (after the ledger, which may have taken some of that room)
            give_back(work, done.stepped, start, target_tokens)
        keep = done.protection if done is not None else None
        keep_first, keep_last = keep or passes[0]
        if (keep_first, keep_last) != passes[0]:
            asked_first, asked_last = passes[0]
            kept = [
                f"the last {keep_last} exchange(s) verbatim instead of {asked_last}"
                if keep_last < asked_last
                else f"the last {keep_last} exchange(s) verbatim"
            ]
            if keep_first < asked_first:
                kept.append("not the first")
            notes.append(f"to reach the target, kept {' and '.join(kept)} (--keep-last)")
        if work.total > target_tokens and before > target_tokens:
            notes.append(
                f"target not reached ({work.total:,} > {target_tokens:,} tokens): what is "
                "left is protected (system prompt, latest request, todo list, pinned "
                "items) or facts that must stay"
            )

        kept_ids = {id(i) for i in work.items}
        removed = [i for i in original if id(i) not in kept_ids]
        return CompactionResult(
            items=work.items,
            removed=removed,
            actions=work.actions,
            tokens_before=before,
            tokens_after=work.total,
            target_tokens=target_tokens,
            facts=report,
            summary=summary.text if summary is not None else "",
            notes=notes,
            items_before=len(original),
        )
