"""The unprefixed ``/tokens``, ``/recall``, ``/budget`` and ``/preview`` for settings.json users.

The plugin's commands are ``/ctxbudget:tokens`` and so on. ``ctxbudget install
claude-code --commands`` writes the same four as user commands
(``~/.claude/commands/NAME.md``, ``$CLAUDE_CONFIG_DIR/commands`` when set), running
the ctxbudget that installed them by its absolute path on the session Claude Code runs
them in (``$CLAUDE_CODE_SESSION_ID``, its live transcript). A file there that is not
ours (no marker line) is never overwritten; uninstall removes only ours.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from ..compaction.fact_rules import REPORT_MARKER

__all__ = [
    "COMMAND_NAMES",
    "command_text",
    "commands_dir",
    "remove_user_commands",
    "write_user_commands",
]

COMMAND_NAMES = ("tokens", "recall", "budget", "preview")
MARKER = "<!-- written by ctxbudget install claude-code --commands -->"

# The live transcript of this session, found by the shell the command runs in.
_TRANSCRIPT = (
    '"$(ls "${CLAUDE_CONFIG_DIR:-$HOME/.claude}"/projects/*/"$CLAUDE_CODE_SESSION_ID".jsonl'
    ' 2>/dev/null | head -n 1)"'
)

# What the user typed after the command, as text: Claude Code puts $ARGUMENTS into the
# shell line as typed, so it goes into a quoted here-document, which the shell never
# reads (quotes, ";" and "$(...)" in it stay text); options are split from it on blanks
# alone, with globbing off.
_ARGUMENTS = "q=$(cat <<'CTXBUDGET_ARGUMENTS'\n$ARGUMENTS\nCTXBUDGET_ARGUMENTS\n); "
# the transcript found first (globbing is still on), then the options split
_OPTIONS = _ARGUMENTS + "t=" + _TRANSCRIPT + "; set -f; "

_BODIES = {
    "tokens": (
        "How full this session's context window is (the live transcript's figure)",
        "[--breakdown] [--history]",
        _OPTIONS + '{exe} tokens "$t" $q 2>&1',
        "Show the user the ctxbudget output above exactly as it is, in a code block.",
    ),
    "budget": (
        "This session's budget: the window per component, per agent and per phase",
        "[--json]",
        _OPTIONS + '{exe} budget "$t" $q 2>&1',
        "Show the user the ctxbudget output above exactly as it is, in a code block.",
    ),
    "recall": (
        "Search what compaction took out of this session (ctxbudget's archive)",
        "QUERY",
        _ARGUMENTS + '{exe} recall "$CLAUDE_CODE_SESSION_ID" "$q" 2>&1',
        "Show the user the ctxbudget output above as it is.",
    ),
    "preview": (
        "What the next compaction would lose, and what ctxbudget would put back",
        "",
        'printf \'{{"session_id": "%s", "transcript_path": "%s", '
        '"custom_instructions": "--dry-run", "hook_event_name": "PreCompact"}\' '
        '"$CLAUDE_CODE_SESSION_ID" ' + _TRANSCRIPT + " | {exe} hook pre-compact 2>&1; true",
        "Show the user the ctxbudget preview above as it is, in a code block. "
        "Nothing was compacted.",
    ),
}


def commands_dir() -> Path:
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(config).expanduser() if config else Path.home() / ".claude") / "commands"


def command_text(name: str, executable: str) -> str:
    """The markdown of user command ``name`` running ``executable``."""
    description, hint, shell, ask = _BODIES[name]
    exe = executable if " -m " in executable else shlex.quote(executable)
    front = [f"description: {description}"]
    if hint:
        front.append(f'argument-hint: "{hint}"')
    front.append("allowed-tools: Bash(*ctxbudget*)")
    return (
        "---\n" + "\n".join(front) + "\n---\n" + MARKER + "\n" + REPORT_MARKER + "\n"
        "!`" + shell.replace("{exe}", exe) + "`\n\n" + ask + "\n"
    )


def _ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False


def write_user_commands(executable: str, directory: Path | None = None) -> list[str]:
    """Write the four commands; one line per command said."""
    directory = directory or commands_dir()
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for name in COMMAND_NAMES:
        path = directory / f"{name}.md"
        if path.exists() and not _ours(path):
            lines.append(f"/{name}: {path} exists and is not ctxbudget's: left as it is")
            continue
        path.write_text(command_text(name, executable), encoding="utf-8")
        lines.append(f"/{name}: {path}")
    return lines


def remove_user_commands(directory: Path | None = None) -> list[str]:
    """Remove the commands ctxbudget wrote (and only those)."""
    directory = directory or commands_dir()
    removed = []
    for name in COMMAND_NAMES:
        path = directory / f"{name}.md"
        if path.is_file() and _ours(path):
            path.unlink()
            removed.append(f"Removed /{name} ({path}).")
    return removed
