"""Secret redaction: well-known secret shapes in text and JSON data become placeholders.

This module owns the rules (which shapes count as secrets, what replaces them) and
the switch that turns them off (``$CTXBUDGET_REDACT``). It never decides *where* to
redact: the store calls it on every item and event it writes (``Store.redact_secrets``),
and ``ctxbudget scrub`` on what older stores already hold.

A secret is replaced by ``[redacted: KIND]``; what names it stays, so a reader still
sees that there was one (``DB_PASSWORD=[redacted: password]``, ``Bearer [redacted:
bearer token]``). Shapes: provider API keys (``sk-…``, ``sk-ant-…``), AWS access key
ids (``AKIA…``/``ASIA…``), GitHub tokens (``ghp_…``, ``github_pat_…``), Slack tokens
(``xoxb-…``), Bearer tokens, JWTs, PEM private key blocks, passwords in URLs
(``postgres://user:pw@host``), and values assigned to secret-looking names: env-style
``NAME=value`` where NAME is upper case and ends in KEY, TOKEN, SECRET, PASSWORD,
PASSWD, PWD, PASS or PASSPHRASE; ``"api_key": "…"`` (JSON, dicts, YAML with quotes),
``password="…"`` (a string literal in code) and ``?access_token=…`` in URLs.

False positives are kept rare on purpose: a name must *end* in the secret word
(``TOKEN_COUNT=5``, ``MAX_TOKENS=4096`` are not secrets), a lower-case name needs a
qualifier (``"token": "hello"`` and ``"cache_key": "x"`` are not secrets), a value must
be a literal (``password_field = form.password`` is not), and placeholders such as
``$VAR``, ``<your key>``, ``***`` or ``None`` are left alone. Redacting twice gives the
same text (placeholders match no shape). Speed: texts without any anchor of a shape
are returned untouched after a few substring tests; see ``benchmarks/redaction.py``.
"""

from __future__ import annotations

import functools
import os
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

__all__ = [
    "PLACEHOLDER",
    "REDACT_ENV",
    "Redactor",
    "is_secret_name",
    "redact_data",
    "redact_text",
    "redaction_enabled",
]

#: ``CTXBUDGET_REDACT=off`` (or 0, false, no) stores text as it comes, secrets included.
REDACT_ENV = "CTXBUDGET_REDACT"
#: What replaces a secret; ``{}`` is its kind ("api key", "password", …).
PLACEHOLDER = "[redacted: {}]"
_OFF = frozenset({"0", "off", "false", "no", "none", "disabled"})

# -- names ------------------------------------------------------------------------------

_SEGMENTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
_PASSWORD_WORDS = ("password", "passwd", "passphrase")
# A "..._key" / "..._token" whose prefix says it is no credential.
_NOT_SECRET_QUALIFIERS = frozenset(
    [
        "sort",
        "primary",
        "foreign",
        "unique",
        "composite",
        "partition",
        "range",
        "hash",
        "cache",
        "dict",
        "map",
        "lookup",
        "group",
        "idempotency",
        "public",
        "registry",
        "object",
        "file",
        "row",
        "column",
        "field",
        "item",
        "index",
        "message",
        "config",
        "setting",
        "env",
        "storage",
        "element",
        "list",
        "shortcut",
        "hot",
        "keyboard",
        "press",
        "translation",
        "i18n",
        "s3",
        "react",
        "next",
        "page",
        "continuation",
        "sync",
        "cancellation",
        "max",
        "min",
        "num",
        "total",
        "input",
        "output",
        "prompt",
        "completion",
        "stop",
        "eos",
        "bos",
        "pad",
        "unk",
        "sep",
        "cls",
        "mask",
        "special",
        "start",
        "end",
        "new",
        "old",
        "last",
        "first",
        "count",
        "counter",
        "tokens",
        "placeholder",
        "dummy",
        "fake",
        "example",
        "sample",
        "mock",
    ]
)


def is_secret_name(name: str, *, env_style: bool = False) -> str | None:
    """The kind of secret a variable or key name announces, or None.

    The name's last word decides: ``password``/``passwd``/``pwd``/``pass``/
    ``passphrase`` (also glued: ``PGPASSWORD``), ``secret``, ``token`` and ``key``.
    ``token`` and ``key`` need a qualifier that is not a known non-secret one
    (``api_key``, ``GITHUB_TOKEN``; not ``cache_key``, ``pad_token``); ``env_style``
    (an upper-case ``NAME=value``) also takes a bare ``TOKEN``.
    """
    words = [w.lower() for w in _SEGMENTS.findall(name)]
    if not words:
        return None
    last = words[-1]
    if last in ("pwd", "pass") or last.endswith(_PASSWORD_WORDS):
        return "password"
    if last.endswith("secret"):
        return "secret"
    qualifier = words[-2] if len(words) > 1 else ""
    if qualifier in _NOT_SECRET_QUALIFIERS:
        return None
    if last == "token" or (last.endswith("token") and len(last) > 5):
        return "token" if qualifier or env_style or last != "token" else None
    if last in ("apikey", "accesskey", "secretkey", "privatekey"):
        return "api key"
    if last == "key" and qualifier:
        return {"api": "api key", "access": "api key", "secret": "secret key"}.get(qualifier, "key")
    return None


#: ``is_secret_name`` of a JSON key, remembered: a transcript's records repeat the same
#: few hundred keys ("type", "text", "file_path") hundreds of thousands of times.
_key_kind = functools.lru_cache(maxsize=4096)(is_secret_name)


# -- shapes -----------------------------------------------------------------------------

# Each shape: one pattern whose group "s" is the secret; ``Redactor._shape`` rebuilds the
# match keeping everything but the secret. Each pattern starts with a literal, which
# the regex engine finds about as fast as ``str.find``.
_TOKEN_SHAPES = (
    (
        "private key",
        r"(?P<s>-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
        r"[\s\S]*?(?:-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|\Z))",
    ),
    ("api key", r"(?P<s>sk-(?=[\w-]{0,200}\d)[\w-]{20,})"),
    ("aws access key", r"(?P<s>A[KS]IA[A-Z0-9]{16})(?![A-Z0-9])"),
    (
        "github token",
        r"(?P<s>gh[pousr]_[A-Za-z0-9]{36,}|github_pat_\w{22,})",
    ),
    ("slack token", r"(?P<s>xox[abposr]-[A-Za-z0-9-]{10,})"),
    ("jwt", r"(?P<s>eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,})"),
    (
        "bearer token",
        r"earer[ \t]+(?P<s>(?=[A-Za-z._~+/-]{0,200}\d)[\w.~+/-]{16,}=*)",
    ),
    ("password", r"://[^\s:/@\"'<>]{1,256}:(?P<s>[^\s/@\"'<>]{1,256})@"),
)
# Assignments: a secret word (lower-cased text, found with str.find: fast) at the end
# of a name, then what follows the name: a closing quote, the operator, the value.
_ASSIGNMENT_ANCHORS = ("key", "token", "secret", "pass", "pwd")
_QUOTED = r"\"[^\"\\\n]*(?:\\.[^\"\\\n]*)*\"|'[^'\\\n]*(?:\\.[^'\\\n]*)*'"
_AFTER_NAME = re.compile(
    rf"(?P<close>[\"']?)(?P<op>[ \t]*=(?!=)[ \t]*|[ \t]*:[ \t]*)"
    # an unquoted value ends before an escape (``\\n`` in JSON-escaped text is no part of it)
    rf"(?P<value>{_QUOTED}|(?:[^\s\"'`;&|,)(\[\]{{}}<>\\]|\\(?![nrt\"'\\]))+)"
)
_WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_NOT_A_VALUE = re.compile(
    r"""\$|%\(|\{\{|<[^>]*>$|\*{3}|x{3,}$|\.\.\.|\[redacted|(?i:none|null|nil|true|false|
    undefined|changeme|your[-_ ]?\w*|example\w*|redacted|placeholder|secret|password|
    token|dummy|test|foo|bar)$|[A-Z][A-Z0-9]*_[A-Z0-9_]*$""",
    re.VERBOSE,
)
_SHAPES = tuple((kind, re.compile(pattern)) for kind, pattern in _TOKEN_SHAPES)


def _plain_value(value: str) -> tuple[str, str, str]:
    """``value`` split into its opening quote, body and closing quote."""
    if len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]:
        return value[0], value[1:-1], value[0]
    return "", value, ""


def _placeholder(kind: str) -> str:
    return PLACEHOLDER.format(kind)


class Redactor:
    """Redacts text and JSON data; counts what it replaced, by kind.

    One instance per job (``ctxbudget scrub`` reads ``counts``); ``redact_text``
    and ``redact_data`` use a shared one whose counts nobody reads.
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def text(self, text: str) -> str:
        """``text`` with every secret replaced; the same object when there is none."""
        if len(text) < 8:
            return text
        out = text
        for kind, pattern in _SHAPES:
            # search first: as fast as testing for the literal, and most texts have none
            if pattern.search(out) is not None:
                out = pattern.sub(functools.partial(self._shape, kind=kind), out)
        if "=" in out or ":" in out:
            out = self._assignments(out)
        return text if out == text else out

    def data(self, value: Any) -> Any:
        """JSON-like ``value`` with every string redacted, and the string values of
        secret-named keys replaced whole. Unchanged parts are the same objects."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            changed = False
            out: dict[Any, Any] = {}
            for key, sub in value.items():
                kind = _key_kind(key) if isinstance(key, str) else None
                if kind and isinstance(sub, str) and sub and not _NOT_A_VALUE.match(sub):
                    new: Any = _placeholder(kind) if not sub.startswith("[redacted") else sub
                else:
                    new = self.data(sub)
                if new is not sub:
                    changed = True
                    if kind and isinstance(sub, str):
                        self.counts[kind] += 1
                out[key] = new
            return out if changed else value
        if isinstance(value, list | tuple):
            items = [self.data(sub) for sub in value]
            if any(new is not old for new, old in zip(items, value, strict=True)):
                return items
            return value
        return value

    def _shape(self, match: re.Match[str], kind: str) -> str:
        # The patterns start with their literal (fast to find); the boundary before
        # it is checked here: "task-…" or "DISKAKIA…" hold no key.
        text, first = match.string, match.start()
        if kind == "bearer token":  # "earer": the "B" comes before the match
            first -= 1
            if first < 0 or text[first] not in "bB":
                return match.group(0)
        glued = first > 0 and (text[first - 1].isalnum() or text[first - 1] in "_-")
        if glued and not match.group(0).startswith("://"):
            return match.group(0)
        start, end = match.span("s")
        self.counts[kind] += 1
        return text[match.start() : start] + _placeholder(kind) + text[end : match.end()]

    def _assignments(self, text: str) -> str:
        lowered = text.lower()
        ends: set[int] = set()
        size = len(text)
        for word in _ASSIGNMENT_ANCHORS:
            found = lowered.find(word)
            while found >= 0:
                end = found + len(word)
                while end < size and text[end] in _WORD_CHARS:
                    end += 1
                ends.add(end)
                found = lowered.find(word, end)
        pieces: list[str] = []
        done = 0
        for end in sorted(ends):
            if end < done:
                continue
            after = _AFTER_NAME.match(text, end)
            if after is None:
                continue
            start = end
            while start > 0 and (text[start - 1] in _WORD_CHARS or text[start - 1] == "-"):
                start -= 1
            value = self._assigned(text, start, end, after)
            if value is None:
                continue
            pieces.append(text[done : after.start("value")])
            pieces.append(value)
            done = after.end("value")
        if not pieces:
            return text
        pieces.append(text[done:])
        return "".join(pieces)

    def _assigned(self, text: str, start: int, end: int, after: re.Match[str]) -> str | None:
        """The value's replacement, or None when this is no secret assignment."""
        name, close, op, value = text[start:end], after["close"], after["op"], after["value"]
        before = text[start - 1] if start else ""
        quoted = value[0] in "\"'"
        colon = ":" in op
        if close:  # "name": "value"
            if before != close or not colon or not quoted:
                return None
            kind = is_secret_name(name)
        elif before in ("?", "&") and not colon:  # ?access_token=value
            kind = is_secret_name(name)
        elif _ENV_NAME.fullmatch(name) and before not in ("$", "-"):
            tight = op == "="
            if not (quoted or tight or (colon and op.endswith((" ", "\t")) and len(value) >= 8)):
                return None
            kind = is_secret_name(name, env_style=True)
        else:  # password = "literal" in code
            if not quoted or before == "-":
                return None
            kind = is_secret_name(name)
        opening, body, closing = _plain_value(value)
        if kind is None or not body or _NOT_A_VALUE.match(body):
            return None
        self.counts[kind] += 1
        return opening + _placeholder(kind) + closing


_SHARED = Redactor()


def redact_text(text: str) -> str:
    """``text`` with every well-known secret shape replaced by a placeholder."""
    return _SHARED.text(text)


def redact_data(value: Any) -> Any:
    """JSON-like ``value`` (an item's raw block, an event's data) with secrets redacted."""
    return _SHARED.data(value)


def redaction_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """False when ``$CTXBUDGET_REDACT`` says off (``0``, ``off``, ``false``, ``no``)."""
    value = (os.environ if environ is None else environ).get(REDACT_ENV, "")
    return value.strip().lower() not in _OFF
