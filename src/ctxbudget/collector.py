"""The cyclic garbage collector around bulk work: reading, counting and compacting a
session build millions of objects (JSON records, items, stubs, word sets) that hold no
cycles, and a collection walks every one of them again.

``Paused`` turns the collector off for such work. What the work left alive is still
young after it: the first collection after it would walk it all once more (a quarter
of a second at 100k items). A process that runs one command and ends (``one_shot``)
freezes it instead: the collector then never walks it again. A program that calls the
library keeps its collector as it was, frozen nothing.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_COLLECTION_EVERY", "Paused", "one_shot"]

#: Container allocations between two young collections in a one-shot process (the
#: interpreter's default is 700): a command's work is millions of objects that live
#: until it ends, and collecting every 700 of them walked the survivors again and again.
YOUNG_COLLECTION_EVERY = 100_000

_freeze_after_pause = False


def one_shot() -> None:
    """This process runs one command and ends: collect less often, and freeze what
    each pause leaves alive (it lives until the end, and holds no cycles)."""
    global _freeze_after_pause
    _freeze_after_pause = True
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])


class Paused:
    """The collector off while the block runs; on again after, as it was."""

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if _freeze_after_pause:
            gc.freeze()
        if self._was_enabled:
            gc.enable()
