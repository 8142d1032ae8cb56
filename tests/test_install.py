"""``ctxbudget install claude-code`` / ``uninstall``: byte-for-byte edits of settings.json.

Every test works in a temporary directory with HOME and CLAUDE_CONFIG_DIR pointed
there: the real ~/.claude is never touched.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from ctxbudget.claude_code.install import (
    HOOKS,
    default_executable,
    marker_path,
    plan_install,
    settings_path,
)
from ctxbudget.claude_code.uninstall import plan_uninstall
from ctxbudget.cli import hooks as cli_hooks

# What install writes: the running ctxbudget by its absolute path.
EXE = shlex.quote(default_executable())
STATUSLINE = f"{EXE} statusline --color always"

# A user's settings with unrelated content: permissions, env, their own hooks.
USER_SETTINGS = """{
  "$schema": "https://json.schemastore.org/claude-code-settings.json",
  "model": "opus",
  "permissions": {
    "allow": ["Bash(npm run test:*)", "Read(~/.zshrc)"],
    "deny": ["Read(./.env)"]
  },
  "env": {"NODE_ENV": "development", "GREETING": "héllo ✓"},
  "hooks": {
    "PreToolUse": [
      {
        "matcher": "Bash",
        "hooks": [
          {
            "type": "command",
            "command": "~/.claude/hooks/check-bash.sh",
            "timeout": 30
          }
        ]
      }
    ],
    "Stop": [
      {
        "hooks": [{"type": "command", "command": "notify-send done"}]
      }
    ]
  },
  "includeCoAuthoredBy": false
}
"""

STYLES = {
    "two spaces": USER_SETTINGS,
    "four spaces": json.dumps(json.loads(USER_SETTINGS), indent=4, ensure_ascii=False),
    "tabs": json.dumps(json.loads(USER_SETTINGS), indent="\t", ensure_ascii=False) + "\n",
    "crlf": USER_SETTINGS.replace("\n", "\r\n"),
    "one line": json.dumps(json.loads(USER_SETTINGS), ensure_ascii=False),
    "compact": json.dumps(json.loads(USER_SETTINGS), separators=(",", ":")),
    "bom": "\ufeff" + USER_SETTINGS,
    "no hooks": '{\n  "model": "sonnet",\n  "cleanupPeriodDays": 30\n}',
    "empty hooks": '{\n  "hooks": {},\n  "model": "sonnet"\n}\n',
    "empty object": "{}",
    "empty object, newline": "{}\n",
    "empty file": "",
}


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-home"))
    return home


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli_hooks.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, text: str) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    path.write_bytes(data)
    return data


def only_insertions(before: bytes, after: bytes) -> list[bytes]:
    """The inserted runs, asserting nothing of ``before`` was changed or deleted."""
    matcher = difflib.SequenceMatcher(None, before, after, autojunk=False)
    inserted = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        assert op in ("equal", "insert"), (op, before[i1:i2], after[j1:j2])
        if op == "insert":
            inserted.append(after[j1:j2])
    return inserted


def without_ours(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings with ctxbudget's statusLine and hooks taken out again."""
    out = copy.deepcopy(settings)
    if "ctxbudget" in json.dumps(out.get("statusLine")):
        del out["statusLine"]
    for event in list(out.get("hooks", {})):
        out["hooks"][event] = [g for g in out["hooks"][event] if "ctxbudget" not in json.dumps(g)]
    return out


def parse(data: bytes) -> dict[str, Any]:
    text = data.decode("utf-8").removeprefix("\ufeff")
    return json.loads(text) if text.strip() else {}


def settings_file(tmp_path: Path) -> Path:
    return tmp_path / "claude-home" / "settings.json"


@pytest.mark.parametrize("style", list(STYLES))
def test_install_only_adds_and_uninstall_restores_the_bytes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, style: str
) -> None:
    path = settings_file(tmp_path)
    original = write(path, STYLES[style])
    code, out, err = run(capsys, "install", "claude-code")
    assert code == 0, err
    assert f"Installed ctxbudget in {path}" in out
    installed = path.read_bytes()
    only_insertions(original, installed)
    settings = parse(installed)
    exe = shlex.quote(default_executable())  # the running ctxbudget, by its absolute path
    statusline = {"type": "command", "command": f"{exe} statusline --color always"}
    assert settings["statusLine"] == statusline
    for event, matcher, name in HOOKS:
        ours = [g for g in settings["hooks"][event] if "ctxbudget" in json.dumps(g)]
        expected = {"hooks": [{"type": "command", "command": f"{exe} hook {name}"}]}
        assert ours == [{"matcher": matcher, **expected} if matcher else expected]
    kept = without_ours(settings)
    before = parse(original)
    for event in list(kept["hooks"]):  # lists install created are empty once ours are out
        if not kept["hooks"][event] and event not in before.get("hooks", {}):
            del kept["hooks"][event]
    if "hooks" not in before and not kept["hooks"]:
        del kept["hooks"]
    assert kept == before
    backups = list(path.parent.glob("settings.json.*.ctxbudget.bak"))
    assert [b.read_bytes() for b in backups] == [original]
    if b"\r\n" in original:
        assert installed.count(b"\n") == installed.count(b"\r\n")  # line endings kept

    code, out, err = run(capsys, "uninstall", "claude-code")
    assert code == 0, err
    assert "original bytes are back" in out
    assert path.read_bytes() == original
    assert not marker_path(path).exists()


def test_install_is_idempotent(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = settings_file(tmp_path)
    write(path, USER_SETTINGS)
    assert run(capsys, "install", "claude-code")[0] == 0
    once = path.read_bytes()
    code, out, _ = run(capsys, "install", "claude-code")
    assert code == 0
    assert "Nothing to change" in out and "Already installed: statusLine, PreToolUse" in out
    assert path.read_bytes() == once
    assert len(list(path.parent.glob("*.ctxbudget.bak"))) == 1
    assert once.count(b"ctxbudget hook pre-tool-use") == 1


def test_install_over_an_earlier_install(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The user took one hook out by hand; install puts it back; uninstall takes out
    everything, not just what the second install added."""
    path = settings_file(tmp_path)
    original = write(path, USER_SETTINGS)
    assert run(capsys, "install", "claude-code")[0] == 0
    settings = path.read_text(encoding="utf-8")
    start = settings.index('"PreCompact": [')
    end = settings.index("],", start) + len("],\n    ")
    assert "ctxbudget hook pre-compact" in settings[start:end]
    path.write_text(settings[:start] + settings[end:], encoding="utf-8")
    assert run(capsys, "install", "claude-code")[0] == 0
    assert path.read_bytes().count(b"ctxbudget hook pre-compact") == 1
    assert run(capsys, "uninstall", "claude-code")[0] == 0
    assert b"ctxbudget" not in path.read_bytes()
    assert parse(path.read_bytes()) == parse(original)


def test_our_hooks_are_recognised_by_their_command(tmp_path: Path) -> None:
    """A hook run through a full path, with options, is ours: not added twice."""
    path = settings_file(tmp_path)
    text = USER_SETTINGS.replace(
        '"command": "~/.claude/hooks/check-bash.sh"',
        '"command": "/opt/venv/bin/ctxbudget hook pre-tool-use --report-tokens 8000"',
    )
    write(path, text)
    change = plan_install(path)
    assert b"--report-tokens 8000" in change.after  # type: ignore[operator]
    assert change.after.count(b"hook pre-tool-use") == 1  # type: ignore[union-attr]


def test_dry_run_writes_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = settings_file(tmp_path)
    original = write(path, USER_SETTINGS)
    code, out, _ = run(capsys, "install", "claude-code", "--dry-run")
    assert code == 0
    assert f'+    "command": "{STATUSLINE}"' in out
    assert f'+            "command": "{EXE} hook pre-tool-use"' in out
    assert "(dry run:" in out
    assert path.read_bytes() == original
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]
    # A settings file that does not exist yet is not created either.
    missing = tmp_path / "elsewhere" / "settings.json"
    assert run(capsys, "install", "claude-code", "--settings", str(missing), "--dry-run")[0] == 0
    assert not missing.parent.exists()
    # Nor does a dry uninstall touch anything.
    assert run(capsys, "install", "claude-code")[0] == 0
    installed = path.read_bytes()
    code, out, _ = run(capsys, "uninstall", "claude-code", "--dry-run")
    assert code == 0 and f'-    "command": "{STATUSLINE}"' in out
    assert path.read_bytes() == installed and marker_path(path).exists()


def test_foreign_status_line_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = settings_file(tmp_path)
    text = USER_SETTINGS.replace(
        '"model": "opus",',
        '"model": "opus",\n  "statusLine": {"type": "command", "command": "~/bin/my-line.sh"},',
    )
    original = write(path, text)
    code, _, err = run(capsys, "install", "claude-code")
    assert code == 2
    assert "already has a statusLine" in err and "my-line.sh" in err and "--force" in err
    assert len(err.strip().splitlines()) == 1
    assert path.read_bytes() == original
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]

    # The hooks alone can go in next to it.
    assert run(capsys, "install", "claude-code", "--no-statusline")[0] == 0
    assert parse(path.read_bytes())["statusLine"]["command"] == "~/bin/my-line.sh"
    assert run(capsys, "uninstall", "claude-code")[0] == 0
    assert path.read_bytes() == original


def test_force_replaces_and_uninstall_puts_it_back(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = settings_file(tmp_path)
    foreign = '{"type": "command", "command": "~/bin/my-line.sh", "padding": 0}'
    original = write(path, USER_SETTINGS.replace('"model": "opus",', f'"statusLine": {foreign},'))
    code, out, _ = run(capsys, "install", "claude-code", "--force")
    assert code == 0 and "Replacing the statusLine" in out
    assert parse(path.read_bytes())["statusLine"]["command"] == STATUSLINE
    backup = next(path.parent.glob("*.ctxbudget.bak"))
    assert backup.read_bytes() == original
    # The user changes something else meanwhile: the statusLine still comes back as it was.
    edited = path.read_bytes().replace(
        b'"includeCoAuthoredBy": false', b'"includeCoAuthoredBy": true'
    )
    path.write_bytes(edited)
    code, out, _ = run(capsys, "uninstall", "claude-code")
    assert code == 0 and "everything else is kept" in out
    assert path.read_bytes() == original.replace(
        b'"includeCoAuthoredBy": false', b'"includeCoAuthoredBy": true'
    )


@pytest.mark.parametrize(
    "original",
    [b'{"model": "opus",}', b"{'model': 'opus'}", b'{"model": "opus"', b"[1, 2]", b"\xff\xfe{}"],
)
def test_invalid_settings_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, original: bytes
) -> None:
    path = settings_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(original)
    for command in ("install", "uninstall"):
        code, _, err = run(capsys, command, "claude-code")
        assert code == 2
        assert len(err.strip().splitlines()) == 1 and str(path) in err
        assert "Traceback" not in err
        assert path.read_bytes() == original
        assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json"]


def test_uninstall_after_the_user_edited_keeps_their_edits(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = settings_file(tmp_path)
    original = write(path, USER_SETTINGS)
    assert run(capsys, "install", "claude-code")[0] == 0
    edited = path.read_bytes().replace(b'"model": "opus"', b'"model": "sonnet"')
    path.write_bytes(edited)
    code, out, _ = run(capsys, "uninstall", "claude-code")
    assert code == 0 and "changed since install" in out
    assert path.read_bytes() == original.replace(b'"model": "opus"', b'"model": "sonnet"')
    # Without the marker (lost, or installed by hand), ctxbudget's entries still go.
    assert run(capsys, "install", "claude-code")[0] == 0
    marker_path(path).unlink()
    assert run(capsys, "uninstall", "claude-code")[0] == 0
    assert b"ctxbudget" not in path.read_bytes()
    assert parse(path.read_bytes()) == parse(original) | {"model": "sonnet"}
    # Nothing left to take out.
    code, out, _ = run(capsys, "uninstall", "claude-code")
    assert code == 0 and "not installed" in out


def test_a_created_file_is_removed_again(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = settings_file(tmp_path)
    assert not path.exists()
    assert run(capsys, "install", "claude-code")[0] == 0
    assert parse(path.read_bytes())["statusLine"]["command"] == STATUSLINE
    assert run(capsys, "uninstall", "claude-code")[0] == 0
    assert not path.exists() and not marker_path(path).exists()
    assert run(capsys, "uninstall", "claude-code")[0] == 0  # nothing there: fine


def test_scopes_and_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, _home: Path) -> None:
    assert settings_path("user") == tmp_path / "claude-home" / "settings.json"
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    assert settings_path("user") == _home / ".claude" / "settings.json"
    project = tmp_path / "proj"
    project.mkdir()
    monkeypatch.chdir(project)
    assert settings_path("project") == project / ".claude" / "settings.json"
    assert settings_path("user", "~/x.json") == _home / "x.json"


def test_project_scope(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    path = project / ".claude" / "settings.json"
    original = write(path, '{\n  "permissions": {"allow": []}\n}\n')
    monkeypatch.chdir(project)
    assert run(capsys, "install", "claude-code", "--scope", "project")[0] == 0
    only_insertions(original, path.read_bytes())
    assert not settings_file(tmp_path).exists()  # the user's settings untouched
    assert run(capsys, "uninstall", "claude-code", "--scope", "project")[0] == 0
    assert path.read_bytes() == original


def test_a_symlinked_settings_file_stays_a_link(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dotfiles = tmp_path / "dotfiles" / "claude-settings.json"
    original = write(dotfiles, USER_SETTINGS)
    path = settings_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.symlink_to(dotfiles)
    assert run(capsys, "install", "claude-code")[0] == 0
    assert path.is_symlink() and b"ctxbudget statusline" in dotfiles.read_bytes()
    assert run(capsys, "uninstall", "claude-code")[0] == 0
    assert path.is_symlink() and dotfiles.read_bytes() == original


def test_file_mode_is_kept(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = settings_file(tmp_path)
    write(path, USER_SETTINGS)
    os.chmod(path, 0o600)
    assert run(capsys, "install", "claude-code")[0] == 0
    assert path.stat().st_mode & 0o777 == 0o600


def test_plans_change_nothing(tmp_path: Path) -> None:
    path = settings_file(tmp_path)
    original = write(path, USER_SETTINGS)
    change = plan_install(path, executable="/opt/ctx venv/bin/ctxbudget")
    assert change.changed
    assert b"'/opt/ctx venv/bin/ctxbudget' hook pre-tool-use" in (change.after or b"")
    assert not plan_uninstall(path).changed
    assert path.read_bytes() == original


def test_the_undo_named_after_install_with_commands_removes_them_too(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    commands = tmp_path / "claude-home" / "commands"
    code, out, err = run(capsys, "install", "claude-code", "--commands")
    assert code == 0, err
    assert sorted(p.name for p in commands.iterdir())  # the user commands were written
    [undo] = [line.split("Undo with: ")[1] for line in out.splitlines() if "Undo with: " in line]
    words = shlex.split(undo)
    assert words[:3] == ["ctxbudget", "uninstall", "claude-code"]
    code, _, err = run(capsys, *words[1:])
    assert code == 0, err
    assert not list(commands.glob("*.md"))  # nothing left behind


def test_a_dry_run_with_commands_names_the_files_it_would_write(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    commands = tmp_path / "claude-home" / "commands"
    code, out, err = run(capsys, "install", "claude-code", "--commands", "--dry-run")
    assert code == 0, err
    assert f"would write {commands / 'recall.md'}" in out
    assert not commands.exists()  # a dry run writes nothing
