"""Where the benchmarks find ../shared/data, and a clear skip when it is absent."""

from __future__ import annotations

import sys
from pathlib import Path

from ctxbudget.model import Item

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"


def data_dir(arg: str | None, sub: str) -> Path:
    root = Path(arg) if arg else DEFAULT_DATA
    path = root / sub
    if not path.is_dir():
        print(f"skipped: {path} not found (pass --data DIR pointing at shared/data)")
        sys.exit(0)
    return path


def truncate(items: list[Item], budget: int) -> list[Item]:
    """The keep-last baseline: the newest items whose tokens fit in ``budget``."""
    spent = 0
    start = len(items)
    for i in range(len(items) - 1, -1, -1):
        tokens = items[i].tokens or 0
        if spent + tokens > budget:
            break
        spent += tokens
        start = i
    return items[start:]
