"""The package's shape, enforced: layers, no cycles, no reaching into another
package's private names, small modules.

Every import counts, including those inside functions (envstore imports
lazily to keep the CLI fast, so most edges would otherwise go unseen).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "envstore"

# Lowest first. A module may import its own layer and the layers below it.
LAYERS = (
    "base",
    "model",
    "python",
    "store",
    "resolve",
    "env",
    "frontends",
    "cli",
    "plugins",
    "api",
)
BASE = {"envstore.errors", "envstore._crash", "envstore._version"}
API = {"envstore", "envstore.__main__", "envstore.manifest"}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = ["envstore", *path.relative_to(SRC).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> str:
    if module in BASE:
        return "base"
    if module in API:
        return "api"
    return module.split(".")[1]


def package(module: str) -> str:
    """``envstore.store.views`` -> ``store``; top-level modules are their own package."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else module


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def edges(path: Path, known: set[str]) -> list[tuple[str, str, int]]:
    """(imported module, imported name or "", line) for every envstore import in the file."""
    me = module_name(path)
    found: list[tuple[str, str, int]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "envstore":
                    found.append((alias.name, "", node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = me.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "envstore":
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in known:  # "from envstore.store import views"
                    found.append((sub, "", node.lineno))
                else:
                    found.append((target, alias.name, node.lineno))
    return found


def graph() -> dict[str, list[tuple[str, str, int]]]:
    mods = modules()
    return {name: edges(path, set(mods)) for name, path in mods.items()}


def test_layout_is_what_the_rules_know() -> None:
    for name in modules():
        assert layer(name) in LAYERS, f"{name} is in no layer: add it to LAYERS, BASE or API"


def test_lower_layers_never_import_higher_ones() -> None:
    bad = []
    for mod, imports in graph().items():
        for target, _, line in imports:
            if LAYERS.index(layer(target)) > LAYERS.index(layer(mod)):
                bad.append(f"{mod}:{line} ({layer(mod)}) imports {target} ({layer(target)})")
    assert not bad, "\n".join(bad)


def test_no_private_names_across_packages() -> None:
    bad = []
    for mod, imports in graph().items():
        for target, name, line in imports:
            if package(target) == package(mod):
                continue
            private_module = any(p.startswith("_") for p in target.split(".")[1:])
            if target in BASE or target == "envstore":
                private_module = False  # envstore._crash, envstore._version: leaf modules
            if private_module or (name.startswith("_") and name != "__version__"):
                bad.append(f"{mod}:{line} imports {target}.{name}".rstrip("."))
    assert not bad, "\n".join(bad)


def cycles(g: dict[str, list[tuple[str, str, int]]]) -> list[list[str]]:
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
        for w in {t for t, _, _ in g.get(v, []) if t in g and t != v}:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_the_cycle_check_can_fail() -> None:
    g = {"a": [("b", "", 1)], "b": [("c", "", 1)], "c": [("a", "", 1)], "d": [("a", "", 1)]}
    assert cycles(g) == [["a", "b", "c"]]


@pytest.mark.parametrize("name", sorted(modules()))
def test_modules_are_small(name: str) -> None:
    lines = len(modules()[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (at most {MAX_LINES}): split it"
