"""The cyclic collector around bulk work (``ctxbudget.collector``): a ctxbudget process
that runs one command freezes what each read or plan leaves alive (the collector then
never walks it again) and collects less often; a program that calls ``main`` or the
library keeps its collector as it was, and so does the MCP server, which runs on."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from ctxbudget import Tracker
from ctxbudget.cli.app import main
from ctxbudget.collector import YOUNG_COLLECTION_EVERY, Paused
from ctxbudget.compaction import CompactionPolicy

FIXTURE = Path(__file__).parent / "fixtures" / "claude_code_small.jsonl"


def test_a_command_run_in_process_freezes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    before, threshold = gc.get_freeze_count(), gc.get_threshold()
    assert main(["tokens", str(FIXTURE), "--store", "memory://"]) in (0, 1, 3)
    assert gc.get_freeze_count() == before
    assert gc.get_threshold() == threshold
    assert gc.isenabled()
    assert "tokens" in capsys.readouterr().out.lower()


def test_the_library_leaves_the_collector_as_it_was() -> None:
    before = gc.get_freeze_count()
    session = Tracker(store="memory://").load(FIXTURE)
    plan = session.plan_compaction(CompactionPolicy(target_tokens=50))
    assert plan.result.actions  # it compacted: the pause ran
    assert gc.get_freeze_count() == before
    assert gc.isenabled()
    gc.disable()
    try:
        with Paused():
            pass
        assert not gc.isenabled()  # off before the pause: off after it
    finally:
        gc.enable()


def _run(command: list[str]) -> str:
    code = (
        "import gc, sys\n"
        "from ctxbudget.cli.app import main\n"
        "before = gc.get_freeze_count()\n"
        f"main({command!r}, own_process=True)\n"
        "print('FROZE', gc.get_freeze_count() > before, file=sys.stderr)\n"
        "print('YOUNG', gc.get_threshold()[0], file=sys.stderr)\n"
        "print('ENABLED', gc.isenabled(), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    return done.stderr


def test_its_own_process_freezes_what_it_read() -> None:
    err = _run(["tokens", str(FIXTURE), "--store", "memory://"])
    assert "FROZE True" in err, err[-500:]
    assert f"YOUNG {YOUNG_COLLECTION_EVERY}" in err, err[-500:]
    assert "ENABLED True" in err, err[-500:]


def test_a_compaction_in_its_own_process_freezes_what_it_planned() -> None:
    err = _run(["compact", str(FIXTURE), "--dry-run", "--target", "50", "--store", "memory://"])
    assert "FROZE True" in err and "ENABLED True" in err, err[-500:]


def test_the_mcp_server_keeps_the_interpreters_collector() -> None:
    err = _run(["mcp", "--store", "memory://"])  # stdin at its end: the server stops
    assert "FROZE False" in err, err[-500:]
    assert f"YOUNG {gc.get_threshold()[0]}" in err, err[-500:]
