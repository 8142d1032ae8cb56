"""The Claude Code plugin's side of the install: where the plugin finds ctxbudget,
and whether the user's settings run a hook already (the plugin's stands down then).

``install --plugin`` records the executable (``record_plugin_executable``) where the
plugin's launcher looks (``plugin_executable_files``); the settings edit itself is
``install``.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from .._files import write_atomic
from .install import group_runs_hook, settings_path

__all__ = [
    "PLUGIN_ID",
    "plugin_executable_files",
    "record_plugin_executable",
    "settings_run_hook",
]

#: The plugin's id in its marketplace (``/plugin install ctxbudget@ctxbudget``).
PLUGIN_ID = "ctxbudget@ctxbudget"


def _claude_dir() -> Path:
    config = os.environ.get("CLAUDE_CONFIG_DIR")
    return Path(config).expanduser() if config else Path.home() / ".claude"


def plugin_executable_files() -> list[Path]:
    """Where ``install --plugin`` records the executable, and the plugin's launcher
    looks for it: ``${XDG_CONFIG_HOME:-~/.config}/ctxbudget/executable``, and
    ``executable`` in each data directory of the plugin Claude Code made
    (``~/.claude/plugins/data/ctxbudget-*``; ``$CLAUDE_PLUGIN_DATA`` in the plugin), or
    the one it will make for ``ctxbudget@ctxbudget``."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    config = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    files = [config / "ctxbudget" / "executable"]
    cache = os.environ.get("CLAUDE_CODE_PLUGIN_CACHE_DIR")
    data = (Path(cache).expanduser() if cache else _claude_dir() / "plugins") / "data"
    found = sorted(data.glob("ctxbudget-*")) if data.is_dir() else []
    dirs = [d for d in found if d.is_dir()] or [data / PLUGIN_ID.replace("@", "-")]
    return files + [d / "executable" for d in dirs]


def record_plugin_executable(executable: str) -> list[Path]:
    """Record how the plugin runs ctxbudget (one argv word a line) in each of
    ``plugin_executable_files()``; the files written."""
    if " -m " in executable and not Path(executable).exists():
        words = shlex.split(executable)
    else:
        words = [executable]
    text = "".join(word + "\n" for word in words).encode()
    written = []
    for path in plugin_executable_files():
        write_atomic(path, text, 0o644, parents=True)
        written.append(path)
    return written


def settings_run_hook(name: str, cwd: str | None = None) -> bool:
    """Whether a settings file Claude Code reads for a session in ``cwd`` runs
    ``ctxbudget hook NAME``: the user's, the project's and the project's local one.
    The plugin's hook stands down then, so no event is recorded twice."""
    project = Path(cwd).expanduser() if cwd else Path.cwd()
    candidates = [
        settings_path("user"),
        project / ".claude" / "settings.json",
        project / ".claude" / "settings.local.json",
    ]
    seen: set[Path] = set()
    for path in candidates:
        try:
            resolved = path.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        hooks = data.get("hooks") if isinstance(data, dict) else None
        if not isinstance(hooks, dict):
            continue
        for groups in hooks.values():
            if isinstance(groups, list) and any(group_runs_hook(g, name) for g in groups):
                return True
    return False
