"""The house: imports run down the layers, no circles, no module uses another's
private names.

Every import counts, also those under ``if TYPE_CHECKING:`` and those inside
functions (a lazy import is still a dependency). Layers, from the floor up:

    0 foundations   errors, model, policy, tokens/, sources/, _lazy, _files, collector, redact
    1 storage       store/
    2 services      compaction/, budget/, accounting, status, render, recording
    3 facade        context, archive, budgeting, spawning, phasing, session, tracker,
                    testing
    4 shells        cli/, claude_code/, integrations/, demo, _entry, the package root

A module may import its own layer or any below; circles are refused at every layer.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ctxbudget"

LAYERS: dict[str, int] = {
    "errors": 0,
    "model": 0,
    "level": 0,
    "policy": 0,
    "tokens": 0,
    "sources": 0,
    "_lazy": 0,
    "collector": 0,
    "_fit": 0,  # a C extension (the correction fit's outlier test): it imports nothing
    "redact": 0,
    "_files": 0,
    "store": 1,
    "compaction": 2,
    "budget": 2,
    "accounting": 2,
    "status": 2,
    "render": 2,
    "recording": 2,
    "context": 3,
    "session_figures": 3,
    "session_row": 3,
    "session_persistence": 3,
    "session_state": 3,
    "archive": 3,
    "recalling": 3,
    "budgeting": 3,
    "spawning": 3,
    "phasing": 3,
    "session": 3,
    "tracker": 3,
    "testing": 3,
    "cli": 4,
    "claude_code": 4,
    "integrations": 4,
    "demo": 4,
    "demo_run": 4,
    "_entry": 4,
    "__init__": 4,
}

# Private names of the standard library that are its documented public API.
STDLIB_PRIVATE = {
    "_exit",
    "_getframe",
    "_replace",
    "_asdict",
    "_fields",
    "_make",
    "_current_frames",
}
# Private names of third-party objects we must reach, each with the reason.
THIRD_PARTY_PRIVATE = {
    # anthropic's MessageStream keeps its raw event stream there and offers no public
    # hook to observe events while the caller iterates the helper stream
    "_raw_stream",
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def compiled_modules() -> set[str]:
    """The C extensions' modules (built from ``*.c`` beside the Python): they import
    no module of ours, but ours import them."""
    return {module_name(p) for p in PACKAGE.rglob("*.c")}


def layer_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in LAYERS:
        raise AssertionError(f"{module}: not in any layer; add it to LAYERS in {__file__}")
    return LAYERS[top]


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports(module: str, path: Path, known: set[str]) -> Iterator[tuple[str, int]]:
    """(imported ctxbudget module, line) for every import in ``module``."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ctxbudget"):
                    yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            target = resolve(module, is_package, node)
            if not target.startswith("ctxbudget"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if sub in known else target), node.lineno


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods) | compiled_modules()
    edges: dict[str, set[str]] = {m: set() for m in known}
    for module, path in mods.items():
        for target, _ in imports(module, path, known):
            while target not in known and "." in target:
                target = target.rsplit(".", 1)[0]
            if target != module and target in known:
                edges[module].add(target)
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def is_ancestor(package: str, module: str) -> bool:
    return module.startswith(package + ".")


def upward_imports(edges: dict[str, set[str]]) -> list[str]:
    return [
        f"{m} (layer {layer_of(m)}) imports {t} (layer {layer_of(t)})"
        for m, targets in sorted(edges.items())
        for t in sorted(targets)
        # a package's __init__ re-exporting its own modules is not upward
        if layer_of(t) > layer_of(m) and not is_ancestor(m, t)
    ]


def private_definitions(tree: ast.AST) -> set[str]:
    """Private names a module defines: functions, classes, attributes, module names."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def private_uses() -> list[str]:
    """Uses of a private name that the using module does not define itself."""
    found: list[str] = []
    names = modules()
    for module, path in names.items():
        tree = ast.parse(path.read_text(), str(path))
        own = private_definitions(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = resolve(module, path.name == "__init__.py", node)
                for alias in node.names:
                    if f"{target}.{alias.name}" in names and target == module.rsplit(".", 1)[0]:
                        continue  # a private module of its own package (httpx's _models)
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        found.append(f"{module}:{node.lineno} imports {alias.name}")
            elif isinstance(node, ast.Attribute):
                name = node.attr
                if not name.startswith("_") or name.startswith("__"):
                    continue
                if name in own or name in STDLIB_PRIVATE or name in THIRD_PARTY_PRIVATE:
                    continue
                if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                    continue
                found.append(f"{module}:{node.lineno} uses .{name}")
    return found


def test_every_module_has_a_layer() -> None:
    for module in modules():
        layer_of(module)


def test_no_import_circles() -> None:
    assert circles(graph()) == []


def test_imports_run_down() -> None:
    assert upward_imports(graph()) == []


def test_no_module_uses_another_modules_private_names() -> None:
    assert private_uses() == []


@pytest.mark.parametrize(
    "edges, expected",
    [
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_circle_finder_finds_circles(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert circles(edges) == expected


def test_upward_import_is_reported() -> None:
    edges = {"ctxbudget.model": {"ctxbudget.session"}, "ctxbudget.session": set()}
    assert upward_imports(edges) == [
        "ctxbudget.model (layer 0) imports ctxbudget.session (layer 3)"
    ]


def test_private_use_is_reported() -> None:
    tree = ast.parse(
        "def f(session):\n    session._extra = {}\n    return session._reported + self._mine\n"
    )
    assert private_definitions(tree) == set()
    tree = ast.parse("class A:\n    def f(self):\n        self._mine = 1\n")
    assert private_definitions(tree) == {"_mine"}
