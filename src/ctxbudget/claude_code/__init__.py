"""Everything that speaks Claude Code's language: the status line, the hooks and the
installer that registers both in Claude Code's settings.

Nothing is imported here: the status line runs every few hundred milliseconds and
loads only what it needs (``ctxbudget.claude_code.statusline``).
"""
