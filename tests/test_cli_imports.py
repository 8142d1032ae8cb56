"""``ctxbudget --help`` lists every command without importing any command's module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ctxbudget.cli import app

SRC = Path(__file__).resolve().parent.parent / "src"
HEAVY = (
    "ctxbudget.budgeting",
    "ctxbudget.demo",
    "ctxbudget.store",
    "ctxbudget.tracker",
    "ctxbudget.session",
    "ctxbudget.compaction",
)


def _modules_after(code: str) -> tuple[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTXBUDGET_")}
    env["PYTHONPATH"] = str(SRC)
    script = (
        "import io, contextlib, sys\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    {code}\n"
        "print(out.getvalue())\n"
        "print(sorted(m for m in sys.modules if m.startswith('ctxbudget')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, env=env, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    *help_lines, modules = proc.stdout.decode().rstrip("\n").splitlines()
    return "\n".join(help_lines), eval(modules)  # a list literal printed above


def test_help_imports_no_command_module() -> None:
    for code in (
        "from ctxbudget.cli import main; main(['--help'])",
        "import sys; sys.argv = ['ctxbudget', '--help']; from ctxbudget._entry import main; main()",
    ):
        out, modules = _modules_after(code)
        assert "statusline" in out and "tokens" in out and "demo" in out
        assert [m for m in modules if m.startswith(HEAVY)] == []
        assert [m for m in modules if m.startswith("ctxbudget.cli.")] == [
            "ctxbudget.cli.app",
            "ctxbudget.cli.common",
        ]


def test_a_command_imports_only_its_own_module() -> None:
    out, modules = _modules_after("from ctxbudget.cli import main; main(['sessions', '--help'])")
    assert "--limit" in out
    commands = {m for m in modules if m.startswith("ctxbudget.cli.")} - {
        "ctxbudget.cli.app",
        "ctxbudget.cli.common",
    }
    assert commands == {"ctxbudget.cli.sessions"}


def test_the_table_lists_what_the_modules_register() -> None:
    full = app.build_parser()
    (sub,) = [a for a in full._actions if a.dest == "command"]
    registered = [(c.dest, c.help) for c in sub._choices_actions]  # type: ignore[attr-defined]
    assert registered == [command for group in app.GROUPS for command in group[3]]
    assert app.build_parser(()).format_help() == full.format_help()


def test_command_of() -> None:
    assert app.command_of(["--store", "memory://", "tokens", "x"]) == "tokens"
    assert app.command_of(["--store=memory://", "gate"]) == "gate"
    assert app.command_of(["--help"]) is None
    assert app.command_of(["--", "demo"]) == "demo"
