"""Module borders, made mechanical: no module takes another module's private names.

Shared private modules (``visionkit/_x.py``: ``_validate``, ``_io``, ``_layers``,
``_labels``, ``_heads``, ``_images``, ``_options``, ...) are the only places code is
shared from. A public module may re-export its own private modules (``visualize`` from
``_viz_*``, ``transfer`` from ``_transfer_*``, ``style`` from ``_style_*``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "visionkit"


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _private_imports(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """``from .x import _y`` where ``x`` is a public module: the violations in ``path``."""
    bad = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or not node.level or not node.module:
            continue
        target = node.module.split(".")[-1]
        if target.startswith("_"):
            continue  # a shared private module: the allowed place
        for alias in node.names:
            if alias.name.startswith("_") and alias.name != "__version__":
                bad.append(f"{path.relative_to(root)}:{node.lineno} imports {alias.name} from {node.module}")
    return bad


def test_no_module_imports_another_modules_private_names():
    bad = [v for path in _modules() for v in _private_imports(path)]
    assert not bad, "\n".join(bad)


def test_the_walker_finds_a_violation(tmp_path):
    # the check above could pass by walking nothing: show that it catches one
    f = tmp_path / "x.py"
    f.write_text("from .training import _train\nfrom ._io import atomic_path\nfrom . import _validate as V\n")
    assert _private_imports(f, tmp_path) == ["x.py:1 imports _train from training"]


def _raises(path: Path) -> list[tuple[int, str]]:
    """``raise Name(...)`` of a built-in exception class (deliberate errors must be visionkit's)."""
    builtins = {"ValueError", "TypeError", "FileNotFoundError", "OSError", "RuntimeError", "KeyError",
                "IndexError", "ImportError", "Exception", "NotImplementedError"}
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
            if node.exc.func.id in builtins:
                out.append((node.lineno, node.exc.func.id))
    return out


# argparse's own ArgumentTypeError is how an argparse `type=` reports a bad value; json's
# default= hook must raise TypeError by contract.
_ALLOWED = {("visionkit/_io.py", "TypeError")}


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_deliberate_errors_are_visionkit_errors(path):
    rel = str(path.relative_to(PACKAGE.parent))
    bad = [f"{rel}:{line} raises {name}" for line, name in _raises(path) if (rel, name) not in _ALLOWED]
    assert not bad, "raise a visionkit.errors class instead:\n" + "\n".join(bad)
