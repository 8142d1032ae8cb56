"""``ctxbudget gate`` and ``ctxbudget budget``: the spawn gate and the budget report.

``gate`` exits 0 when the agent may start (also after a compaction it applied), 3 when
it is denied, with the reason on stderr, so a hook or script can act on the code. On a
stored session an allowance is a reservation in the store, taken atomically: gates
run at once never allow more than fits (``ctxbudget.spawning.gate``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..budget.allocation import FIXED_LABEL
from ..budgeting import budget_total
from ..level import shown_percent
from ..phasing import phase_usage
from ..render import status_line
from ..spawning import agent_budgets, agent_usage
from .common import compact_command

if TYPE_CHECKING:
    from ..session import Session
    from ..tracker import Tracker

OpenSource = Callable[["Tracker", str | None, argparse.Namespace], "Session"]
EXIT_DENY = 3


def register(commands: Any, policy_flags: Callable[[argparse.ArgumentParser], None]) -> None:
    gate = commands.add_parser(
        "gate",
        help="may a new sub-agent start? exit 0 allow, 3 deny",
        description="Decide whether an agent may start in this session's window: allow, "
        "allow after compaction (applied to a stored session), or deny (at the blocked "
        "threshold, 95% by default, or over the agent's own budget). Exit 0 allow, 3 deny; "
        "the reason goes to stderr. SESSION: a stored session id, or any source "
        '"ctxbudget tokens" reads.',
    )
    gate.add_argument("session", metavar="SESSION")
    gate.add_argument("--agent", required=True, metavar="NAME", help="the agent to start")
    gate.add_argument(
        "--tokens",
        required=True,
        type=int,
        metavar="N",
        help="tokens the agent is expected to need",
    )
    gate.add_argument("--no-compact", action="store_true", help="decide without compacting first")
    gate.add_argument(
        "--agent-budget",
        type=int,
        metavar="N",
        help="the agent's own budget (stored with --record)",
    )
    gate.add_argument(
        "--key",
        metavar="ID",
        help="what the spawn is for (its tool_use_id): asked twice, reserved once",
    )
    gate.add_argument("--record", action="store_true", help="store the session and the decision")
    gate.add_argument("--json", action="store_true")
    policy_flags(gate)

    budget = commands.add_parser(
        "budget",
        help="allocation and utilization by component, agent and phase",
        description="The budget report of a session: the window split between components "
        "(the default allocation shares unless adjusted), what each uses (status low / "
        "moderate / high / critical), usage per agent and per phase. SESSION: a stored "
        "session id or any source.",
    )
    budget.add_argument("session", metavar="SESSION")
    budget.add_argument(
        "--adjust",
        action="store_true",
        help="adjust the shares from allocation history (stored sessions)",
    )
    budget.add_argument("--json", action="store_true")
    policy_flags(budget)


def cmd_gate(args: argparse.Namespace, tracker: Tracker, open_source: OpenSource) -> int:
    session = open_source(tracker, args.session, args)
    if args.record:
        session.save()
    if args.agent_budget is not None:
        session.set_agent_budget(args.agent, args.agent_budget)
    # A stored session's allowance is a reservation (see "Budgets" in the README).
    decision = session.gate(args.agent, args.tokens, compact=not args.no_compact, key=args.key)
    # Name the command to run with this very source, store and policy, not a placeholder.
    reason = decision.reason.replace(
        '"ctxbudget compact SESSION"', f'"{compact_command(args, args.session)}"'
    )
    if args.json:
        print(json.dumps({**decision.to_dict(), "reason": reason}, indent=2))
    print(f"ctxbudget gate: {decision.outcome}: {reason}", file=sys.stderr)
    return 0 if decision.allowed else EXIT_DENY


def cmd_budget(args: argparse.Namespace, tracker: Tracker, open_source: OpenSource) -> int:
    session = open_source(tracker, args.session, args)
    adjustment = session.adjust_shares(apply=True) if args.adjust else None
    report = session.budget_report()
    status = session.status()
    overhead = status.breakdown.unattributed
    agents = agent_usage(session)
    budgets = agent_budgets(session)
    phases = phase_usage(session)
    if args.json:
        out = {
            "session_id": session.id,
            "total_tokens": budget_total(session),
            # the figure every surface shows (ctxbudget tokens, the status line, hooks)
            "used_tokens": status.used_tokens,
            "max_tokens": status.max_tokens,
            "percent": shown_percent(status.percent),
            # fixed: no component holds it, they share the rest of total_tokens
            "provider_overhead": {"tokens": overhead, "estimated": status.overhead_estimated},
            **_rounded(report.to_dict()),
            "agents": {
                name: {"tokens": tokens, "budget": budgets.get(name)}
                for name, tokens in agents.items()
            },
            "phases": {
                name: {"tokens": tokens, "budget": session.budget.phase_budgets.get(name)}
                for name, tokens in phases.items()
            },
            "adjustment": adjustment.to_dict() if adjustment else None,
        }
        print(json.dumps(out, indent=2))
        return 0
    total = budget_total(session)
    if report.fixed_tokens:
        shared = total - report.fixed_tokens
        print(
            f"Budget of session {session.id} ({total:,} tokens: {report.fixed_tokens:,} the "
            f"provider adds, {max(0, shared):,} for the components to share)"
        )
    else:
        print(f"Budget of session {session.id} ({total:,} tokens to share)")
    print(status_line(status) + "\n")
    print(report.render())
    if report.fixed_tokens:
        estimated = ", estimated" if status.overhead_estimated else ""
        print(
            f"{FIXED_LABEL}: the system prompt and tools{estimated}, which no component "
            "holds and no compaction changes"
        )
    # what each agent holds of this context (they add up to the overall with the
    # overhead), then each sub-agent's own context, apart: it is not in this one. A
    # budget is of the two together (``agent_usage``).
    subagents = {sub.name for sub in status.breakdown.subagents}
    print("\nBy agent, in this context")
    for name, tokens in sorted(status.breakdown.agent.items(), key=lambda kv: -kv[1]):
        limit = budgets.get(name) if name not in subagents else None
        print(f"  {name:<32} {tokens:>9,}" + (f"  of {limit:,}" if limit else ""))
    if overhead:
        print(f"  {'(provider overhead, no agent)':<32} {overhead:>9,}")
    if subagents:
        print("\nSub-agents (their own contexts, not in this one)")
        for name in sorted(subagents, key=lambda n: -agents.get(n, 0)):
            limit = budgets.get(name)
            print(f"  {name:<32} {agents[name]:>9,}" + (f"  of {limit:,}" if limit else ""))
    if phases:
        print("\nBy phase")
        for name, tokens in phases.items():
            limit = session.budget.phase_budgets.get(name)
            print(f"  {name:<32} {tokens:>9,}" + (f"  of {limit:,}" if limit else ""))
    if adjustment is not None:
        changes = adjustment.to_dict().get("changes") or []
        if not changes:
            print("\nShares unchanged: the allocation history gives no reason to move them.")
        else:
            print("\nShares adjusted from the allocation history:")
            for change in changes:
                print(
                    f"  {change['component']:<20} {change['before']:6.1%} → "
                    f"{change['after']:6.1%}  {change['reason']}"
                )
    return 0


def _rounded(value: Any) -> Any:
    """Floats to two decimals, for people reading the JSON."""
    if isinstance(value, float):
        return round(value, 2)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
