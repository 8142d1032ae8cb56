"""``ctxbudget mcp``: serve ctxbudget's tools to MCP clients over stdio.

The server itself is ``ctxbudget.claude_code.mcp_server``; this module parses the
flags and starts it. Without the optional ``mcp`` SDK the command prints the install
hint (``pip install "ctxbudget[mcp]"``) and exits 2.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from .common import EXIT_OK

if TYPE_CHECKING:
    from ..tracker import Tracker


def register(commands: Any) -> None:
    """Add ``mcp`` to the ``ctxbudget`` subcommands."""
    mcp = commands.add_parser(
        "mcp",
        help="serve status, gate, sprint budgets and recall to agents (MCP, stdio)",
        description="Run ctxbudget's MCP server on stdin/stdout (needs the extra: "
        'pip install "ctxbudget[mcp]"). Tools: status, breakdown, history, gate, '
        "sprint_start, sprint_report, recall, preview. A tool's session is its `session` "
        "argument, else --session, else $CLAUDE_CODE_SESSION_ID, else the newest Claude "
        "Code transcript of the working directory's project.",
    )
    mcp.add_argument(
        "--session",
        metavar="SESSION",
        help="the default session: a transcript path, a Claude Code session id or a stored id",
    )


def cmd_mcp(args: argparse.Namespace, tracker: Tracker) -> int:
    """Serve until the client closes stdin."""
    from ..claude_code.mcp_server import McpWorkspace, require_mcp, run_stdio

    require_mcp()  # the install hint, before anything starts
    run_stdio(McpWorkspace(tracker, session=args.session))
    return EXIT_OK
