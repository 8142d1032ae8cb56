"""Where ctxbudget keeps what it remembers between two runs of a Claude Code status
line or hook: the cache directory, and private JSON files in it.

``$CTXBUDGET_CACHE_DIR``, else the user's cache directory. Every file is written
atomically and private to the user (0600 in a 0700 directory): the status line's state,
the hooks' state and fact ledgers, the windows Claude Code reported.
"""

from __future__ import annotations

import json
import os
import stat
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs the status line milliseconds at run time
    from typing import Any

__all__ = ["CACHE_ENV", "cache_root", "load_json", "open_regular", "save_private_json"]

CACHE_ENV = "CTXBUDGET_CACHE_DIR"


def cache_root() -> str:
    """``$CTXBUDGET_CACHE_DIR``, else platformdirs' ``user_cache_dir("ctxbudget")``.

    On Linux that is ``$XDG_CACHE_HOME/ctxbudget`` or ``~/.cache/ctxbudget``, computed
    here because importing platformdirs costs more than the whole warm call.
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return override
    if sys.platform.startswith("linux"):
        base = os.environ.get("XDG_CACHE_HOME", "").strip() or os.path.expanduser("~/.cache")
        return os.path.join(base, "ctxbudget")
    import platformdirs

    return platformdirs.user_cache_dir("ctxbudget")


def load_json(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def save_private_json(path: str, data: dict[str, Any]) -> bool:
    """Write ``data`` as JSON atomically (temporary file, then rename), private to the
    user (0600 in a 0700 directory); False when it cannot. The status line's cache and
    the hooks' state files are written with it."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            # 0700: the cache root and its statusline directory are the user's alone
            os.makedirs(os.path.dirname(directory), mode=0o700, exist_ok=True)
            os.makedirs(directory, mode=0o700, exist_ok=True)
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        try:
            payload = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800"): kept escaped
            payload = json.dumps(data, separators=(",", ":")).encode("ascii")
        # 0600, whatever the umask allows: the rename keeps it, so older 0644 files
        # are replaced by private ones on their next write.
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
            f.write(payload)
        os.replace(tmp, path)
        return True
    except OSError:
        import contextlib

        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return False


def open_regular(path: str) -> tuple[Any, os.stat_result]:
    """``path`` opened for reading, checked on the open descriptor to be a regular file
    (non-blocking open: a FIFO swapped in after the stat cannot hang the call)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        return os.fdopen(fd, "rb"), st
    except BaseException:
        os.close(fd)
        raise
