"""Where the benchmarks find ../shared/data, and a clear skip when it is absent."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"


def data_dir(arg: str | None, sub: str) -> Path:
    root = Path(arg) if arg else DEFAULT_DATA
    path = root / sub
    if not path.is_dir():
        print(f"skipped: {path} not found (pass --data DIR pointing at shared/data)")
        sys.exit(0)
    return path
