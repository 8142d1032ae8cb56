"""The LLM summarizer: step 5 of the pipeline through Anthropic or an OpenAI-compatible API.

``llm_summarizer()`` returns a callable with the engine's summarizer signature
``(items, facts, budget) -> str``. It renders the items as a plain-text transcript
(``[role/kind tool] text``, long tool outputs clipped), asks the model for a structured
summary with the same sections as the extractive summarizer, under the budget, and
hands it the fact ledger as a MUST-KEEP list. A transcript larger than the input limit
is summarized map-reduce: chunks of whole topic segments (a segment starts at each user
request) are summarized one by one, then the partial summaries are merged.

Settings come from the arguments, else from the environment:

    CTXBUDGET_LLM_PROVIDER    anthropic | openai (default: anthropic when
                              ANTHROPIC_API_KEY is set, else openai when OPENAI_API_KEY is)
    CTXBUDGET_LLM_MODEL       default claude-haiku-4-5 / gpt-4o-mini
    CTXBUDGET_LLM_BASE_URL    any Anthropic- or OpenAI-compatible endpoint (vLLM, Ollama…),
                              written the way the SDK expects it (OpenAI: ending in /v1)
    CTXBUDGET_LLM_API_KEY     else ANTHROPIC_API_KEY / OPENAI_API_KEY
    CTXBUDGET_LLM_INPUT_CHARS transcript characters per request (default 150,000)

The SDKs (``pip install "ctxbudget[llm]"``) are imported only when a summarizer is
built. Any SDK error (connection, authentication, rate limit once retries are spent,
a malformed or empty answer) becomes a ``CompactionError``, so the compaction fails
cleanly and leaves the session as it was.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from ..errors import CompactionError, ConfigurationError, MissingExtraError
from ..model import Item, Kind, Role, Usage
from .types import Fact

PROVIDERS = ("anthropic", "openai")
DEFAULT_MODELS = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4o-mini"}
KEY_ENV = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
DEFAULT_INPUT_LIMIT = 150_000
DEFAULT_TOOL_OUTPUT_LIMIT = 2_000
MAX_OUTPUT_TOKENS = 8192
MIN_OUTPUT_TOKENS = 256
SECTIONS = (
    "Requests",
    "Requirements",
    "Decisions",
    "Open questions",
    "Files",
    "Todos",
    "Key facts",
    "Timeline",
)
# Kinds whose text is tool output (or hidden reasoning): clipped to a few thousand characters.
_CLIPPED_KINDS = {Kind.TOOL_RESULT, Kind.FILE_READ, Kind.SEARCH_RESULT, Kind.THINKING, Kind.IMAGE}
_FACT_KEY_LIMIT = 300
# What local endpoints (vLLM, Ollama) get as a key when none is configured: they ignore it.
_PLACEHOLDER_KEY = "not-needed"

# (system, user prompt, max_tokens) -> (text, usage)
_Send = Callable[[str, str, int], tuple[str, Usage]]


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _resolve_provider(provider: str | None) -> str:
    chosen = provider or _env("CTXBUDGET_LLM_PROVIDER")
    if chosen is None:
        if _env("ANTHROPIC_API_KEY"):
            return "anthropic"
        if _env("OPENAI_API_KEY"):
            return "openai"
        raise ConfigurationError(
            "the LLM summarizer needs a provider and a key: set CTXBUDGET_LLM_PROVIDER "
            "(anthropic or openai) and CTXBUDGET_LLM_API_KEY, or set ANTHROPIC_API_KEY or "
            "OPENAI_API_KEY (CTXBUDGET_LLM_BASE_URL and CTXBUDGET_LLM_MODEL point it at "
            "another endpoint)"
        )
    chosen = chosen.strip().lower()
    if chosen not in PROVIDERS:
        raise ConfigurationError(f"unknown LLM provider {chosen!r}: anthropic or openai")
    return chosen


def _input_limit(value: int | None) -> int:
    if value is None:
        raw = _env("CTXBUDGET_LLM_INPUT_CHARS")
        if raw is None:
            return DEFAULT_INPUT_LIMIT
        try:
            value = int(raw.replace("_", "").replace(",", ""))
        except ValueError:
            raise ConfigurationError(
                f"CTXBUDGET_LLM_INPUT_CHARS must be a number of characters (got {raw!r})"
            ) from None
    if value < 200:
        raise ConfigurationError(
            f"the LLM input limit must be at least 200 characters (got {value})"
        )
    return value


def max_tokens_for(budget: int) -> int:
    """The ``max_tokens`` of a request for a summary of ``budget`` tokens."""
    return max(MIN_OUTPUT_TOKENS, min(budget, MAX_OUTPUT_TOKENS))


def clip_middle(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, keeping its beginning and its end."""
    if len(text) <= limit:
        return text
    marker = f"\n[… {len(text) - limit:,}+ characters clipped …]\n"
    room = max(0, limit - len(marker))
    head = room * 2 // 3
    tail = room - head
    return text[:head] + marker + (text[len(text) - tail :] if tail else "")


def render_item(item: Item, tool_output_limit: int = DEFAULT_TOOL_OUTPUT_LIMIT) -> str:
    """One transcript line: ``[role/kind tool] text``, tool output clipped."""
    label = f"{item.role.value}/{item.kind.value}"
    if item.tool:
        label += f" {item.tool}"
    text = item.text.strip()
    if item.kind in _CLIPPED_KINDS or item.role is Role.TOOL:
        text = clip_middle(text, tool_output_limit)
    return f"[{label}] {text}"


def _starts_segment(item: Item) -> bool:
    return item.kind is Kind.USER_TEXT and item.role is Role.USER and bool(item.text.strip())


def chunk_transcript(lines: Sequence[str], starts: Sequence[bool], limit: int) -> list[list[str]]:
    """Pack whole topic segments into chunks of at most ``limit`` characters.

    A segment larger than the limit is split between its items; an item larger than the
    limit (already clipped by the caller) stands alone.
    """
    segments: list[list[str]] = []
    for line, start in zip(lines, starts, strict=True):
        if start or not segments:
            segments.append([])
        segments[-1].append(line)
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal current, size
        if current:
            chunks.append(current)
        current, size = [], 0

    for segment in segments:
        seg_size = sum(len(line) + 1 for line in segment)
        if current and size + seg_size > limit:
            flush()
        if seg_size <= limit:
            current.extend(segment)
            size += seg_size
            continue
        for line in segment:
            if current and size + len(line) + 1 > limit:
                flush()
            current.append(line)
            size += len(line) + 1
    flush()
    return chunks


def system_prompt(budget: int, *, merge: bool = False) -> str:
    """The instruction: exactly the extractive summarizer's sections, under ``budget`` tokens."""
    task = (
        "You are given partial summaries of consecutive parts of one conversation, in "
        "order. Merge them into one summary of the whole conversation."
        if merge
        else "You are given the middle of a conversation between a user and an AI agent that "
        "uses tools. Summarize it so the agent can carry on its work without it."
    )
    headings = "\n".join(f"## {name}" for name in SECTIONS)
    return f"""You compact the context of an AI agent. {task}

Write a structured summary in Markdown with exactly these sections, in this order, each
introduced by its heading and holding short "- " bullet points ("- none" when empty):
{headings}

What goes where:
- Requests: every request the user made, in order, in the user's own words where short.
- Requirements: constraints, acceptance criteria and requirement ids (e.g. BR-013, REQ-2).
- Decisions: what was decided or chosen, and why.
- Open questions: what is still unresolved or awaits an answer.
- Files: paths edited, read or mentioned, grouped as "edited:", "read:", "mentioned:".
- Todos: the items of the latest todo list, with their status.
- Key facts: results, values found, errors met and how they were fixed, names, settings.
- Timeline: one numbered line per topic (each user request): what was done, the outcome.

Rules:
- Stay under {budget} tokens in all; be dense, drop pleasantries and repetition.
- Copy identifiers, file paths, commands, requirement ids, numbers with their units, dates,
  versions and names verbatim; never paraphrase or round them.
- Every entry of the MUST-KEEP list must appear in the summary verbatim.
- Write only the summary: no preamble, no closing remarks."""


def user_prompt(
    facts: Sequence[Fact], transcript: str, *, merge: bool = False, parts: int = 0
) -> str:
    """The MUST-KEEP list (``kind: key``), then the transcript (or the partial summaries)."""
    seen: set[tuple[str, str]] = set()
    keep: list[str] = []
    for fact in facts:
        key = " ".join(fact.key.split())
        if not key or (fact.kind, key) in seen:
            continue
        seen.add((fact.kind, key))
        if len(key) > _FACT_KEY_LIMIT:
            key = key[: _FACT_KEY_LIMIT - 1].rstrip() + "…"
        keep.append(f"- {fact.kind}: {key}")
    must = "\n".join(keep) if keep else "- (none)"
    what = f"PARTIAL SUMMARIES ({parts}, in order)" if merge else "CONVERSATION"
    return (
        f"MUST-KEEP (copy each of these into the summary verbatim):\n{must}\n\n"
        f"{what}:\n{transcript}\n\n"
        f"Write the structured summary now, with the sections {', '.join(SECTIONS)}."
    )


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        cache_creation_input_tokens=a.cache_creation_input_tokens + b.cache_creation_input_tokens,
        cache_read_input_tokens=a.cache_read_input_tokens + b.cache_read_input_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
    )


class LLMSummarizer:
    """The engine's summarizer through an LLM; build it with ``llm_summarizer()``.

    ``last_usage`` holds the tokens the last call spent (summed over its requests, when it
    went map-reduce) and ``last_requests`` how many requests it made, so the caller can
    account for the compaction's own cost. ``total_usage`` / ``total_requests`` add up
    every call since the summarizer was built (the engine may summarize more than once
    in one compaction, when a first pass overshoots the target).
    """

    def __init__(
        self,
        provider: str,
        model: str,
        base_url: str,
        send: _Send,
        *,
        input_limit: int = DEFAULT_INPUT_LIMIT,
        tool_output_limit: int = DEFAULT_TOOL_OUTPUT_LIMIT,
        map_reduce: bool = True,
    ) -> None:
        self.provider = provider
        self.model = model
        self.base_url = base_url
        self.input_limit = input_limit
        self.tool_output_limit = tool_output_limit
        self.map_reduce = map_reduce
        self.last_usage = Usage()
        self.last_requests = 0
        self.total_usage = Usage()
        self.total_requests = 0
        self._send = send

    def __repr__(self) -> str:
        return f"LLMSummarizer({self.provider} {self.model} at {self.base_url})"

    def _request(self, system: str, prompt: str, budget: int) -> str:
        text, usage = self._send(system, prompt, max_tokens_for(budget))
        self.last_usage = _add(self.last_usage, usage)
        self.total_usage = _add(self.total_usage, usage)
        self.last_requests += 1
        self.total_requests += 1
        if not text.strip():
            raise CompactionError(
                f"LLM summarizer failed ({self.provider} {self.model} at {self.base_url}): "
                "the response held no text"
            )
        return text.strip()

    def __call__(self, items: Sequence[Item], facts: Sequence[Fact], budget: int) -> str:
        self.last_usage = Usage()
        self.last_requests = 0
        budget = max(1, budget)
        lines = [
            clip_middle(render_item(i, self.tool_output_limit), self.input_limit) for i in items
        ]
        transcript = "\n".join(lines)
        if len(transcript) <= self.input_limit or not self.map_reduce:
            transcript = clip_middle(transcript, self.input_limit)
            return self._request(system_prompt(budget), user_prompt(facts, transcript), budget)

        # map: one partial summary per chunk of whole topic segments
        chunks = chunk_transcript(lines, [_starts_segment(i) for i in items], self.input_limit)
        part_budget = min(budget, max(512, 2 * budget // len(chunks)))
        partials: list[str] = []
        for chunk in chunks:
            text = "\n".join(chunk)
            lowered = text.lower()
            mine = [f for f in facts if f.key and f.key.lower() in lowered]
            partials.append(
                self._request(system_prompt(part_budget), user_prompt(mine, text), part_budget)
            )
        # reduce: merge the partial summaries, in groups while they are too long together
        while True:
            labelled = [f"### Part {n} of {len(partials)}\n{p}" for n, p in enumerate(partials, 1)]
            joined = "\n\n".join(labelled)
            if len(joined) <= self.input_limit or len(partials) == 1:
                break
            groups = chunk_transcript(labelled, [True] * len(labelled), self.input_limit)
            if len(groups) >= len(partials):
                break  # no group holds two parts: clip instead of looping
            partials = [
                self._request(
                    system_prompt(part_budget, merge=True),
                    user_prompt([], "\n\n".join(group), merge=True, parts=len(group)),
                    part_budget,
                )
                for group in groups
            ]
        joined = clip_middle(joined, self.input_limit)
        return self._request(
            system_prompt(budget, merge=True),
            user_prompt(facts, joined, merge=True, parts=len(partials)),
            budget,
        )


def _failure(provider: str, model: str, base_url: str, exc: BaseException) -> CompactionError:
    return CompactionError(f"LLM summarizer failed ({provider} {model} at {base_url}): {exc}")


def _sdk(provider: str) -> ModuleType:
    """The provider's SDK, imported now (it is an optional extra)."""
    try:
        return importlib.import_module(provider)
    except ImportError:
        raise MissingExtraError("the LLM summarizer", "llm", provider) from None


def _anthropic_text(response: Any) -> tuple[str, Usage]:
    text = "".join(
        block.text for block in response.content if getattr(block, "type", None) == "text"
    )
    return text, Usage.from_api(response.usage) if response.usage is not None else Usage()


def _openai_text(response: Any) -> tuple[str, Usage]:
    if not response.choices:
        return "", Usage()
    text = response.choices[0].message.content or ""
    return text, Usage.from_api(response.usage) if response.usage is not None else Usage()


def llm_summarizer(
    provider: str | None = None,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    timeout: float = 60.0,
    max_retries: int = 2,
    input_limit: int | None = None,
    tool_output_limit: int = DEFAULT_TOOL_OUTPUT_LIMIT,
    map_reduce: bool = True,
) -> LLMSummarizer:
    """A summarizer for ``compact(..., summarizer=...)`` backed by an LLM.

    Raises ``ConfigurationError`` when no provider or key can be found,
    ``MissingExtraError`` when the provider's SDK is not installed (the ``llm`` extra);
    the returned callable raises ``CompactionError`` when the API call fails.
    ``map_reduce=False`` clips an oversized transcript (keeping its beginning and end)
    instead of summarizing it in chunks.
    """
    chosen = _resolve_provider(provider)
    model = model or _env("CTXBUDGET_LLM_MODEL") or DEFAULT_MODELS[chosen]
    base_url = base_url or _env("CTXBUDGET_LLM_BASE_URL")
    limit = _input_limit(input_limit)
    if tool_output_limit < 20:
        raise ConfigurationError(
            f"tool_output_limit must be at least 20 characters (got {tool_output_limit})"
        )
    sdk = _sdk(chosen)
    key = api_key or _env("CTXBUDGET_LLM_API_KEY") or _env(KEY_ENV[chosen])
    if key is None:
        if base_url is None:
            raise ConfigurationError(
                f"the LLM summarizer ({chosen}) needs an API key: set CTXBUDGET_LLM_API_KEY or "
                f"{KEY_ENV[chosen]} (or CTXBUDGET_LLM_BASE_URL for a local endpoint)"
            )
        key = _PLACEHOLDER_KEY
    sdk_error: type[BaseException] = (
        sdk.AnthropicError if chosen == "anthropic" else sdk.OpenAIError
    )
    factory = sdk.Anthropic if chosen == "anthropic" else sdk.OpenAI
    try:
        client = factory(base_url=base_url, api_key=key, timeout=timeout, max_retries=max_retries)
    except Exception as exc:  # the SDK refused its settings
        raise _failure(chosen, model, base_url or "the default endpoint", exc) from exc
    where = str(getattr(client, "base_url", None) or base_url or "the default endpoint")
    wanted = model

    def send(system: str, prompt: str, max_tokens: int) -> tuple[str, Usage]:
        try:
            if chosen == "anthropic":
                response = client.messages.create(
                    model=wanted,
                    max_tokens=max_tokens,
                    system=system,
                    messages=[{"role": "user", "content": prompt}],
                )
                return _anthropic_text(response)
            response = client.chat.completions.create(
                model=wanted,
                max_tokens=max_tokens,
                messages=[
                    {"role": "system", "content": system},
                    {"role": "user", "content": prompt},
                ],
            )
            return _openai_text(response)
        except sdk_error as exc:
            raise _failure(chosen, wanted, where, exc) from exc
        except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
            # a response that does not have the API's shape
            raise _failure(chosen, wanted, where, exc) from exc

    return LLMSummarizer(
        chosen,
        model,
        where,
        send,
        input_limit=limit,
        tool_output_limit=tool_output_limit,
        map_reduce=map_reduce,
    )
