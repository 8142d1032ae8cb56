"""The Claude Code plugin: its launcher, ``/compact --dry-run``, warnings once per
crossing, the plugin standing down beside settings.json hooks, the installer's
records, and ``claude plugin validate`` (e2e: with the real Claude Code)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from test_hooks import _record, _usage, hook, payload, write_transcript

from ctxbudget.claude_code.autocompact import autocompact_threshold, override_for_percent
from ctxbudget.claude_code.plugin import record_plugin_executable, settings_run_hook
from ctxbudget.claude_code.user_commands import (
    COMMAND_NAMES,
    remove_user_commands,
    write_user_commands,
)
from ctxbudget.compaction.facts import extract_facts
from ctxbudget.model import Item, Kind, Role

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugin"
LAUNCHER = PLUGIN / "scripts" / "ctxbudget.sh"
CLAUDE = Path(os.environ.get("CTXBUDGET_E2E_CLAUDE", ROOT / ".e2e/node_modules/.bin/claude"))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "claude-home"  # $CLAUDE_CONFIG_DIR (conftest)


# -- the launcher ----------------------------------------------------------------------


def _bare_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment where no ctxbudget is on PATH (only the shell's tools)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("sed", "tr", "cat", "dirname", "ls", "head"):
        found = shutil.which(tool)
        if found and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "CLAUDE_CONFIG_DIR": str(tmp_path / "claude-home"),
    }
    env.update(extra)
    return env


def _launch(env: dict[str, str], *args: str, stdin: str = "{}") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(LAUNCHER), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def _fake_ctxbudget(path: Path) -> Path:
    """An executable that prints the arguments it was given, one a line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('#!/bin/sh\nfor a in "$@"; do echo "ARG:$a"; done\n', encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_launcher_without_ctxbudget_tells_the_user_in_one_line_and_exits_0(
    tmp_path: Path,
) -> None:
    result = _launch(_bare_env(tmp_path), "hook", "user-prompt-submit")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    message = json.loads(lines[0])["systemMessage"]
    assert "ctxbudget is not installed" in message and "pip install ctxbudget" in message
    # a command says the same, plainly; the MCP server fails with the line on stderr
    command = _launch(_bare_env(tmp_path, CLAUDE_CODE_SESSION_ID="s1"), "cmd", "tokens")
    assert command.returncode == 0 and "ctxbudget is not installed" in command.stdout
    server = _launch(_bare_env(tmp_path), "mcp")
    assert server.returncode == 1 and "ctxbudget is not installed" in server.stderr


def test_launcher_uses_the_recorded_virtualenv_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    venv_exe = _fake_ctxbudget(tmp_path / "venv" / "bin" / "ctxbudget")
    env = _bare_env(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", env["XDG_CONFIG_HOME"])
    monkeypatch.setenv("HOME", env["HOME"])
    written = record_plugin_executable(str(venv_exe))
    assert Path(env["XDG_CONFIG_HOME"], "ctxbudget", "executable") in written
    result = _launch(env, "hook", "pre-compact", "--window", "1000")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ARG:hook",
        "ARG:pre-compact",
        "ARG:--plugin",
        "ARG:--window",
        "ARG:1000",
    ]
    # the plugin's own data directory wins over the user-wide record
    other = _fake_ctxbudget(tmp_path / "other" / "ctxbudget")
    data = tmp_path / "plugin-data"
    data.mkdir()
    (data / "executable").write_text(f"{other}\n", encoding="utf-8")
    result = _launch({**env, "CLAUDE_PLUGIN_DATA": str(data)}, "mcp")
    assert result.stdout.splitlines() == ["ARG:mcp"]
    assert other.read_text() == venv_exe.read_text()  # same script: check it is the one run
    (data / "executable").write_text(f"{tmp_path / 'gone' / 'ctxbudget'}\n", encoding="utf-8")
    stale = _launch({**env, "CLAUDE_PLUGIN_DATA": str(data)}, "mcp")
    assert stale.stdout.splitlines() == ["ARG:mcp"]  # a stale record: the next place


def test_launcher_records_a_python_m_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = _fake_ctxbudget(tmp_path / "venv" / "bin" / "python")
    env = _bare_env(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", env["XDG_CONFIG_HOME"])
    monkeypatch.setenv("HOME", env["HOME"])
    record_plugin_executable(f"{python} -m ctxbudget.cli")
    result = _launch(env, "mcp")
    assert result.stdout.splitlines() == ["ARG:-m", "ARG:ctxbudget.cli", "ARG:mcp"]


def test_launcher_command_runs_on_this_sessions_live_transcript(tmp_path: Path, home: Path) -> None:
    exe = _fake_ctxbudget(tmp_path / "venv" / "bin" / "ctxbudget")
    transcript = write_transcript(home, 50_000)
    env = _bare_env(tmp_path, CTXBUDGET_EXECUTABLE=str(exe), CLAUDE_CODE_SESSION_ID=transcript.stem)
    env["CLAUDE_CONFIG_DIR"] = str(home)
    result = _launch(env, "cmd", "tokens", "--breakdown")
    assert result.stdout.splitlines() == ["ARG:tokens", f"ARG:{transcript}", "ARG:--breakdown"]
    result = _launch(env, "cmd", "recall", "database", "schema")
    assert result.stdout.splitlines() == [
        "ARG:recall",
        f"ARG:{transcript.stem}",
        "ARG:database schema",
    ]


def _shell_line(text: str) -> str:
    """The ``!`` shell line of a command file's text."""
    return text.split("!`", 1)[1].split("`", 1)[0]


@pytest.mark.parametrize("kind", ["plugin", "user command"])
def test_a_commands_arguments_stay_text_whatever_they_hold(
    tmp_path: Path, home: Path, kind: str
) -> None:
    """Claude Code puts $ARGUMENTS into the command's shell line as they were typed:
    quotes, ";" and "$(...)" in them are searched (or passed) as text, never run. The
    plugin's commands and the user commands ``install claude-code --commands`` writes."""
    from ctxbudget.claude_code.user_commands import command_text

    exe = _fake_ctxbudget(tmp_path / "venv" / "bin" / "ctxbudget")

    def text_of(command: str) -> str:
        if kind == "plugin":
            return (PLUGIN / "commands" / f"{command}.md").read_text(encoding="utf-8")
        return command_text(command, str(exe))

    transcript = write_transcript(home, 50_000)
    env = _bare_env(tmp_path, CTXBUDGET_EXECUTABLE=str(exe), CLAUDE_CODE_SESSION_ID=transcript.stem)
    env["CLAUDE_CONFIG_DIR"] = str(home)
    hostile = "don't push; echo INJECTED-$(id -u) `id` (REQ-42) > x"

    def run(command: str, arguments: str) -> list[str]:
        line = _shell_line(text_of(command)).replace("${CLAUDE_PLUGIN_ROOT}", str(PLUGIN))
        line = line.replace("$ARGUMENTS", arguments)  # Claude Code's own substitution
        done = subprocess.run(
            ["/bin/sh", "-c", line], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert "INJECTED" not in done.stdout.replace(hostile, ""), done.stdout
        return done.stdout.splitlines()

    assert run("recall", hostile) == ["ARG:recall", f"ARG:{transcript.stem}", f"ARG:{hostile}"]
    assert run("tokens", "--breakdown --history") == [
        "ARG:tokens",
        f"ARG:{transcript}",
        "ARG:--breakdown",
        "ARG:--history",
    ]
    assert run("budget", "*") == ["ARG:budget", f"ARG:{transcript}", "ARG:*"]  # no glob
    assert not (tmp_path / "x").exists()


# -- /compact --dry-run ----------------------------------------------------------------


def test_compact_dry_run_blocks_with_the_preview(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 150_000)
    event = payload("PreCompact", path, trigger="manual", custom_instructions="--dry-run")
    code, out, err = hook(monkeypatch, capsys, "pre-compact", event)
    assert code == 2 and out == ""
    assert "nothing was compacted" in err
    assert "Now: 150,1" in err  # the transcript's figure (last usage + what follows)
    assert "Expected after: about" in err and "Facts at risk" in err
    assert "Claude Code compacts by itself at" in err
    # any other /compact proceeds
    event = payload("PreCompact", path, trigger="manual", custom_instructions="keep REQ ids")
    code, out, err = hook(monkeypatch, capsys, "pre-compact", event)
    assert code == 0 and "nothing was compacted" not in err
    event = payload("PreCompact", path, trigger="auto", custom_instructions=None)
    assert hook(monkeypatch, capsys, "pre-compact", event)[0] == 0


def test_compact_dry_run_without_a_transcript_still_compacts_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    event = payload("PreCompact", home / "missing.jsonl", custom_instructions="--dry-run")
    code, _, err = hook(monkeypatch, capsys, "pre-compact", event)
    assert code == 2 and "nothing was compacted" in err


# -- warnings once per crossing --------------------------------------------------------


def _answer(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    home: Path,
    tokens: int,
    event: str = "UserPromptSubmit",
) -> str | None:
    """One more API call reported ``tokens`` (appended, as Claude Code does), then the
    hook of ``event``: its warning, or None."""
    project = home / "projects" / "-home-dev-proj"
    path = project / "warn.jsonl"
    project.mkdir(parents=True, exist_ok=True)
    n = len(path.read_text().splitlines()) if path.exists() else 0
    message = {
        "id": f"msg_{n}",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": f"step {n}"}],
        "usage": _usage(tokens),
    }
    with path.open("a", encoding="utf-8") as f:
        f.write(_record(f"a{n}", None, "assistant", message) + "\n")
    name = "user-prompt-submit" if event == "UserPromptSubmit" else "post-tool-use"
    code, out, err = hook(monkeypatch, capsys, name, payload(event, path))
    assert code == 0 and err == ""
    if not out:
        return None
    answer = json.loads(out)
    assert answer["hookSpecificOutput"]["hookEventName"] == event
    told = answer["hookSpecificOutput"]["additionalContext"]
    assert told == f"<!-- ctxbudget report -->\n{answer['systemMessage']}"
    message: str = answer["systemMessage"]
    return message


def test_warning_and_critical_alert_once_per_crossing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    assert _answer(monkeypatch, capsys, home, 100_000) is None  # 50%: normal
    first = _answer(monkeypatch, capsys, home, 152_000)
    assert first is not None and "warning level" in first
    assert "sub-agent invocations left" in first and "Claude Code compacts by itself" in first
    assert _answer(monkeypatch, capsys, home, 154_000, "PostToolUse") is None  # said already
    assert _answer(monkeypatch, capsys, home, 160_000) is None
    alert = _answer(monkeypatch, capsys, home, 182_000, "PostToolUse")
    assert alert is not None and "critical level" in alert
    assert _answer(monkeypatch, capsys, home, 183_000) is None
    # a compaction brings it down; the next crossing is said again
    assert _answer(monkeypatch, capsys, home, 40_000) is None
    again = _answer(monkeypatch, capsys, home, 151_000)
    assert again is not None and "warning level" in again


def test_invocations_left_follow_the_report_budget(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    message = _answer(monkeypatch, capsys, home, 160_000)
    assert message is not None
    # blocked at 95% of 200,000 = 190,000; about 30,000 left over 5,000 each
    left = 190_000 - 160_000
    assert f"About {left // 5_000 - 1}" in message or f"About {left // 5_000}" in message


# -- the plugin stands down beside settings.json hooks -----------------------------


def test_plugin_hook_stands_down_where_settings_run_ctxbudget(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    path = write_transcript(home, 182_000)
    event = payload("UserPromptSubmit", path)
    assert not settings_run_hook("user-prompt-submit", event["cwd"])
    code, out, _ = hook(monkeypatch, capsys, "user-prompt-submit", event, "--plugin")
    assert code == 0 and "critical level" in out  # alone: the plugin speaks
    home.mkdir(parents=True, exist_ok=True)
    (home / "settings.json").write_text(
        json.dumps(
            {
                "hooks": {
                    "UserPromptSubmit": [
                        {
                            "hooks": [
                                {
                                    "type": "command",
                                    "command": "/v/bin/ctxbudget hook user-prompt-submit",
                                }
                            ]
                        }
                    ]
                }
            }
        ),
        encoding="utf-8",
    )
    assert settings_run_hook("user-prompt-submit", event["cwd"])
    assert not settings_run_hook("pre-compact", event["cwd"])
    dry = payload("PreCompact", path, custom_instructions="--dry-run")
    code, out, err = hook(monkeypatch, capsys, "user-prompt-submit", event, "--plugin")
    assert (code, out, err) == (0, "", "")  # settings.json's hook answers, not this one
    # an event settings.json does not handle: the plugin's hook still runs it
    assert hook(monkeypatch, capsys, "pre-compact", dry, "--plugin")[0] == 2


# -- Claude Code's own threshold -------------------------------------------------------


def test_autocompact_threshold_as_claude_code_computes_it() -> None:
    assert autocompact_threshold(200_000, {}).tokens == 167_000
    assert autocompact_threshold(1_000_000, {}).tokens == 967_000
    lowered = autocompact_threshold(1_000_000, {"CLAUDE_AUTOCOMPACT_PCT_OVERRIDE": "50"})
    assert lowered.tokens == 490_000 and lowered.override == 50
    # the override can only lower it
    assert (
        autocompact_threshold(200_000, {"CLAUDE_AUTOCOMPACT_PCT_OVERRIDE": "99"}).tokens == 167_000
    )
    assert autocompact_threshold(200_000, {"CLAUDE_AUTOCOMPACT_PCT_OVERRIDE": "x"}).override is None
    pct = override_for_percent(90, 1_000_000)
    assert pct is not None
    assert autocompact_threshold(
        1_000_000, {"CLAUDE_AUTOCOMPACT_PCT_OVERRIDE": str(pct)}
    ).tokens == pytest.approx(900_000, abs=100)
    assert override_for_percent(90, 200_000) is None  # above Claude Code's 83.5%


# -- user commands (settings.json users) ------------------------------------------------


def test_user_commands_written_and_removed_only_when_ours(tmp_path: Path) -> None:
    target = tmp_path / "commands"
    target.mkdir()
    (target / "recall.md").write_text("my own /recall\n", encoding="utf-8")
    lines = write_user_commands("/v/bin/ctxbudget", target)
    assert any("not ctxbudget's" in line for line in lines)
    assert (target / "recall.md").read_text(encoding="utf-8") == "my own /recall\n"
    tokens = (target / "tokens.md").read_text(encoding="utf-8")
    assert "/v/bin/ctxbudget tokens" in tokens and "$CLAUDE_CODE_SESSION_ID" in tokens
    removed = remove_user_commands(target)
    assert len(removed) == len(COMMAND_NAMES) - 1
    assert sorted(p.name for p in target.iterdir()) == ["recall.md"]


def test_every_command_marks_ctxbudgets_output_as_no_facts(tmp_path: Path) -> None:
    """What a command's shell prints goes into the conversation (Claude Code sends the
    command's markdown with it): a figure, a preview listing the facts. Expanded as
    Claude Code expands it, no command leaves a fact behind for the next compaction."""
    write_user_commands("/v/bin/ctxbudget", tmp_path / "commands")
    files = sorted((PLUGIN / "commands").glob("*.md")) + sorted((tmp_path / "commands").iterdir())
    assert len(files) == 2 * len(COMMAND_NAMES)
    output = "Tokens: 9,000/200,000 (4%)\n  - requirement: REQ-7\n  - file: src/app.py"
    for path in files:
        body = path.read_text(encoding="utf-8").split("\n---\n", 1)[1]
        expanded = re.sub(r"!`[^`]*`", output, body)
        assert output in expanded, path
        item = Item(role=Role.USER, kind=Kind.USER_TEXT, text=expanded)
        assert extract_facts([item]) == [], path


# -- with the real Claude Code ---------------------------------------------------------

needs_claude = pytest.mark.skipif(
    not CLAUDE.exists(),
    reason=f"Claude Code is not installed at {CLAUDE} (npm install --prefix .e2e)",
)


def _claude_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "cc-home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update(
        HOME=str(home), DISABLE_AUTOUPDATER="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1"
    )
    return env


@pytest.mark.e2e
@needs_claude
@pytest.mark.parametrize("target", [ROOT, PLUGIN], ids=["marketplace", "plugin"])
def test_claude_plugin_validate_passes(tmp_path: Path, target: Path) -> None:
    result = subprocess.run(
        [str(CLAUDE), "plugin", "validate", str(target)],
        capture_output=True,
        text=True,
        env=_claude_env(tmp_path),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation passed" in result.stdout
