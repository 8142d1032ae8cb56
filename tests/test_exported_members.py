"""The public API is what ``__all__`` lists, and it is all there (after httpx's
``tests/test_exported_members.py``)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import ctxbudget

SRC = Path(__file__).resolve().parents[1] / "src"

# Packages whose ``__init__`` declares a public API.
PUBLIC_PACKAGES = [
    "ctxbudget",
    "ctxbudget.integrations",
    "ctxbudget.compaction",
    "ctxbudget.budget",
    "ctxbudget.store",
]

# What ordinary use needs from ``ctxbudget`` itself; removing one breaks users.
CORE_API = {"Tracker", "Session", "Policy", "Status", "Item", "Usage", "Level", "wrap"}
CORE_API |= {"CtxBudgetError", "load_source", "get_counter", "__version__"}


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_every_name_in_all_resolves(package: str) -> None:
    module = importlib.import_module(package)
    exported = list(module.__all__)
    assert len(set(exported)) == len(exported), f"{package}.__all__ has duplicates"
    for name in exported:
        assert getattr(module, name) is not None, f"{package}.{name} does not resolve"


@pytest.mark.parametrize("package", PUBLIC_PACKAGES)
def test_public_names_of_a_package_are_in_all(package: str) -> None:
    """What a package's ``__init__`` imports or defines without an underscore is public,
    so it must be in ``__all__`` (and nothing in ``__all__`` is missing from it)."""
    path = SRC.joinpath(*package.split("."), "__init__.py")
    tree = ast.parse(path.read_text())
    declared: set[str] = set()
    for node in ast.walk(tree):
        # names from the package's own modules (``from .x import …``) are its API
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            declared.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef) and node.col_offset == 0:
            declared.add(node.name)
    public = {n for n in declared if not n.startswith("_")}
    module = importlib.import_module(package)
    # the lazy packages list their names in _LAZY instead of importing them
    public |= set(getattr(module, "_LAZY", {}))
    public -= {"lazy_names"}
    exported = set(module.__all__) - {"__version__"}
    assert public == exported


def test_core_api_is_kept() -> None:
    assert set(ctxbudget.__all__) >= CORE_API
    assert set(dir(ctxbudget)) >= CORE_API


def test_unknown_names_are_refused() -> None:
    with pytest.raises(AttributeError):
        ctxbudget.no_such_name  # noqa: B018


def test_type_checkers_see_every_lazy_name_of_ctxbudget() -> None:
    """``ctxbudget`` imports its names lazily; the ``TYPE_CHECKING`` block is what type
    checkers and IDEs resolve them by: every name in ``__all__`` is imported there."""
    tree = ast.parse((SRC / "ctxbudget" / "__init__.py").read_text(encoding="utf-8"))
    seen: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    seen.update(alias.asname or alias.name for alias in stmt.names)
    assert set(ctxbudget.__all__) - {"__version__"} - seen == set()
