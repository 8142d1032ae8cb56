from __future__ import annotations

import subprocess
import sys

import pytest

from ctxbudget import ConfigurationError, get_counter
from ctxbudget.tokens import counters
from ctxbudget.tokens.counters import CachedCounter, counter_name_for_model


def test_o200k_counts_special_tokens_as_text() -> None:
    c = get_counter("o200k_base")
    assert c.exact
    assert c.count("") == 0
    assert c.count("hello <|endoftext|> world") == 9  # never the special token


def test_cl100k_is_available_offline() -> None:
    assert get_counter("cl100k_base").count("hello world") == 2


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o-mini", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("some-local-llama", "estimate"),
    ],
)
def test_model_mapping(model: str, expected: str) -> None:
    assert counter_name_for_model(model) == expected


def test_claude_maps_to_claude_estimate_wherever_ctok_is(
    monkeypatch: pytest.MonkeyPatch, looked_up: list[str]
) -> None:
    """The default for Claude models is the estimator, ctok installed or not (the same
    anchored figure, at 270 times the speed), and finding it never looks for ctok."""
    monkeypatch.setattr(counters, "_claude_found", True)  # as where ctok is installed
    assert counter_name_for_model("claude-sonnet-4-5") == "claude-estimate"
    assert counter_name_for_model("anthropic/claude-opus-4-1") == "claude-estimate"
    assert "ctok" not in looked_up


def test_claude_estimate_is_fitted_to_claude_not_o200k() -> None:
    """Claude's tokenizer splits English into more tokens than o200k_base: the counter
    fitted to it counts more than the o200k_base estimate, and about what Claude's
    tokenizer counts (ctok 1.3.0: 330 tokens for this paragraph; o200k_base: 321)."""
    text = (
        "The quarterly report summarises revenue, churn and the hiring plan. "
        "Sales grew in every region except the north, where two large customers left. "
        "We expect the new pricing to lift margins next year, although support costs "
        "keep rising. The board asked for a clearer plan on hiring engineers and for a "
        "review of the travel budget. "
    ) * 5
    claude, o200k = get_counter("claude-estimate"), get_counter("estimate")
    assert claude.name == "claude-estimate" and not claude.exact
    assert claude.count(text) > o200k.count(text)
    assert abs(claude.count(text) - 330) <= 0.03 * 330


GO_TEST = (
    "func TestBadge(t *testing.T) {\n"
    "\tcases := []struct {\n"
    "\t\tname  string\n"
    "\t\tprops BadgeProps\n"
    "\t}{\n"
    "\t\t{\n"
    '\t\t\tname: "plain badge",\n'
    "\t\t\tprops: BadgeProps{\n"
    '\t\t\t\tLabel: "new",\n'
    '\t\t\t\tTone:  "info",\n'
    "\t\t\t},\n"
    "\t\t},\n"
    "\t}\n"
    "\tfor _, tc := range cases {\n"
    "\t\tt.Run(tc.name, func(t *testing.T) {\n"
    '\t\t\tif got := Render(tc.props); got == "" {\n'
    '\t\t\t\tt.Errorf("empty output for %s", tc.name)\n'
    "\t\t\t}\n"
    "\t\t})\n"
    "\t}\n"
    "}\n"
)


def test_claude_estimate_counts_a_run_of_tabs_as_one_token() -> None:
    """Code nested three and four tabs deep (Go, C): a run of tabs is one token for
    Claude's tokenizer (ctok 1.3.0: 606 tokens for this text), not one per tab (the
    estimate counted 783 before it knew)."""
    text = GO_TEST * 4
    assert abs(get_counter("claude-estimate").count(text) - 606) <= 0.05 * 606


def test_unknown_counter() -> None:
    with pytest.raises(ConfigurationError, match="unknown counter"):
        get_counter("nope")


def test_cached_counter_counts_each_text_once() -> None:
    c = CachedCounter(get_counter("o200k_base"))
    assert c.count("abc def") == c.count("abc def")
    assert (c.misses, c.hits) == (1, 1)


OFFLINE_PROBE = r"""
import os, socket, sys, tempfile
os.environ["CTXBUDGET_CACHE_DIR"] = tempfile.mkdtemp()   # a cold cache: nothing on disk yet
attempts = []
def refuse(*args, **kwargs):
    attempts.append(args)
    raise OSError("network disabled by test")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from ctxbudget import get_counter
n = get_counter("o200k_base").count("offline counting works")
m = get_counter("cl100k_base").count("offline counting works")
print(n, m, len(attempts))
"""


def test_counting_attempts_no_network() -> None:
    out = subprocess.run(
        [sys.executable, "-c", OFFLINE_PROBE], capture_output=True, text=True, check=True
    )
    n, m, attempts = out.stdout.split()
    assert int(n) > 0 and int(m) > 0
    assert attempts == "0"


def test_a_cheap_counter_is_asked_directly_with_the_same_counts() -> None:
    """The estimators count about as fast as a text hashes: the cache asks them
    directly (nothing kept), with the very counts they give."""
    from ctxbudget.tokens.estimate import claude_estimate

    estimator = claude_estimate()
    cached = CachedCounter(estimator)
    texts = ["def f(x):\n    return x", "Kurz und gut: ça marche.", "x" * 5000, ""]
    assert [cached.count(t) for t in texts * 2] == [estimator.count(t) for t in texts * 2]
    assert cached.cheap and (cached.hits, cached.misses) == (0, 0)
