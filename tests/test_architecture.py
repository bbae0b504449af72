"""The package's structure, made mechanical: private names stay home, no import cycles,
no module doing two jobs.

Where the rule in ``test_module_borders.py`` catches ``from .x import _y``, these catch
``x._y`` (a private name reached through a module), an import cycle anywhere in the
package (imports inside functions included: a lazy import hides a cycle, it does not
remove it), and modules past the size at which a module is doing two jobs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "visionkit"
ROOT = PACKAGE.parent

#: A module past this many lines is doing two jobs (docs/conventions.md).
MAX_MODULE_LINES = 800


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _dotted(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _module_file(dotted: str, root: Path = ROOT) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _resolve(path: Path, node: ast.ImportFrom, root: Path = ROOT) -> str:
    """The absolute dotted name ``from <level dots><module> import ...`` refers to."""
    here = _dotted(path, root).split(".")
    package = here if _is_package(path) else here[:-1]
    base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
    return ".".join([*base, *(node.module.split(".") if node.module else [])])


def _imports(path: Path, root: Path = ROOT) -> Iterator[tuple[int, str, str | None, str]]:
    """``(line, imported module, name or None, bound name)`` for every import in ``path``,
    inside functions too, limited to modules of the package."""
    top = PACKAGE.name
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(path, node, root) if node.level else (node.module or "")
            if target.split(".")[0] != top:
                continue
            for alias in node.names:
                yield node.lineno, target, alias.name, alias.asname or alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == top:
                    yield node.lineno, alias.name, None, alias.asname or alias.name.split(".")[0]


def _private_attributes(path: Path, root: Path = ROOT) -> list[str]:
    """``mod._name`` where ``mod`` is another module of the package: the violations."""
    modules: dict[str, str] = {}
    for _, target, name, bound in _imports(path, root):
        dotted = f"{target}.{name}" if name else target
        if _module_file(dotted, root) is not None:
            modules[bound] = dotted
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and node.attr.startswith("_")
                and not (node.attr.startswith("__") and node.attr.endswith("__"))):
            bad.append(f"{path.relative_to(root)}:{node.lineno} reaches {modules[node.value.id]}.{node.attr}")
    return bad


def test_no_module_reaches_another_modules_private_names():
    bad = [v for path in _modules() for v in _private_attributes(path)]
    assert not bad, "\n".join(bad)


def test_the_attribute_walker_finds_a_violation(tmp_path):
    pkg = tmp_path / "visionkit"
    pkg.mkdir()
    for name in ("__init__", "_layers", "a"):
        (pkg / f"{name}.py").write_text("")
    (pkg / "a.py").write_text("from . import _layers\n_layers.public()\n_layers._short()\n")
    assert _private_attributes(pkg / "a.py", tmp_path) == ["visionkit/a.py:3 reaches visionkit._layers._short"]


def _graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module → the package modules it imports (a name from a package's ``__init__``
    that is a submodule counts as that submodule)."""
    graph: dict[str, set[str]] = {}
    for path in sorted((root / PACKAGE.name).rglob("*.py")):
        me = _dotted(path, root)
        edges = graph.setdefault(me, set())
        for _, target, name, _bound in _imports(path, root):
            sub = f"{target}.{name}" if name else None
            if sub and _module_file(sub, root) is not None:
                edges.add(sub)
            elif target != me and target != PACKAGE.name:
                # the top-level package is lazy (importlib on attribute access): not an edge
                edges.add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_cycle_finder_finds_a_cycle(tmp_path):
    pkg = tmp_path / "visionkit"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from . import a\n")
    (pkg / "c.py").write_text("from .a import f\n")
    assert _cycles(_graph(tmp_path)) == [["visionkit.a", "visionkit.b"]]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines (at most {MAX_MODULE_LINES}): split it by concern"
