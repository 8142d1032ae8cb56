"""The CLI freezes what a command read (the cyclic collector then skips it) and
leaves a process's collector as it found it: ``main`` can run inside another program."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from ctxbudget.cli.app import main

FIXTURE = Path(__file__).parent / "fixtures" / "claude_code_small.jsonl"


def test_a_command_run_in_process_leaves_nothing_frozen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert gc.get_freeze_count() == 0
    assert main(["tokens", str(FIXTURE), "--store", "memory://"]) in (0, 1, 3)
    assert gc.get_freeze_count() == 0
    assert "tokens" in capsys.readouterr().out.lower()


def test_a_host_that_froze_its_heap_keeps_it_frozen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        main(["tokens", str(FIXTURE), "--store", "memory://"])
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    capsys.readouterr()
