"""The ctxbudget process freezes what a command read (the cyclic collector then skips
it) and collects less often; a program that calls ``main`` keeps its collector as it
was."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from ctxbudget.cli.app import main
from ctxbudget.cli.common import YOUNG_COLLECTION_EVERY

FIXTURE = Path(__file__).parent / "fixtures" / "claude_code_small.jsonl"


def test_a_command_run_in_process_freezes_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    before, threshold = gc.get_freeze_count(), gc.get_threshold()
    assert main(["tokens", str(FIXTURE), "--store", "memory://"]) in (0, 1, 3)
    assert gc.get_freeze_count() == before
    assert gc.get_threshold() == threshold
    assert "tokens" in capsys.readouterr().out.lower()


def test_its_own_process_freezes_what_it_read() -> None:
    code = (
        "import gc, sys\n"
        "from ctxbudget.cli.app import main\n"
        "before = gc.get_freeze_count()\n"
        f"main(['tokens', {str(FIXTURE)!r}, '--store', 'memory://'], own_process=True)\n"
        "print('FROZE', gc.get_freeze_count() > before, file=sys.stderr)\n"
        "print('YOUNG', gc.get_threshold()[0], file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "FROZE True" in done.stderr, done.stderr[-500:]
    assert f"YOUNG {YOUNG_COLLECTION_EVERY}" in done.stderr, done.stderr[-500:]
