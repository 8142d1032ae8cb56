"""``ctxbudget mcp``: the MCP server orchestrating agents ask before they spawn.

A stdio server on the official ``mcp`` SDK (the optional extra ``mcp``; version 2's
``MCPServer``). Its tools take typed arguments and return structured results
(``mcp_results``): ``status``, ``breakdown``, ``history``, ``gate``,
``sprint_start``, ``sprint_report``, ``recall`` and ``preview``. What each does is
in ``mcp_tools`` (SDK-free); this module wires them to the SDK, turns an error a user
can act on into a one-line tool error, and serves over stdio.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import CtxBudgetError, MissingExtraError
from .mcp_results import (
    BreakdownResult,
    GateResult,
    HistoryResult,
    PreviewResult,
    RecallResult,
    SprintReportResult,
    SprintStartResult,
    StatusResult,
)
from .mcp_tools import (
    breakdown_of,
    gate_of,
    history_of,
    preview_of,
    recall_of,
    sprint_report_of,
    sprint_start_of,
    status_of,
)
from .mcp_workspace import McpWorkspace

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

__all__ = ["TOOLS", "McpWorkspace", "build_server", "require_mcp", "run_stdio"]

#: The tools, in the order ``tools/list`` gives them.
TOOLS = (
    "status",
    "breakdown",
    "history",
    "gate",
    "sprint_start",
    "sprint_report",
    "recall",
    "preview",
)


def require_mcp() -> None:
    """Raise ``MissingExtraError`` when the ``mcp`` SDK is not installed."""
    try:
        import mcp.server.mcpserver  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError("ctxbudget mcp", "mcp", "mcp") from exc


# -- the server ---------------------------------------------------------------------------


def build_server(workspace: McpWorkspace) -> MCPServer[Any]:
    """The MCP server with ctxbudget's tools over ``workspace``. Raises
    ``MissingExtraError`` without the ``mcp`` SDK."""
    require_mcp()
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    from .. import __version__

    server: MCPServer[Any] = MCPServer(
        "ctxbudget",
        version=__version__,
        instructions="Token budget of this Claude Code session. Ask `gate` before each "
        "sub-agent spawn (the PreToolUse hook enforces the same decision); keep a sprint "
        "within its budget with `sprint_start` and `sprint_report`.",
    )

    def call(run: Any, *args: Any) -> Any:
        try:
            return run(workspace, *args)
        except CtxBudgetError as exc:  # one clear line to the caller, never a traceback
            raise ToolError(str(exc)) from exc
        except OSError as exc:
            raise ToolError(f"cannot read the session: {exc}") from exc

    # Tools are async so that they run on the server's own thread, one at a time.
    @server.tool()
    async def status(session: str | None = None) -> StatusResult:
        """How full the session's context window is: used, window, percent, level,
        remaining tokens, estimated exchanges left, provider overhead. Every tool takes
        `session`: a transcript path, a Claude Code session id or a stored session id
        (default: the caller's current session)."""
        return call(status_of, session)  # type: ignore[no-any-return]

    @server.tool()
    async def breakdown(session: str | None = None) -> BreakdownResult:
        """Tokens of the context by component, kind, tool and agent, and each
        sub-agent's own context."""
        return call(breakdown_of, session)  # type: ignore[no-any-return]

    @server.tool()
    async def history(session: str | None = None) -> HistoryResult:
        """The context size at each API call, ending with now."""
        return call(history_of, session)  # type: ignore[no-any-return]

    @server.tool()
    async def gate(
        agent: str, tokens: int, key: str | None = None, session: str | None = None
    ) -> GateResult:
        """Ask before spawning a sub-agent: may `agent`, needing about `tokens`, start
        now? Same decision as the PreToolUse hook. `key` (the spawn's tool_use_id, if
        known) makes asking here and the hook's check reserve the room once."""
        return call(gate_of, agent, tokens, key, session)  # type: ignore[no-any-return]

    @server.tool()
    async def sprint_start(name: str, budget: int, session: str | None = None) -> SprintStartResult:
        """Start a sprint: a named budget period of `budget` tokens. What the agents use
        from now on counts against it (see sprint_report)."""
        return call(sprint_start_of, name, budget, session)  # type: ignore[no-any-return]

    @server.tool()
    async def sprint_report(
        name: str | None = None, session: str | None = None
    ) -> SprintReportResult:
        """The sprint's spend (the current one unless `name`): used, remaining, per
        agent, and alerts when the sprint or an agent is over budget."""
        return call(sprint_report_of, name, session)  # type: ignore[no-any-return]

    @server.tool()
    async def recall(query: str, budget: int = 500, session: str | None = None) -> RecallResult:
        """Search what compaction archived for `query`; the best items within `budget`
        tokens."""
        return call(recall_of, query, budget, session)  # type: ignore[no-any-return]

    @server.tool()
    async def preview(session: str | None = None) -> PreviewResult:
        """What the next compaction would do: tokens before and after, what goes to the
        archive, facts at risk; for a Claude Code session also what Claude Code's own
        /compact would leave and what ctxbudget would put back."""
        return call(preview_of, session)  # type: ignore[no-any-return]

    return server


def run_stdio(workspace: McpWorkspace) -> None:
    """Serve ``workspace`` over stdin/stdout until the client closes them."""
    build_server(workspace).run("stdio")
