"""A LangGraph agent kept within a small context window by ctxbudget. No network, no key.

    pip install "ctxbudget[langgraph]"     # langgraph + langchain-core
    python examples/langgraph_agent.py     # --prebuilt, --middleware, --mode replace

The chat model is scripted (it answers each question with one call to a notes tool,
then a short answer) but reports usage as a provider does: the input tokens of the
request it was actually sent, counted with o200k_base, plus a fixed share for the
system prompt and the tool's schema. The session's window is 3,000 tokens, so the
conversation outgrows it after a few turns; the budget hook then compacts what the
model sees, and the status line, the trigger and the reported usage stay in step.

The agent is LangChain v1's ``create_agent`` with the hook as middleware
(``hook.middleware()``) when the ``langchain`` package is installed, else LangGraph's
prebuilt ``create_react_agent`` with the hook as its ``pre_model_hook``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import Field

from ctxbudget import Session, Tracker, get_counter
from ctxbudget.compaction import CompactionPolicy
from ctxbudget.integrations.langgraph import BudgetHook, UsageCallback, budget_hook
from ctxbudget.render import status_line

WINDOW = 3_000
SYSTEM = "You are the project's analyst. Look facts up in the notes before answering."
# What a provider counts besides the messages: the tool's schema, the request framing.
SCHEMA_TOKENS = 60
PER_MESSAGE = 4
QUESTIONS = [
    "What do the notes say about authentication?",
    "And about billing?",
    "What is required for integration?",
    "Summarize what we know on reporting.",
    "What about analytics?",
    "Which decisions are still open on retention?",
    "What did we decide about auditing?",
    "List the constraints on deployment.",
    "Anything on monitoring?",
    "And finally, onboarding?",
]
_COUNTER = get_counter("o200k_base")


@tool
def search_notes(query: str) -> str:
    """Search the project notes."""
    topic = query.split()[-1].strip("?.").lower()
    lines = [f"Notes matching {topic!r} (7 hits):"]
    for n in range(1, 8):
        req = f"REQ-{sum(map(ord, topic)) % 90 + n}"
        lines.append(
            f"- {req}: the {topic} component must handle case {n} within {50 * n} ms, log "
            f"every failure with its tenant id, and expose the outcome on the {topic} "
            f"dashboard (owner: team {chr(64 + n)}, reviewed in sprint {10 + n})."
        )
    return "\n".join(lines)


def _tokens(message: BaseMessage) -> int:
    text = message.text if isinstance(message.content, list) else str(message.content)
    calls = getattr(message, "tool_calls", None) or []
    return (
        _COUNTER.count(text)
        + sum(_COUNTER.count(f"{c['name']} {c['args']}") for c in calls)
        + PER_MESSAGE
    )


class ScriptedModel(BaseChatModel):
    """Asks the notes tool once per question, then answers; reports real input sizes."""

    sent: list[int] = Field(default_factory=list)  # how many messages each request carried

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[Any, AIMessage]:
        return self  # the script already knows its one tool

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.sent.append(len(messages))
        last = messages[-1]
        if isinstance(last, HumanMessage):
            topic = str(last.content).split()[-1].strip("?.")
            reply = AIMessage(
                content="",
                tool_calls=[
                    {
                        "name": "search_notes",
                        "args": {"query": f"notes on {topic}"},
                        "id": f"call_{len(self.sent)}",
                    }
                ],
            )
        else:
            found = str(last.content).splitlines()[1:3] if isinstance(last, ToolMessage) else []
            reply = AIMessage(content="From the notes:\n" + "\n".join(found))
        prompt = SCHEMA_TOKENS + sum(_tokens(m) for m in messages)
        output = _tokens(reply)
        reply.usage_metadata = {
            "input_tokens": prompt,
            "output_tokens": output,
            "total_tokens": prompt + output,
            # the system prompt and tool schema are a cached prefix, as providers report
            "input_token_details": {"cache_read": SCHEMA_TOKENS + _tokens(messages[0])},
        }
        return ChatResult(generations=[ChatGeneration(message=reply)])


def build_agent(
    kind: str, session: Session, model: ScriptedModel, mode: Literal["llm_input", "replace"]
) -> tuple[Any, BudgetHook]:
    """The agent and its BudgetHook (the hook counts the compactions it made)."""
    hook = budget_hook(session, compaction=CompactionPolicy(keep_last=2, keep_results=2), mode=mode)
    if kind == "middleware":
        from langchain.agents import create_agent

        agent = create_agent(
            model,
            [search_notes],
            system_prompt=SYSTEM,
            middleware=[hook.middleware()],
            checkpointer=InMemorySaver(),
        )
        return agent, hook
    from langgraph.prebuilt import create_react_agent
    from langgraph.warnings import LangGraphDeprecatedSinceV10

    with warnings.catch_warnings():
        # LangGraph 1.x points to langchain's create_agent (the --middleware path);
        # create_react_agent itself stays supported until LangGraph 2.0.
        warnings.simplefilter("ignore", LangGraphDeprecatedSinceV10)
        agent = create_react_agent(
            model,
            [search_notes],
            prompt=SYSTEM,
            pre_model_hook=hook,
            checkpointer=InMemorySaver(),
        )
    return agent, hook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--prebuilt", action="store_true", help="create_react_agent + budget_hook")
    which.add_argument("--middleware", action="store_true", help="create_agent + middleware")
    parser.add_argument("--mode", choices=["llm_input", "replace"], default="llm_input")
    parser.add_argument("--turns", type=int, default=len(QUESTIONS))
    args = parser.parse_args(argv)
    try:
        import langchain.agents  # noqa: F401

        has_langchain = True
    except ImportError:
        has_langchain = False
    if args.middleware and not has_langchain:
        parser.error('--middleware needs the langchain package: pip install "langchain>=1.0"')
    kind = "middleware" if args.middleware or (has_langchain and not args.prebuilt) else "prebuilt"

    session = Tracker(store="memory://").session(model="gpt-4o", window=WINDOW)
    usage = UsageCallback(session)  # on the model: only its calls are recorded
    model = ScriptedModel(callbacks=[usage])
    mode: Literal["llm_input", "replace"] = "replace" if args.mode == "replace" else "llm_input"
    agent, hook = build_agent(kind, session, model, mode)
    api = (
        "create_agent(middleware=[hook.middleware()])"
        if kind == "middleware"
        else "create_react_agent(pre_model_hook=hook)"
    )
    print(f"agent: {api}, mode={mode}, window {WINDOW:,} tokens, gpt-4o (scripted)")
    config = {"configurable": {"thread_id": "demo"}}
    compactions = 0
    state: dict[str, Any] = {}
    for turn, question in zip(itertools.count(1), QUESTIONS[: args.turns]):
        state = agent.invoke({"messages": [HumanMessage(question)]}, config)
        hook.sync(state["messages"])  # the final answer is context for the next turn
        print(f"turn {turn}: {status_line(session.status())}")
        done = hook.last_compaction
        if hook.compactions > compactions and done is not None:
            compactions = hook.compactions
            print(
                f"  compacted before the model call: {done.used_before:,} → "
                f"{done.used_after:,} tokens ({', '.join(a.step for a in done.result.actions)})"
            )
    reported = usage.last_usage.context_tokens if usage.last_usage else 0
    print(
        f"graph history: {len(state['messages'])} messages; the model's last request: "
        f"{model.sent[-1]} messages, {reported:,} input tokens reported; "
        f"{compactions} compaction(s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
