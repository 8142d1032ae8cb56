"""Mentions in text: the file paths and the names it holds.

Found for the fact ledger (``fact_rules``): a path is a fact of its own, a name (a
product, a person, a place) a minor one. Pure functions over strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = ["entities", "is_source_file", "line_at", "paths", "word_set"]


def word_set(words: str) -> frozenset[str]:
    return frozenset(words.split())


# --- file paths --------------------------------------------------------------------------
_EXTENSIONS = (
    "py|pyi|pyx|ipynb|js|mjs|cjs|jsx|ts|tsx|go|templ|rs|java|kt|kts|scala|c|h|cc|cpp|cxx|"
    "hpp|cs|rb|php|swift|lua|pl|sh|bash|zsh|fish|ps1|nix|md|mdx|rst|txt|adoc|json|jsonl|"
    "yaml|yml|toml|ini|cfg|conf|env|xml|html|htm|css|scss|sass|less|vue|svelte|sql|csv|"
    "tsv|lock|mod|sum|proto|graphql|gql|tf|hcl|gradle|mk|cmake|dockerfile|log|patch|diff|"
    "gz|zip|tar|pdf|png|jpg|jpeg|gif|svg|ico|webp|wasm|db|sqlite|bin"
)
_PATH_HINT = re.compile(r"/(?=[\w.~@+-])|\.(?:" + _EXTENSIONS + r")(?![\w/@+-])")
_PATH_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.@+~/-")
_PATH = re.compile(
    r"(?<![\w/.~@:+*\\-])"
    r"((?:~?/)?[\w.@+-]+(?:/[\w.@+-]+)+/?|\w[\w.@+-]*\.(?:" + _EXTENSIONS + r"))"
    r"(?![\w/@+-]|\.\w|\()"
)
_EXTENSION_END = re.compile(r"\w\.(?:" + _EXTENSIONS + r")$")
_NOT_FILE = word_set(
    "node.js next.js vue.js nuxt.js express.js react.js three.js d3.js chart.js alpine.js "
    "ember.js angular.js backbone.js"
)
_DOMAIN_FIRST = re.compile(r"^[\w-]+\.(?:com|org|net|io|dev|app|ai|co|gov|edu|so|sh)/")

# --- names -------------------------------------------------------------------------------
_NAME = r"[A-Z](?:[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*|(?:-[A-Za-z0-9]+)+)"  # not "I" or "A"
_CAPITALISED = re.compile(rf"(?=[A-Z])\b{_NAME}(?: {_NAME}){{0,4}}")
# Auth0, ClickHouse, PostgreSQL, OAuth: a lowercase letter, and a capital or a digit
# after the first letter.
_PRODUCT = re.compile(r"(?=\S*[a-z])\S\S*?[A-Z0-9]")
# Two humps make an identifier (NewConfigWizard); a number after a dash, an id (Task-85).
_IDENTIFIER = re.compile(r"[a-z][A-Z][A-Za-z0-9]*[a-z][A-Z]|\b[A-Za-z]+-\d+\b")
_NOT_ENTITY = word_set(
    "The A An This That These Those Our Your My We I It Its If When What Which Who How "
    "Why Where In On At For From To With And But Or So As By Also Then Now Let Here There "
    "Yes No Please Thanks Thank Hi Hello Hey OK Okay Note Next First Second Third Finally "
    "All Each Every Some Any Both Once After Before Until While Since Because Do Does Did "
    "Is Are Was Were Be Can Could Should Would Will May Might Must Not Just Only Still Even "
    "Great Good Perfect Done Sure Well Oh Ok They Them Their He She His Her You Added Fixed "
    "Updated Created Removed Found Use Using Run Running See Check Make Add Fix Update "
    "Create Remove Set Get New Old True False None Null Nil Error Warning Todo Summary Step "
    "Task Issue Issues Status Result Results Total Analysis Monday Tuesday Wednesday "
    "Thursday Friday Saturday Sunday January February March April June July August "
    "September October November December Today Tomorrow Yesterday"
)


def line_at(text: str, pos: int) -> str:
    """The line of ``text`` that holds position ``pos``."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


def is_source_file(path: str) -> bool:
    """Does ``path`` end in a file name with a known extension (``src/app.py``)?"""
    return _EXTENSION_END.search(path) is not None


def paths(text: str) -> Iterator[tuple[str, str, int]]:
    """The file paths ``text`` names, each with its line and where it starts."""
    # From each "/" or ".ext" back to where its token starts, then the full pattern there.
    done = 0
    for hint in _PATH_HINT.finditer(text):
        start = hint.start()
        if start < done:
            continue
        while start > 0 and text[start - 1] in _PATH_CHARS:
            start -= 1
        match = _PATH.match(text, start)
        if match is None:
            done = hint.end()
            continue
        done = match.end()
        path = match.group(1).rstrip(".").lstrip("@")  # "@src/app.py" mentions a file
        if _is_path(path, text, start):
            yield path, line_at(text, start), start


def _is_path(path: str, text: str, start: int) -> bool:
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if name.casefold() in _NOT_FILE:
        return False
    if "/" not in path:
        return True
    if not any(c.isalpha() for c in path) or path.startswith(("/dev/", "/proc/")):
        return False  # 24/7, 07/21/2025, /dev/null
    if _DOMAIN_FIRST.match(path):
        return False  # github.com/owner/repo: a module or a URL without its scheme
    if _EXTENSION_END.search(path):
        return True
    if path.startswith(("~/", "./", "../")):
        return True
    if path.startswith("/"):
        return path.count("/") >= 2 and "/" not in (path[1], path[-1])
    # Relative and no extension: a path when it says so (a trailing slash or a code
    # span), not "and/or", "req/min", "client/server" or "name/package/props".
    if path.endswith("/"):
        return True
    quoted = start > 0 and text[start - 1] == "`"
    return quoted and not all(part[:1].isupper() for part in path.split("/"))  # Get/Set


def entities(text: str) -> Iterator[tuple[str, int]]:
    """The names in ``text`` (Stripe, PostgreSQL, Claude Code), each with where it starts:
    not a capital that opens a sentence, a heading's Title Case, code, an identifier or
    an acronym."""
    headings = "#" in text
    for match in _CAPITALISED.finditer(text):
        start, end = match.span()
        phrase = match.group(0)
        mid = _mid_sentence(text, start)
        if not mid and " " not in phrase and not _PRODUCT.match(phrase):
            continue  # the common case, a capital that opens a sentence: "Thanks", "We"
        if (start and text[start - 1] in "`.'\"") or (end < len(text) and text[end] in "(`"):
            continue  # code or a quoted string: `PluginManager`, obj.Method, Build(
        if headings and text.startswith("#", text.rfind("\n", 0, start) + 1):
            continue  # a heading: Title Case by convention
        words = phrase.split(" ")
        if not mid and not _PRODUCT.match(words[0]):
            words.pop(0)
        while words and words[0] in _NOT_ENTITY:
            words.pop(0)
        while words and words[-1] in _NOT_ENTITY:
            words.pop()
        if not words or _IDENTIFIER.search(phrase):
            continue  # NewConfigWizardWithProjectDir is an identifier, Task-85 an id
        if len(words) == 1:
            word = words[0]
            if len(word) < 3 or word.isupper() or (word[:-1].isupper() and word[-1] == "s"):
                continue  # acronyms and their plurals (API, JWTs) are not names
            if not (_PRODUCT.match(word) or (mid and phrase == word)):
                continue
        elif not (mid or any(_PRODUCT.match(w) or w.isupper() for w in words)):
            continue  # "Hash Caching Optimization" opening a list item is a title
        yield " ".join(words), start


def _mid_sentence(text: str, start: int) -> bool:
    """After a lowercase word ("with Stripe", "Google, Microsoft"), not after ". " or "- "."""
    if start < 2 or text[start - 1] != " ":
        return False
    before = text[start - 2]
    if before == ",":
        return start >= 3 and text[start - 3].islower()
    return before.islower()
