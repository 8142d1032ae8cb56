"""``ctxbudget compact``: the compaction command of the CLI (``cli.recall`` has what
undoes it and searches what it took out).

Thin like the rest of the CLI: parse, call the session, render. ``cli.app`` registers
the command with ``register``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..archive import Compaction
from ..compaction import CompactionPolicy
from ..compaction.summarize import current_task
from ..errors import CompactionError
from ..level import shown_percent
from ..model import Kind
from ..render import pct
from ..sources import claude_projects_dir
from .common import PROGRESS_FROM_ITEMS, UsageError, count, progress

if TYPE_CHECKING:
    from ..session import Session
    from ..tracker import Tracker

OpenSource = Callable[["Tracker", str | None, argparse.Namespace], "Session"]
RULE = "━" * 60


def register(commands: Any, policy_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    compact = commands.add_parser(
        "compact",
        help="compact a session: free tokens, keep every fact, archive the rest",
        description="Compact a session's context: clear old tool results, shorten file reads "
        "and searches, drop duplicates, condense sub-agent reports, summarize the middle, "
        "then check that every fact (requirement ids, decisions, questions, files, todos, "
        "requests…) survived. Applied as a new context version; the removed items stay in "
        'the archive ("ctxbudget recall", "ctxbudget restore"). SOURCE: a transcript or '
        "messages file, or a stored session id; without it, the newest Claude Code session "
        "under ~/.claude/projects. Exit codes: 0 a compaction was applied (or "
        "planned, with --dry-run), whatever the target; 1 nothing could be compacted (or "
        "--if-needed alerted instead); 2 bad input or a failure (nothing changed).",
    )
    compact.add_argument("source", nargs="?", metavar="SOURCE")
    compact.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    compact.add_argument(
        "--if-needed",
        action="store_true",
        help="only when the trigger is reached (the critical threshold, or --trigger); for "
        "hooks and cron: never loops, alerts instead when a pass would free too little",
    )
    compact.add_argument(
        "--trigger",
        type=float,
        metavar="PCT",
        help="with --if-needed: compact from this share of the window",
    )
    target = compact.add_mutually_exclusive_group()
    target.add_argument(
        "--ratio",
        type=float,
        metavar="R",
        help="the transcript (what compaction can change) becomes 1/R of itself; the "
        "provider's fixed overhead (system prompt, tools) is shown apart",
    )
    target.add_argument(
        "--target", type=int, metavar="TOKENS", help="aim at this many tokens (whole context)"
    )
    target.add_argument(
        "--target-percent", type=float, metavar="P", help="aim at P%% of the window (default 60)"
    )
    compact.add_argument("--summarizer", choices=["extractive", "llm"], default="extractive")
    compact.add_argument(
        "--keep-first", type=count, default=1, metavar="M", help="first exchanges kept whole (1)"
    )
    compact.add_argument(
        "--keep-last",
        type=count,
        metavar="N",
        help="last exchanges kept whole, exactly N (default: 5, fewer when the target needs it)",
    )
    compact.add_argument(
        "--keep-results",
        type=count,
        default=3,
        metavar="K",
        help="latest tool results kept whole (3)",
    )
    compact.add_argument(
        "--exclude-tool",
        action="append",
        default=[],
        metavar="NAME",
        help="never clear this tool's results (repeatable)",
    )
    compact.add_argument(
        "--on-missing-facts",
        choices=["restore", "rollback"],
        default="restore",
        help="put missing facts back as a ledger (default) or refuse",
    )
    compact.add_argument("--output", metavar="FILE", help="also write the compacted context")
    compact.add_argument(
        "--fork",
        action="store_true",
        help="for a Claude Code transcript: write the compacted context as a new Claude Code "
        "session beside it and print the command that resumes it (claude --resume NEW_ID); "
        "the running session itself cannot be changed from outside",
    )
    compact.add_argument(
        "--format",
        choices=["same", "messages", "text"],
        default="same",
        help="format of --output: the input's own, an OpenAI message list, or plain text",
    )
    compact.add_argument("--json", action="store_true")
    policy_flags(compact)


def _policy(args: argparse.Namespace) -> CompactionPolicy:
    return CompactionPolicy(
        target_tokens=args.target,
        target_ratio=args.ratio,
        target_percent=args.target_percent if args.target_percent is not None else 60.0,
        keep_first=args.keep_first,
        keep_last=5 if args.keep_last is None else args.keep_last,
        shrink_kept=args.keep_last is None,
        keep_results=args.keep_results,
        excluded_tools=tuple(args.exclude_tool),
        summarizer=args.summarizer,
        on_missing_facts=args.on_missing_facts,
        trigger_percent=getattr(args, "trigger", None),
    )


def _summarizer(args: argparse.Namespace) -> Any:
    if args.summarizer != "llm":
        return None
    from ..compaction.llm import llm_summarizer

    return llm_summarizer()


def cmd_compact(args: argparse.Namespace, tracker: Tracker, open_source: OpenSource) -> int:
    session = open_source(tracker, args.source, args)
    if not session.items:  # nothing could be compacted: exit 1, as with nothing to do
        message = "Nothing to compact: the session holds no conversation."
        if args.json:
            print(json.dumps({"applied": False, "dry_run": bool(args.dry_run), "message": message}))
        else:
            print(message)
        return 1
    if len(session.items) >= PROGRESS_FROM_ITEMS:
        progress(f"planning the compaction of {len(session.items):,} items")
    policy = _policy(args)
    summarizer = _summarizer(args)
    transcript = session.transcript
    claude_code = transcript is not None and transcript.format == "claude-code"
    if args.fork and not (claude_code and transcript is not None and transcript.path):
        raise UsageError(
            "--fork needs a Claude Code transcript file as SOURCE (a .jsonl under "
            "~/.claude/projects): it writes the compacted session beside it"
        )
    if args.fork and transcript is not None and transcript.path:
        from ..claude_code.fork import check_forkable

        check_forkable(Path(str(transcript.path)))  # before anything is applied
    if args.output:  # before anything is applied
        _check_output(Path(args.output), transcript.path if transcript is not None else None)
    if args.if_needed and not args.dry_run:
        done = session.auto_compact(policy, summarizer)
        if done is None:
            status = session.status()
            trigger = policy.trigger_percent or session.policy.critical_percent
            why = (
                f"under the trigger ({trigger:g}%)"
                if status.percent < trigger
                else f"already under the target ({policy.target_percent:g}% of the window)"
            )
            message = (
                session.last_alert or f"Not needed: {pct(status.percent)} of the window, {why}."
            )
            if args.json:
                print(
                    json.dumps(
                        {
                            "applied": False,
                            "percent": shown_percent(status.percent),
                            "alert": session.last_alert,
                            "message": message,
                        },
                        indent=2,
                    )
                )
            else:
                print(message)
            return 1 if session.last_alert else 0
        compaction = done
    else:
        compaction = session.plan_compaction(policy, summarizer)
        if not args.dry_run and compaction.result.actions:
            if len(session.items) >= PROGRESS_FROM_ITEMS:
                progress(
                    f"storing the session and its compaction ({len(session.items):,} items; "
                    "one transaction: Ctrl-C takes effect at its end, and nothing is kept)"
                )
            # recording first can change the version: plan against it; a file is compacted
            # from its own context, even where the store holds a compacted copy of it
            session.save(keep_transcript_context=session.transcript is not None)
            if compaction.version_from != session.version:
                compaction = session.plan_compaction(policy, summarizer)
            compaction = session.apply_compaction(compaction)
            if session.overtook_compacted_version is not None and not args.json:
                print(
                    f"The store already holds a compacted version of this session "
                    f"(version {session.overtook_compacted_version}): compacted the file's "
                    f"own context instead; to compact the stored version: "
                    f'"ctxbudget compact {session.id[:12]}"',
                    file=sys.stderr,
                )
    if (
        args.keep_last is not None
        and compaction.result.actions
        and compaction.used_after > compaction.target
    ):
        compaction.result.notes.append(
            f"--keep-last {args.keep_last} was honoured and the target missed: without "
            "--keep-last the kept exchanges shrink as far as the target needs"
        )
    if args.output:
        from ..sources.writing import write

        transcript = session.transcript
        items = compaction.result.items if compaction.result.actions else session.items
        write(
            items,
            args.format,
            transcript.format if transcript else "messages",
            args.output,
            model=session.policy.model,
            session_id=session.id,
            carried=compaction.carried,
        )
    fork = None
    if args.fork and not args.dry_run and compaction.result.actions and transcript is not None:
        from ..claude_code.fork import fork_session

        fork = fork_session(
            Path(str(transcript.path)),
            compaction.result.items,
            model=session.policy.model,
            carried=compaction.carried,
        )
    if args.json:
        out = compaction.to_dict()
        out["session_id"] = session.id if not args.dry_run else None
        out["dry_run"] = bool(args.dry_run)
        out["window"] = session.policy.window
        if fork is not None:
            out["fork"] = {
                "session_id": fork.session_id,
                "path": str(fork.path),
                "cwd": fork.cwd,
                "resume": fork.resume_command,
            }
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return _exit(compaction)
    window = session.policy.window
    # nothing to do reads the same planned or applied (a plan of no action is no plan)
    planned = args.dry_run and compaction.result.actions
    print(render_plan(compaction, window) if planned else render_done(compaction, window))
    if args.output:
        print(f"Wrote the compacted context to {args.output} ({args.format})")
        print(_written_line(compaction))
    if fork is not None:
        where = f" (from {fork.cwd})" if fork.cwd else ""
        print(f"Forked the compacted session: {fork.path}")
        print(f"Resume it in Claude Code{where}: {fork.resume_command}")
        if not _under_claude_projects(fork.path):
            print(
                "Note: Claude Code resumes sessions from its projects folder "
                f"({claude_projects_dir()}/<project>/): this fork is outside it, so copy "
                "it there (the project's folder) before resuming."
            )
        print("The original session is unchanged.")
    elif claude_code and not args.dry_run and compaction.result.actions:
        print(
            "Claude Code's own session is unchanged (Claude Code holds its context): add "
            "--fork to write the compacted session and resume it (claude --resume NEW_ID), "
            "or run /compact in Claude Code (the plugin puts back the facts its summary drops)."
        )
    if not args.dry_run and compaction.applied_at is not None and _keeps(tracker):
        print(
            f'Session {session.id}: undo with "ctxbudget restore {session.id[:12]}", '
            f'search the archive with "ctxbudget recall {session.id[:12]} QUERY".'
        )
    return _exit(compaction)


def _exit(compaction: Compaction) -> int:
    """0 when a compaction was applied or planned, whatever the target (the output says
    when it was missed); 1 when nothing could be compacted."""
    return 0 if compaction.result.actions else 1


def _keeps(tracker: Tracker) -> bool:
    """Whether the store outlives this command (``memory://`` and SQLite's ``:memory:``
    do not: no restore)."""
    url = tracker.store.url
    return not (url.startswith("memory:") or url.endswith(":memory:"))


def _overhead_line(c: Compaction) -> list[str]:
    if c.overhead <= 0:
        return []
    return [
        f"Fixed:  {c.overhead:>9,} more the provider adds: system prompt and tools; "
        "compaction cannot change them"
    ]


def _written_line(c: Compaction) -> str:
    """What a file written with --output holds, and what the provider adds to it."""
    held = max(0, c.used_after - c.overhead)
    if c.overhead <= 0:
        return f"It holds the whole context: ~{held:,} tokens (After)."
    return (
        f"It holds the transcript only, ~{held:,} tokens; the provider adds the system "
        f"prompt and tools (~{c.overhead:,}) when it is sent: {c.used_after:,} in all (After)."
    )


def _under_claude_projects(path: Path) -> bool:
    return claude_projects_dir().resolve() in path.resolve().parents


def _check_output(path: Path, source: str | None) -> None:
    if source is not None and path.exists() and path.resolve() == Path(source).resolve():
        raise CompactionError(
            f"--output {path} is the file being compacted: name another file (the "
            "original stays what recall and restore come back to)"
        )
    if path.is_dir():
        raise CompactionError(f"--output {path} is a directory: name a file")
    if not path.parent.is_dir():
        raise CompactionError(f"--output {path}: the directory {path.parent} does not exist")


def _pct(tokens: int, window: int) -> str:
    return pct(100 * tokens / window)


def render_plan(c: Compaction, window: int) -> str:
    r = c.result
    lines = [RULE, "COMPACTION PLAN (dry run: nothing changed)", RULE]
    lines.append(f"Before: {c.used_before:>9,} tokens ({_pct(c.used_before, window)})")
    lines.append(f"Target: {c.target:>9,} tokens ({_pct(c.target, window)})")
    lines.append(
        f"After:  {c.used_after:>9,} tokens ({_pct(c.used_after, window)})"
        + ("" if c.used_after <= c.target else "   (target not reached)")
    )
    lines.append(f"Freed:  {c.freed:>9,} tokens")
    lines.extend(_overhead_line(c))
    lines.append("")
    if r.actions:
        lines.append(f"  {'step':<20} {'items':>6} {'freed':>10}")
        for a in r.actions:
            lines.append(f"  {a.step:<20} {len(a.items):>6} {a.tokens_freed:>10,}  {a.description}")
    for note in r.notes:
        lines.append(f"Note: {note}")
    lines.append("")
    lines.append(
        f"Facts: {r.facts.kept}/{r.facts.total} kept "
        f"({r.facts.retention:.0%} retention)"
        + (f"; {len(r.facts.restored)} at risk, put back by the ledger" if r.facts.restored else "")
        + (
            f"; {len(r.facts.archived)} minor (names, numbers, requests) left in the archive"
            if r.facts.archived
            else ""
        )
    )
    for fact in r.facts.missing[:12]:
        where = "archive only" if fact in r.facts.archived else "LOST"
        lines.append(f"  leaves the context ({where}): {fact.kind}: {fact.key[:70]}")
    for fact in r.facts.restored[:6]:
        lines.append(f"  at risk, put back by the ledger: {fact.kind}: {fact.key[:60]}")
    if len(r.facts.restored) > 6:
        lines.append(f"  … and {len(r.facts.restored) - 6} more put back")
    lines.append(RULE)
    return "\n".join(lines)


def render_done(c: Compaction, window: int) -> str:
    """The compaction summary printed after ``ctxbudget compact``."""
    r = c.result
    if not r.actions:
        return "Nothing to compact: " + ("; ".join(r.notes) or "no action applies")
    counts = r.facts.by_kind
    # The latest request may be a nudge ("go on") whose task was summarized away:
    # look through what was removed too (it came before what was kept).
    task = current_task([*r.removed, *r.items])
    agents = sorted(
        {i.agent for i in r.removed if i.agent != "main"}
        | {i.tool for i in r.removed if i.kind is Kind.AGENT_REPORT and i.tool}
    )
    lines = [
        RULE,
        "✅ COMPACTION COMPLETE",
        RULE,
        f"Before: {c.used_before:,} tokens ({_pct(c.used_before, window)})",
        f"After:  {c.used_after:,} tokens ({_pct(c.used_after, window)})",
        f"Freed:  {c.freed:,} tokens ({len(r.removed):,} items archived, "
        f"version {c.version_from} → {c.version_to})",
        *_overhead_line(c),
        "",
        "Summary of preserved context:",
    ]
    if task:
        lines.append(f"• Current task: {' '.join(task.split())[:100]}")
    for kind, label in (
        ("file", "Files"),
        ("requirement", "Requirements"),
        ("decision", "Key decisions"),
        ("question", "Open questions"),
        ("todo", "Todo items"),
        ("request", "User requests"),
    ):
        if kind in counts:
            kept, total = counts[kind]
            lines.append(f"• {label}: {kept}/{total} kept")
    if agents:
        lines.append(f"• Agents completed: {', '.join(agents[:6])}")
    lines.append(
        f"• Information retention: {r.facts.retention:.0%} of {r.facts.total} facts"
        + (
            f" ({len(r.facts.archived)} minor ones in the archive: ctxbudget recall)"
            if r.facts.archived
            else ""
        )
    )
    if c.used_after > c.target:
        lines.append("")
        lines.append(f"⚠️ Target of {c.target:,} tokens not reached.")
    for note in r.notes:
        lines.append(f"Note: {note}")
    lines.extend(["", "Ready to continue working.", RULE])
    return "\n".join(lines)
