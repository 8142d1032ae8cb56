"""The status line's text: its format's placeholders filled in, or the default line
drawn by ``render.status_line`` itself (the figure is ``statusline``'s).

Imports nothing at run time until a line is drawn (``render`` then): the status line
pays for every import on its first call.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..status import Status

__all__ = [
    "ACTIONS",
    "DEFAULT_FORMAT",
    "FORMAT_ENV",
    "action_text",
    "default_line",
    "format_line",
    "percent_text",
]

#: Placeholders: {model} {used} {max} {percent} {bar} {level} {action} {remaining}
#: {session}. ``{action}`` is empty below the warning level, else " · compact soon" etc.
DEFAULT_FORMAT = "{model} | Tokens: {used}/{max} ({percent}%) | {bar} | {level}{action}"
#: The environment variable that sets the format (``--format`` wins over it).
FORMAT_ENV = "CTXBUDGET_STATUSLINE_FORMAT"
#: What to do, by level (short forms of ``status.RECOMMENDATIONS``).
ACTIONS = {
    "warning": "compact soon",
    "critical": "compact now",
    "blocked": "new agents blocked",
}


def percent_text(status: Status) -> str:
    """The percent as ``render.status_line`` prints it (a test keeps them equal)."""
    return str(math.floor(status.percent + 1e-9))  # rounded down, as render.pct


def action_text(status: Status) -> str:
    return ACTIONS.get(status.level.value, "")


def format_line(
    fmt: str,
    status: Status | None,
    *,
    model: str | None,
    session_id: str | None,
    window: int,
    color: bool = False,
) -> str:
    """Fill the placeholders of ``fmt``; unknown ``{names}`` stay as written."""
    from ..render import LEVEL_LABEL, bar, paint

    values: dict[str, str] = {
        "model": model or "",
        "session": (session_id or "")[:8],
        "max": f"{window:,}",
    }
    if status is None:
        values.update(used="?", percent="?", bar="", level="", action="", remaining="?")
    else:
        action = action_text(status)
        values.update(
            used=f"{status.used_tokens:,}",
            max=f"{status.max_tokens:,}",
            percent=percent_text(status),
            bar=paint(bar(status.percent), status.level, color),
            level=paint(LEVEL_LABEL[status.level], status.level, color),
            action=paint(f" · {action}", status.level, color) if action else "",
            remaining=f"{status.remaining_tokens:,}",
        )
    out = []
    i = 0
    while i < len(fmt):
        start = fmt.find("{", i)
        if start < 0:
            out.append(fmt[i:])
            break
        end = fmt.find("}", start)
        name = fmt[start + 1 : end] if end > 0 else ""
        if name in values:
            out.append(fmt[i:start])
            out.append(values[name])
            i = end + 1
        else:
            out.append(fmt[i : start + 1])
            i = start + 1
    return "".join(out).replace("\n", " ")


def default_line(
    status: Status | None, *, model: str | None, window: int, color: bool = False
) -> str:
    """``DEFAULT_FORMAT``, drawn by ``render.status_line`` itself."""
    from ..render import paint, status_line

    if status is None:
        return f"{model} | Tokens: ?/{window:,}" if model else f"Tokens: ?/{window:,}"
    line = status_line(status, color=color, prefix=model or None)
    action = action_text(status)
    return line + (paint(f" · {action}", status.level, color) if action else "")
