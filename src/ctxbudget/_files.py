"""Writing a file whole or not at all: the one atomic write the shells and readers share.

A temporary file beside the target (same directory, so the rename stays on one file
system), flushed to disk, given its mode, then renamed over the target: a reader sees
the old file or the new one, never half of one, and a crash leaves the old file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(
    path: Path, data: bytes, mode: int | None = None, *, parents: bool = False
) -> None:
    """Replace ``path`` with ``data`` at once; ``mode``: the new file's permissions
    (``None``: what ``mkstemp`` gives, 0600); ``parents``: make the missing
    directories first. Raises ``OSError``; no temporary file is left behind."""
    if parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
