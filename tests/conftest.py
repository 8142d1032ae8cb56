from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own default store and an empty ~/.claude."""
    monkeypatch.setenv("CTXBUDGET_STORE", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-home"))
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the ctxbudget command in-process: exit code, stdout, stderr."""
    from ctxbudget.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
