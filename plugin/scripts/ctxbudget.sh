#!/bin/sh
# The ctxbudget plugin's launcher: every hook, command and the MCP server run through it.
#
# It finds the ctxbudget command, in this order:
#   1. $CTXBUDGET_EXECUTABLE (a path, or a command line such as "python3 -m ctxbudget.cli");
#   2. the one `ctxbudget install --plugin` recorded: $CLAUDE_PLUGIN_DATA/executable,
#      then ${XDG_CONFIG_HOME:-~/.config}/ctxbudget/executable (one argv word a line), so
#      a ctxbudget installed in a virtual environment that is not on PATH is found;
#   3. ctxbudget on PATH.
# Where there is none, a hook prints one systemMessage line telling the user and exits 0
# (a missing tool never blocks Claude Code), a command prints the same line, and
# anything else (the MCP server) says so on stderr and exits 1.
#
# Usage:
#   ctxbudget.sh hook EVENT [OPTIONS]   a hook (hook JSON on stdin); runs as the plugin's
#                                       hook, which stands down where settings.json runs
#                                       ctxbudget's own hook for the same event
#   ctxbudget.sh cmd NAME [ARGS...]     a slash command on this session
#                                       ($CLAUDE_CODE_SESSION_ID, its live transcript)
#   ctxbudget.sh ARGS...                ctxbudget ARGS... (the MCP server: mcp)

SELF_DIR=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
INSTALL_HINT='pip install ctxbudget, then run "ctxbudget install --plugin" (it records where ctxbudget is, also in a virtual environment)'

# -- finding ctxbudget: sets the positional parameters to its argv, or returns 1 -------

# FILE (one argv word a line) is used when its first word is an executable file.
recorded() {
    [ -n "$1" ] && [ -r "$1" ] || return 1
    first=$(sed -n '1p' "$1")
    [ -n "$first" ] && [ -x "$first" ] && [ ! -d "$first" ] || {
        STALE="$1 names $first, which is not there any more"
        return 1
    }
    FOUND_FILE=$1
    return 0
}

find_ctxbudget() {
    FOUND_FILE=
    FOUND_CMD=
    STALE=
    if [ -n "${CTXBUDGET_EXECUTABLE:-}" ]; then
        FOUND_CMD=$CTXBUDGET_EXECUTABLE
        return 0
    fi
    if [ -n "${CLAUDE_PLUGIN_DATA:-}" ] && recorded "$CLAUDE_PLUGIN_DATA/executable"; then
        return 0
    fi
    config=${XDG_CONFIG_HOME:-${HOME:-}/.config}
    if recorded "$config/ctxbudget/executable"; then
        return 0
    fi
    # On PATH, but never this launcher itself (a plugin's bin/ may be put on PATH).
    found=$(command -v ctxbudget 2>/dev/null) || found=
    if [ -n "$found" ] && [ "$found" != "$SELF_DIR/ctxbudget" ] && [ "$found" != "$0" ]; then
        FOUND_CMD=$found
        return 0
    fi
    return 1
}

missing_line() {
    if [ -n "$STALE" ]; then
        printf 'ctxbudget is not found (%s): %s.' "$STALE" "$INSTALL_HINT"
    else
        printf 'ctxbudget is not installed: %s.' "$INSTALL_HINT"
    fi
}

json_string() {
    # A JSON string of $1 (backslashes, quotes and control characters escaped).
    printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/	/\\t/g' | tr '\n\r' '  '
}

# Runs ctxbudget with "$@" as its arguments (exec: its exit code is ours).
run_ctxbudget() {
    if [ -n "$FOUND_FILE" ]; then
        # The recorded words (one a line) go after the arguments, then the arguments
        # are rotated behind them: no arrays in sh.
        count=$#
        while IFS= read -r word || [ -n "$word" ]; do
            [ -n "$word" ] && set -- "$@" "$word"
        done <"$FOUND_FILE"
        while [ "$count" -gt 0 ]; do
            arg=$1
            shift
            set -- "$@" "$arg"
            count=$((count - 1))
        done
        exec "$@"
    fi
    # shellcheck disable=SC2086 # a command line in $CTXBUDGET_EXECUTABLE is split on purpose
    exec $FOUND_CMD "$@"
}

# The transcript of session $1: <claude config dir>/projects/*/$1.jsonl (the live file).
transcript_of() {
    root=${CLAUDE_CONFIG_DIR:-${HOME:-}/.claude}/projects
    for candidate in "$root"/*/"$1".jsonl; do
        if [ -f "$candidate" ]; then
            printf '%s' "$candidate"
            return 0
        fi
    done
    return 1
}

mode=${1:-}

if [ "$mode" = "hook" ]; then
    if ! find_ctxbudget; then
        cat >/dev/null 2>&1 # the hook JSON: read, so Claude Code's write never fails
        printf '{"systemMessage": "%s"}\n' "$(json_string "$(missing_line)")"
        exit 0
    fi
    shift
    event=${1:-}
    [ $# -gt 0 ] && shift
    run_ctxbudget hook "$event" --plugin "$@"
fi

if [ "$mode" = "cmd" ]; then
    shift
    name=${1:-tokens}
    [ $# -gt 0 ] && shift
    # --stdin: the command's arguments come on stdin (a slash command's $ARGUMENTS in a
    # quoted here-document: never read by the shell, so quotes, ";" and "$(...)" in
    # them stay text). A query is the whole text; options are split on blanks alone
    # (no glob, no expansion).
    query=
    if [ "${1:-}" = "--stdin" ]; then
        query=$(cat)
        set -f
        # shellcheck disable=SC2086 # split on blanks on purpose; globbing is off
        set -- $query
        set +f
    else
        query=$*
    fi
    if ! find_ctxbudget; then
        missing_line
        printf '\n'
        exit 0
    fi
    session=${CLAUDE_CODE_SESSION_ID:-}
    if [ -z "$session" ]; then
        echo "ctxbudget: no session: this command runs inside Claude Code (CLAUDE_CODE_SESSION_ID is not set)."
        exit 0
    fi
    transcript=$(transcript_of "$session") || transcript=
    case "$name" in
    tokens)
        if [ -z "$transcript" ]; then
            echo "ctxbudget: the transcript of session $session is not written yet: ask again after the first answer."
            exit 0
        fi
        run_ctxbudget tokens "$transcript" "$@" 2>&1
        ;;
    budget)
        if [ -z "$transcript" ]; then
            echo "ctxbudget: the transcript of session $session is not written yet: ask again after the first answer."
            exit 0
        fi
        run_ctxbudget budget "$transcript" "$@" 2>&1
        ;;
    recall)
        if [ $# -eq 0 ]; then
            echo "ctxbudget: what should I look for? /ctxbudget:recall QUERY"
            exit 0
        fi
        run_ctxbudget recall "$session" "$query" 2>&1
        ;;
    preview)
        if [ -z "$transcript" ]; then
            echo "ctxbudget: the transcript of session $session is not written yet: nothing to compact."
            exit 0
        fi
        # The very preview "/compact --dry-run" shows: the PreCompact hook on a dry run.
        printf '{"session_id": "%s", "transcript_path": "%s", "cwd": "%s", "hook_event_name": "PreCompact", "trigger": "manual", "custom_instructions": "--dry-run"}' \
            "$(json_string "$session")" "$(json_string "$transcript")" "$(json_string "$PWD")" |
            run_ctxbudget hook pre-compact 2>&1
        exit 0
        ;;
    *)
        echo "ctxbudget: unknown command $name (tokens, budget, recall, preview)"
        exit 0
        ;;
    esac
fi

if ! find_ctxbudget; then
    missing_line >&2
    printf '\n' >&2
    exit 1
fi
run_ctxbudget "$@"
