"""Install ctxbudget into Claude Code's settings, and take it out again.

``plan_install`` adds ``"statusLine": {"type": "command", "command": "ctxbudget
statusline"}`` and one hook per event (PreToolUse with matcher ``Task|Agent``,
UserPromptSubmit, PreCompact, SessionStart, SubagentStop, each ``{"type": "command",
"command": "ctxbudget hook …"}`` in the settings format ``"hooks": {EVENT: [{"matcher":
…, "hooks": [...]}]}``; events without tool names take no matcher) to a
``settings.json``. It edits the text, never re-serialises the document: every byte it
did not add stays where it was, in the file's own indentation and line endings, and
the result is checked to parse to exactly the original settings plus the additions.

``apply_install`` keeps one backup of the original bytes next to the file (named by
their hash: installing again over the same original adds none)
and a marker (``settings.json.ctxbudget.json``) of what it added, which
``uninstall`` (``plan_uninstall``, with the helpers here: reading and checking the
file, what is ours) uses to take it out again. Nothing is written by a plan;
``--dry-run`` prints its diff.

It owns the settings file edit only (the text editing itself is ``json_edit``); what
the hooks do is ``ctxbudget.claude_code.hooks``.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._files import write_atomic
from ..errors import ConfigurationError
from .json_edit import Node, Spans, Style, append, dump, indent_at, replace, style_of

__all__ = [
    "HOOKS",
    "MARKER_FORMAT",
    "SettingsChange",
    "SettingsError",
    "apply_install",
    "decode_settings",
    "default_executable",
    "file_mode",
    "group_runs_hook",
    "hooks_object",
    "is_our_statusline",
    "marker_path",
    "plan_install",
    "read_settings",
    "runs_our_hook",
    "settings_path",
    "settings_target",
    "sha256_of",
]

# (event, matcher or None, ``ctxbudget hook`` event name)
HOOKS: tuple[tuple[str, str | None, str], ...] = (
    ("PreToolUse", "Task|Agent", "pre-tool-use"),
    ("UserPromptSubmit", None, "user-prompt-submit"),
    ("PreCompact", None, "pre-compact"),
    ("SessionStart", None, "session-start"),
    ("SubagentStop", None, "subagent-stop"),
)
MARKER_FORMAT = 1


class SettingsError(ConfigurationError):
    """The settings file cannot be changed as asked (invalid JSON, a foreign statusLine…)."""


def settings_path(scope: str = "user", explicit: str | os.PathLike[str] | None = None) -> Path:
    """``--settings PATH``, the project's ``.claude/settings.json``, or the user's
    (``$CLAUDE_CONFIG_DIR/settings.json``, else ``~/.claude/settings.json``)."""
    if explicit is not None:
        return Path(explicit).expanduser()
    if scope == "project":
        return Path.cwd() / ".claude" / "settings.json"
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(config).expanduser() if config else Path.home() / ".claude") / "settings.json"


def marker_path(path: Path) -> Path:
    return path.with_name(path.name + ".ctxbudget.json")


# -- what is ours --------------------------------------------------------------------


def _command(executable: str, *words: str) -> str:
    """The shell command running ``executable WORDS…``: a path is one word (quoted
    when it has spaces); a command line ``PYTHON -m ctxbudget.cli`` keeps its words."""
    if " -m " not in executable or Path(executable).exists():
        head = shlex.quote(executable)
    else:
        try:
            head = shlex.join(shlex.split(executable))
        except ValueError:
            head = shlex.quote(executable)
    return " ".join([head, *words])


def _runs(command: Any, *words: str) -> bool:
    """Does ``command`` run ``ctxbudget WORDS…`` (any path to ctxbudget, any options)?"""
    if not isinstance(command, str):
        return False
    try:
        tokens = shlex.split(command)
    except ValueError:
        tokens = command.split()
    n = len(words)
    return any(
        "ctxbudget" in Path(token).name and tuple(tokens[i + 1 : i + 1 + n]) == words
        for i, token in enumerate(tokens)
    )


def is_our_statusline(value: Any) -> bool:
    return isinstance(value, dict) and _runs(value.get("command"), "statusline")


def runs_our_hook(hook: Any, name: str) -> bool:
    return isinstance(hook, dict) and _runs(hook.get("command"), "hook", name)


def group_runs_hook(group: Any, name: str) -> bool:
    """Does a settings hook group (``{"matcher": …, "hooks": [...]}``) run
    ``ctxbudget hook NAME``?"""
    hooks = group.get("hooks") if isinstance(group, dict) else None
    return isinstance(hooks, list) and any(runs_our_hook(h, name) for h in hooks)


def _entry(matcher: str | None, command: str) -> dict[str, Any]:
    entry: dict[str, Any] = {} if matcher is None else {"matcher": matcher}
    entry["hooks"] = [{"type": "command", "command": command}]
    return entry


# -- reading and checking the file ---------------------------------------------------


def read_settings(path: Path) -> tuple[bytes, bool]:
    try:
        return path.read_bytes(), True
    except FileNotFoundError:
        return b"", False
    except IsADirectoryError as exc:
        raise SettingsError(f"{path} is a directory, not a settings file") from exc
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def decode_settings(raw: bytes, path: Path) -> tuple[str, str, Any]:
    """BOM, text and parsed settings; an empty or missing file is ``{}``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(
            f"{path} is not UTF-8 text (byte {exc.start}): nothing written"
        ) from exc
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    body = text[len(bom) :]
    if not body.strip():
        return bom, "{}" + ("\n" if not raw else body), {}
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise SettingsError(
            f"{path} is not valid JSON ({exc}): fix it first; nothing was written"
        ) from exc
    if not isinstance(data, dict):
        raise SettingsError(
            f"{path} holds a JSON {type(data).__name__}, not an object: nothing written"
        )
    return bom, body, data


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(slots=True)
class SettingsChange:
    """A planned change to a settings file; ``after`` None deletes the file."""

    action: str  # "install" or "uninstall"
    path: Path
    existed: bool
    before: bytes
    after: bytes | None
    notes: list[str] = field(default_factory=list)
    added: dict[str, Any] = field(default_factory=dict)
    executable: str = "ctxbudget"
    restores_original: bool = False

    @property
    def changed(self) -> bool:
        if self.after is None:
            return self.existed
        return self.after != self.before or not self.existed

    def diff(self) -> str:
        old = self.before.decode("utf-8", errors="replace") if self.existed else ""
        new = "" if self.after is None else self.after.decode("utf-8", errors="replace")
        lines = difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            fromfile=str(self.path) if self.existed else "/dev/null",
            tofile=str(self.path) if self.after is not None else "/dev/null",
        )
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


# -- install -------------------------------------------------------------------------


def plan_install(
    path: Path, *, executable: str = "ctxbudget", statusline: bool = True, force: bool = False
) -> SettingsChange:
    """What installing would change (nothing is written)."""
    raw, existed = read_settings(path)
    bom, text, data = decode_settings(raw, path)
    expected = copy.deepcopy(data)
    added: dict[str, Any] = {
        "statusLine": None,
        "hooks_created": False,
        "events_created": [],
        "events_appended": [],
    }
    notes: list[str] = []
    present: list[str] = []
    root = Spans(text).parse()
    style = style_of(text, root)

    if statusline:
        # Claude Code gives the command no terminal but renders ANSI colours: ask for them
        ours = {
            "type": "command",
            "command": _command(executable, "statusline") + " --color always",
        }
        found = root.member("statusLine")
        if found is None:
            text = append(text, root, "statusLine", ours, style)
            added["statusLine"] = "added"
        elif is_our_statusline(data["statusLine"]):
            present.append("statusLine")
        elif data["statusLine"] is not None and not force:
            current = data["statusLine"]
            shown = current.get("command") if isinstance(current, dict) else current
            raise SettingsError(
                f"{path} already has a statusLine that is not ctxbudget's ({shown!r}): keep it "
                "and install the hooks only with --no-statusline, or replace it with --force "
                "(uninstall puts it back); nothing was written"
            )
        else:
            added["statusLine"] = "replaced"
            added["statusLine_before"] = text[found[1].start : found[1].end]
            text = replace(text, found[1], dump(ours, indent_at(text, found[1].start), style))
            notes.append(f"Replacing the statusLine {data['statusLine']!r} (--force).")
        expected["statusLine"] = ours

    text = _add_hooks(text, path, data, expected, executable, style, added, present)
    if present:
        notes.append("Already installed: " + ", ".join(present) + ".")

    after = (bom + text).encode("utf-8")
    if after != raw and json.loads(text) != expected:  # the edit must add exactly this
        raise SettingsError(f"{path}: could not add the settings cleanly; nothing was written")
    return SettingsChange(
        action="install",
        path=path,
        existed=existed,
        before=raw,
        after=after,
        notes=notes,
        added=added,
        executable=executable,
    )


def _add_hooks(
    text: str,
    path: Path,
    data: dict[str, Any],
    expected: dict[str, Any],
    executable: str,
    style: Style,
    added: dict[str, Any],
    present: list[str],
) -> str:
    """Add each hook not there yet: a new ``hooks`` object, a new event list, or one
    more group at the end of an event's list. ``expected`` gets the same additions."""
    hooks = data.get("hooks")
    if "hooks" in data and not isinstance(hooks, dict):
        raise SettingsError(f'{path}: "hooks" is not an object: nothing was written')
    wanted = {
        event: [_entry(matcher, _command(executable, "hook", name))]
        for event, matcher, name in HOOKS
    }
    if hooks is None:
        text = append(text, Spans(text).parse(), "hooks", wanted, style)
        added["hooks_created"] = True
        added["events_created"] = list(wanted)
        expected["hooks"] = copy.deepcopy(wanted)
        return text
    for event, _, name in HOOKS:
        groups = hooks.get(event)
        hooks_node = hooks_object(text)
        if event not in hooks:
            text = append(text, hooks_node, event, wanted[event], style)
            added["events_created"].append(event)
            expected["hooks"][event] = copy.deepcopy(wanted[event])
        elif not isinstance(groups, list):
            raise SettingsError(f'{path}: "hooks.{event}" is not a list: nothing was written')
        elif any(group_runs_hook(g, name) for g in groups):
            present.append(event)
        else:
            found = hooks_node.member(event)
            assert found is not None
            text = append(text, found[1], None, wanted[event][0], style)
            added["events_appended"].append(event)
            expected["hooks"][event].append(copy.deepcopy(wanted[event][0]))
    return text


def hooks_object(text: str) -> Node:
    """The settings' "hooks" object, parsed (it exists)."""
    found = Spans(text).parse().member("hooks")
    assert found is not None
    return found[1]


def settings_target(path: Path) -> Path:
    """Write through a symlink (a dotfiles manager's link stays a link)."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def file_mode(path: Path) -> int:
    """The file's permissions, or what a new file gets under the umask."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def _backup(target: Path, original: bytes, mode: int | None) -> Path:
    """The backup of ``original`` next to ``target``: named by its hash, so installing
    again over the same original reuses the one backup instead of adding another."""
    digest = sha256_of(original)[:12]
    backup = target.with_name(f"{target.name}.{digest}.ctxbudget.bak")
    n = 1
    while backup.exists():
        try:
            if backup.read_bytes() == original:
                return backup  # this original is already kept
        except OSError:
            pass
        n += 1
        backup = target.with_name(f"{target.name}.{digest}-{n}.ctxbudget.bak")
    write_atomic(backup, original, mode, parents=True)
    return backup


def default_executable() -> str:
    """How Claude Code should run the ctxbudget that is running now, as an absolute
    path (Claude Code's PATH may not have an un-activated virtualenv on it): the
    ``ctxbudget`` script this process was started as, else the one next to this
    Python, else the one on PATH, else ``python -m ctxbudget.cli`` with this Python."""
    argv0 = sys.argv[0] if sys.argv else ""
    candidates = []
    if argv0 and Path(argv0).name.startswith("ctxbudget"):
        candidates.append(Path(argv0))
    candidates.append(Path(sys.executable).parent / "ctxbudget")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate.absolute())
    found = shutil.which("ctxbudget")
    if found:
        return str(Path(found).absolute())
    return shlex.join([sys.executable, "-m", "ctxbudget.cli"])


def apply_install(change: SettingsChange, *, commands: bool = False) -> list[str]:
    """Write the planned install: backup first, then the file, then the marker."""
    target = settings_target(change.path)
    current, _ = read_settings(target)
    if current != change.before:
        raise SettingsError(f"{change.path} changed while planning: run the command again")
    lines = []
    backup = None
    mode = file_mode(target)
    if change.existed:
        backup = _backup(target, change.before, mode)
        lines.append(f"Backup of the original: {backup}")
    assert change.after is not None
    write_atomic(target, change.after, mode, parents=True)
    marker = {
        "format": MARKER_FORMAT,
        "settings": str(change.path),
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "existed": change.existed,
        "backup": str(backup) if backup else None,
        "original_sha256": sha256_of(change.before),
        "installed_sha256": sha256_of(change.after),
        "executable": change.executable,
        "added": change.added,
    }
    write_atomic(marker_path(target), (json.dumps(marker, indent=2) + "\n").encode(), parents=True)
    what = []
    if change.added.get("statusLine"):
        what.append("statusLine")
    new = set(change.added["events_created"]) | set(change.added["events_appended"])
    events = [event for event, _, _ in HOOKS if event in new]
    if events:
        what.append("hooks " + ", ".join(events))
    lines.insert(0, f"Installed ctxbudget in {change.path}: {'; '.join(what)}.")
    lines.insert(1, f"Claude Code will run: {_command(change.executable)}")
    undo = "ctxbudget uninstall claude-code"
    if change.path != settings_path("user"):
        undo += f" --settings {change.path}"
    if commands:  # the user commands go with it only when asked for
        undo += " --commands"
    lines.append(f"Restart Claude Code to load it. Undo with: {undo}")
    return lines
