"""Accounting constants ``ctxbudget tokens`` and the status line share.

The session's accounting (``session_state``) and the status line
(``claude_code/statusline.py``) must print the same figure; the status line cannot
import the session (it would load the store), so the constants both need live here,
in a module that imports nothing.
"""

from __future__ import annotations

#: The counters ``get_counter`` builds by name (``hf:PATH`` names a tokenizer file too).
COUNTER_NAMES = ("o200k_base", "cl100k_base", "claude", "claude-estimate", "estimate")
#: Counters that are a model's own tokenizer (OpenAI's encodings through tiktoken):
#: when the model's counter is one of them, the correction starts from
#: ``Calibration.for_counter(exact_for_model=True)``, else from Claude's prior.
EXACT_COUNTERS = ("o200k_base", "cl100k_base")
#: Framing per item when no usage was ever reported (the role markers of a message).
UNANCHORED_PER_ITEM = 5.0
#: The prior of the per-session correction (tokens per local token, tokens per item)
#: for counters fitted to Claude's tokenizer, on Claude traffic: a least-squares fit
#: over the shared Claude Code sessions (``python benchmarks/accuracy_cv.py`` fits it
#: and reports it on sessions left out of the fit). Other counters start from
#: ``accounting.PRIOR_PER_TOKEN`` / ``PRIOR_PER_ITEM``.
COUNTER_PRIORS: dict[str, tuple[float, float]] = {
    "claude-estimate": (0.9838, 5.9),
    "claude": (1.0006, 5.3),
}


def response_reported(output_tokens: int, local_tokens: int) -> bool:
    """Whether a call's reported ``output_tokens`` is the size of its response, whose
    items count ``local_tokens`` locally: then the next call's figure takes the response
    as reported (only its framing estimated), else counts its items like any other.

    Claude Code writes a record per block as the response streams, each with the usage
    as it stood (output 1 at the start), and the last with the final count. A response
    cut off (the stream or the process ended) keeps the first figure: a count below half
    of what its items hold is that, not the response's size (the first calls of the
    shared Claude Code sessions that followed one came 100 to 400 tokens over)."""
    return output_tokens > 0 and 2 * output_tokens >= local_tokens
