"""The context a compaction works on: its items, their tokens and the plan so far.

Shared by the steps (``steps``) and the pipeline (``engine``); pure, no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from ..model import Item, Layer
from ..sources.media import local_tokens
from .structure import Message, calls_by_pair, messages_of
from .types import Action

__all__ = ["Work"]

T = TypeVar("T")


class Work:
    """The context being compacted: items (copied on change), tokens, the plan so far.

    ``total`` is kept as a running sum: every step asks for it once per item it looks
    at, and summing all items each time made a plan quadratic in the session's length.
    It includes ``item_cost`` per item (a message block's framing, where the caller
    counts it). Change ``tokens`` only through the methods here, which keep ``total``
    true.
    """

    def __init__(
        self, items: Sequence[Item], count: Callable[[str], int], item_cost: int = 0
    ) -> None:
        self.items = list(items)
        self.count = count
        self.item_cost = item_cost
        self.tokens = [self._tokens_of(i) for i in self.items]
        self.total = sum(self.tokens) + item_cost * len(self.items)
        self.actions: list[Action] = []
        # The messages and the call behind each pair id depend on the items' roles,
        # kinds, message indexes and pair ids, which ``replace_text`` keeps: found
        # once, shared by every pass, forgotten when items are added or removed.
        self._messages: list[Message] | None = None
        self._calls: dict[str, int] | None = None
        # What a step made of an item (a stub, its count, its words), shared by every
        # pass: a second pass under less protection meets mostly the same items and
        # makes the same of them. Keyed by position, valid while the item there is the
        # same object (the entry holds it, so its identity cannot be reused).
        self._made: dict[tuple[str, int], tuple[Item, Any]] = {}
        # By position, the tokens of what ``replace_text`` replaced there and of each
        # text after (a stub, then a stub of it): what each step counted of it.
        self.shortened: dict[int, list[int]] = {}

    def copy(self) -> Work:
        """A fresh pass over the same items: the plan so far is not copied."""
        work = Work.__new__(Work)
        work.items, work.tokens = list(self.items), list(self.tokens)
        work.count, work.total, work.actions = self.count, self.total, []
        work.item_cost = self.item_cost
        work._messages, work._calls = self.messages, self.calls
        work._made = self._made
        work.shortened = {}
        return work

    def made(self, step: str, index: int, make: Callable[[Item], T]) -> T:
        """``make(item)`` for the item at ``index``, made once for every pass (``make``
        must depend on nothing but the item and the items it was given with)."""
        item = self.items[index]
        key = (step, index)
        known = self._made.get(key)
        if known is not None and known[0] is item:
            return cast(T, known[1])
        value = make(item)
        self._made[key] = (item, value)
        return value

    def snapshot(self) -> Work:
        """A copy that keeps the plan so far (the actions taken), to go on from here.
        The actions are copied too: going on may take items back out of them
        (``give_back``), which must not change this plan's."""
        work = self.copy()
        work.actions = [dataclasses.replace(a, items=list(a.items)) for a in self.actions]
        work.shortened = {i: list(tokens) for i, tokens in self.shortened.items()}
        return work

    @property
    def messages(self) -> list[Message]:
        if self._messages is None:
            self._messages = messages_of(self.items)
        return self._messages

    @property
    def calls(self) -> dict[str, int]:
        if self._calls is None:
            self._calls = calls_by_pair(self.items)
        return self._calls

    def _tokens_of(self, item: Item) -> int:
        # counted here, not written onto the caller's items: compact() changes nothing
        return item.tokens if item.tokens is not None else local_tokens(item, self.count)

    def replace_text(self, index: int, text: str, action: Action) -> bool:
        """Shorten one item's text; keeps it only when it saves tokens."""
        old = self.items[index]

        def shortened(item: Item) -> tuple[str, int, Item]:
            tokens = self.count(text)
            new = dataclasses.replace(
                item, text=text, tokens=tokens, _hash=None, layer=Layer.METADATA
            )
            new.id = None  # a new item: the original goes to the archive
            return text, tokens, new

        made = self.made("replace_text", index, shortened)
        if made[0] != text:  # another step's text for the same item
            made = shortened(old)
            self._made["replace_text", index] = (old, made)
        _, tokens, new = made
        if tokens >= self.tokens[index]:
            return False
        self.items[index] = new
        action.items.append(index)
        action.tokens_before += self.tokens[index]
        action.tokens_after += tokens
        self.shortened.setdefault(index, [self.tokens[index]]).append(tokens)
        self.total += tokens - self.tokens[index]
        self.tokens[index] = tokens
        return True

    def restore(self, index: int, item: Item, tokens: int) -> None:
        """``item``, with its ``tokens``, at ``index`` in place of one of the same
        message and pair (a stub and what it stood for): the messages and calls hold."""
        self.items[index] = item
        self.total += tokens - self.tokens[index]
        self.tokens[index] = tokens

    def set_item(self, index: int, item: Item, tokens: int) -> None:
        self.restore(index, item, tokens)
        self._messages = self._calls = None

    def insert_item(self, index: int, item: Item, tokens: int) -> None:
        self.items.insert(index, item)
        self.tokens.insert(index, tokens)
        self.total += tokens + self.item_cost
        self._messages = self._calls = None

    def replace_all(self, items: list[Item], tokens: list[int]) -> None:
        self.items, self.tokens = items, tokens
        self.total = sum(tokens) + self.item_cost * len(items)
        self._messages = self._calls = None
