"""Take ctxbudget out of Claude Code's settings again (``ctxbudget uninstall``).

``plan_uninstall`` writes the original bytes back when the file is as install left it
(its marker, ``settings.json.ctxbudget.json``, names the backup and the hash of what
install wrote); when the file changed since, it removes only ctxbudget's entries
(found by their command) and keeps the rest, editing the text as ``install`` does.
Nothing is written by a plan; ``apply_uninstall`` writes it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._files import write_atomic
from .install import (
    HOOKS,
    MARKER_FORMAT,
    SettingsChange,
    SettingsError,
    decode_settings,
    file_mode,
    group_runs_hook,
    hooks_object,
    is_our_statusline,
    marker_path,
    read_settings,
    runs_our_hook,
    settings_target,
    sha256_of,
)
from .json_edit import Spans, remove, replace

__all__ = ["apply_uninstall", "plan_uninstall"]


def _load_marker(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(marker_path(settings_target(path)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MARKER_FORMAT else None


def plan_uninstall(path: Path) -> SettingsChange:
    """What uninstalling would change: the original bytes back when the file is as
    install left it, else ctxbudget's entries taken out of the current text."""
    raw, existed = read_settings(path)
    marker = _load_marker(path)
    change = SettingsChange(action="uninstall", path=path, existed=existed, before=raw, after=raw)
    if not existed:
        change.after = None
        change.notes.append(f"{path} does not exist: nothing to uninstall.")
        return change
    if marker is not None and marker.get("installed_sha256") == sha256_of(raw):
        if not marker.get("existed"):
            change.after = None  # install created the file
            change.restores_original = True
            return change
        backup = Path(str(marker.get("backup") or ""))
        try:
            original = backup.read_bytes()
        except OSError:
            original = None
        if original is not None and sha256_of(original) == marker.get("original_sha256"):
            # An install over an earlier one backed up a file that had some of ours.
            change.after = _remove_ours(original, path, None)
            change.restores_original = change.after == original
            return change
        change.notes.append(f"The backup {backup} is missing or changed: removing entries instead.")
    elif marker is not None:
        change.notes.append(f"{path} changed since install: removing ctxbudget's entries only.")
    change.after = _remove_ours(raw, path, marker)
    if change.after == raw:
        change.notes.append(f"ctxbudget is not installed in {path}.")
    return change


def _remove_ours(raw: bytes, path: Path, marker: dict[str, Any] | None) -> bytes:
    bom, text, data = decode_settings(raw, path)
    unchanged = text
    added = (marker or {}).get("added") or {}
    if is_our_statusline(data.get("statusLine")):
        root = Spans(text).parse()
        found = root.member("statusLine")
        assert found is not None
        before = added.get("statusLine_before")
        if added.get("statusLine") == "replaced" and isinstance(before, str):
            text = replace(text, found[1], before)  # the statusLine --force replaced
        else:
            text = remove(text, root, found[0])
    if isinstance(data.get("hooks"), dict):
        emptied = False
        for event, _, name in HOOKS:
            text, now_empty = _remove_event_hooks(text, event, name)
            created = event in added.get("events_created", []) or marker is None
            if now_empty and created:
                hooks_node = hooks_object(text)
                found = hooks_node.member(event)
                if found is not None:
                    text = remove(text, hooks_node, found[0])
                    emptied = True
        root = Spans(text).parse()
        found = root.member("hooks")
        created = added.get("hooks_created") or (marker is None and emptied)
        if found is not None and not found[1].members and created:
            text = remove(text, root, found[0])
    return raw if text == unchanged else (bom + text).encode("utf-8")


def _remove_event_hooks(text: str, event: str, name: str) -> tuple[str, bool]:
    """Take ctxbudget's hook out of ``hooks[event]``; True when that list became empty
    by it. A group left with no hook goes too."""
    removed = False
    while True:
        found = hooks_object(text).member(event)
        if found is None or found[1].kind != "array":
            return text, False
        groups = json.loads(text[found[1].start : found[1].end])
        hit = next((i for i, g in enumerate(groups) if group_runs_hook(g, name)), None)
        if hit is None:
            return text, removed and not groups
        removed = True
        group_node = found[1].items[hit]
        inner = group_node.member("hooks")
        assert inner is not None
        hooks = groups[hit]["hooks"]
        mine = [i for i, h in enumerate(hooks) if runs_our_hook(h, name)]
        if len(mine) == len(hooks):
            text = remove(text, found[1], hit)
        else:
            text = remove(text, inner[1], mine[0])


def apply_uninstall(change: SettingsChange) -> list[str]:
    target = settings_target(change.path)
    current, _ = read_settings(target)
    if current != change.before:
        raise SettingsError(f"{change.path} changed while planning: run the command again")
    if change.after is None:
        target.unlink()
        done = f"Removed {change.path} (install had created it)."
    else:
        write_atomic(target, change.after, file_mode(target), parents=True)
        done = (
            f"Removed ctxbudget from {change.path}: the original bytes are back."
            if change.restores_original
            else f"Removed ctxbudget's entries from {change.path}; everything else is kept."
        )
    marker_path(target).unlink(missing_ok=True)
    return [done, "Restart Claude Code to unload it."]
