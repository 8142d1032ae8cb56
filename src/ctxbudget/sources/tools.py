"""Tool names, in one place: which tools start sub-agents, read, search, edit or plan.

Two kinds of sets. Claude Code's own tool names are matched exactly (``Task``,
``Read``…). The lower-case sets are heuristics for any harness: the messages reader
matches them on a tool's lower-cased name or on the words of it (``read_file``,
``ReadFile`` and ``mcp__fs__read_file`` all give "read"), so tools never seen before
still land well. Where two modules need different members (Claude Code's edit tools
alone, or every harness's), each gets a set of its own name here.
"""

from __future__ import annotations

__all__ = [
    "AGENT_TOOLS",
    "AGENT_TOOL_NAMES",
    "EDIT_TOOLS",
    "FILE_EDITORS",
    "FILE_READERS",
    "FILE_TOOLS",
    "QUIET_TOOLS",
    "READ_TOOLS",
    "READ_WORDS",
    "SEARCH_TOOLS",
    "SEARCH_WORDS",
    "SHELL_TOOLS",
    "TODO_TOOLS",
    "is_ctxbudget_tool",
]

# -- Claude Code's tools (exact names) --------------------------------------------------

#: Tools that start a sub-agent: ``Task``, renamed ``Agent`` in newer versions. The
#: installer's PreToolUse matcher ``Task|Agent`` names the same two.
AGENT_TOOLS = frozenset({"Task", "Agent"})
#: Tools whose result is a file's content.
READ_TOOLS = frozenset({"Read", "NotebookRead"})
#: Tools whose result is a search: code, file names, directories, the web.
SEARCH_TOOLS = frozenset({"Grep", "Glob", "LS", "WebSearch", "WebFetch", "ToolSearch"})
#: Tools that write or change a file.
EDIT_TOOLS = frozenset({"Edit", "MultiEdit", "Write", "NotebookEdit"})
#: Tools that name a file in their input: the readers and the editors.
FILE_TOOLS = READ_TOOLS | EDIT_TOOLS
#: Todo-list tools (Claude Code's, and the snake_case spelling of other harnesses).
TODO_TOOLS = frozenset({"TodoWrite", "todo_write", "TodoRead"})


def is_ctxbudget_tool(name: str | None) -> bool:
    """One of ctxbudget's own MCP tools (``mcp__plugin_ctxbudget_ctxbudget__status``,
    ``mcp__ctxbudget__gate``): its result is a report on the context, not its content."""
    if not name or not name.startswith("mcp__"):
        return False
    return "ctxbudget" in name.split("__")[1]


#: Tools whose results echo file content or search hits, where "Error" is code, and
#: whose own errors ("String to replace not found") are the agent's slips, not facts.
#: Not every search tool: ``ToolSearch`` results are not among them.
QUIET_TOOLS = (
    EDIT_TOOLS
    | READ_TOOLS
    | frozenset({"Grep", "Glob", "LS", "TodoWrite", "WebFetch", "WebSearch"})
)

# -- any harness ------------------------------------------------------------------------

#: Tools that read a file: Claude Code's, and the file viewers of SWE-agent-style
#: harnesses (``open``, ``view``, ``read_file``).
FILE_READERS = READ_TOOLS | frozenset({"open", "read_file", "view"})
#: Tools that change a file: Claude Code's, and ``str_replace_editor`` / ``edit``.
FILE_EDITORS = EDIT_TOOLS | frozenset({"str_replace_editor", "edit"})
#: Lower-cased tool names that start a sub-agent, in any harness.
AGENT_TOOL_NAMES = frozenset(
    {"task", "agent", "dispatch_agent", "subagent", "sub_agent", "spawn_agent"}
)
#: Lower-cased names of shell tools: their ``command`` says what the call does.
SHELL_TOOLS = frozenset({"bash", "shell", "sh", "terminal", "run_command", "execute_command"})
#: Words of a tool's name (or of the programs a shell command runs) that make its
#: result a search.
SEARCH_WORDS = frozenset({"search", "grep", "glob", "find", "rg", "ripgrep", "locate"})
#: Words that make its result a file's content.
READ_WORDS = frozenset({"read", "cat", "view", "open", "head", "tail", "less", "goto", "scroll"})
