"""The shared atomic write: the whole new file or the old one, never a temporary left."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from ctxbudget._files import write_atomic


def test_write_atomic_replaces_the_file_with_the_mode_asked(tmp_path: Path) -> None:
    target = tmp_path / "settings.json"
    target.write_bytes(b"old")
    write_atomic(target, b'{"new": true}\n', 0o640)
    assert target.read_bytes() == b'{"new": true}\n'
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["settings.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "session.json"
    target.write_bytes(b"what was stored")

    def disk_full(fd: int) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, b"half a file", 0o644)
    assert target.read_bytes() == b"what was stored"
    assert [p.name for p in tmp_path.iterdir()] == ["session.json"]


def test_parents_makes_the_missing_directories_and_without_it_none_are_made(
    tmp_path: Path,
) -> None:
    target = tmp_path / "config" / "ctxbudget" / "executable"
    with pytest.raises(FileNotFoundError):
        write_atomic(target, b"ctxbudget\n", 0o644)
    assert not target.parent.exists()
    write_atomic(target, b"ctxbudget\n", 0o644, parents=True)
    assert target.read_bytes() == b"ctxbudget\n"
