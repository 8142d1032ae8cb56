"""The ``sqlite://`` store's file: where a URL puts it, who may read it, its journal.

The store holds conversations, so only its owner reads it: its directory is made 0700
and the file (with SQLite's -wal, -shm and -journal files) 0600, and an existing one
is tightened. WAL is switched on with retries, as SQLite applies no busy timeout to it.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from contextlib import suppress
from pathlib import Path

from ..errors import ConfigurationError

__all__ = ["database_path", "make_private_dirs", "make_private_file", "set_wal"]


def database_path(url: str) -> str:
    """The file a ``sqlite:`` URL names, absolute, or ``:memory:``."""
    if not url.startswith("sqlite:"):
        raise ConfigurationError(f"not a sqlite URL: {url!r}")
    rest = url[len("sqlite:") :]
    if rest in ("", "//", "//:memory:", "///:memory:"):
        return ":memory:"
    if not rest.startswith("///"):
        raise ConfigurationError(
            f"cannot read the store URL {url!r}: use sqlite:///relative/path.db, "
            "sqlite:////absolute/path.db or sqlite://:memory:"
        )
    return str(Path(rest[3:]).expanduser().absolute())


# -- file modes: the store holds conversations; only its owner reads it ----------------


def _tighten(path: Path, keep: int) -> None:
    """Drop the mode bits outside ``keep`` from a path of ours; never fails."""
    if os.name == "nt":
        return
    with suppress(OSError):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & ~keep and os.stat(path).st_uid == os.getuid():
            os.chmod(path, mode & keep)


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents 0700; tighten it to 0700 when it
    is ctxbudget's own (named ``ctxbudget``, as the default data directory is). A
    directory the user chose and that exists keeps its mode."""
    missing: list[Path] = []
    while not directory.exists():
        missing.append(directory)
        if directory.parent == directory:
            break
        directory = directory.parent
    for created in reversed(missing):
        with suppress(FileExistsError):  # another process made it meanwhile
            created.mkdir(mode=0o700)
    own = missing[0] if missing else directory
    if own.name == "ctxbudget":
        _tighten(own, 0o700)


def make_private_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does (its -wal and -shm files then
    get the same mode), and take group and other access from an existing one."""
    if not path.exists():
        with suppress(OSError):  # SQLite then says what is wrong, in its own words
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}-journal")):
        if name.exists():
            _tighten(name, 0o600)


def set_wal(conn: sqlite3.Connection, busy_timeout_ms: int) -> str:
    """Switch to WAL, retrying while another process holds the lock.

    Changing the journal mode of a new file needs an exclusive lock, and SQLite does not
    apply the busy timeout to it: processes opening a fresh store at once would see
    "database is locked" at once without this loop.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    delay = 0.005
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
