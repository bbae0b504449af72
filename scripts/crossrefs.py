"""Rewrite Sphinx roles in docstrings (:func:`x`) as mkdocstrings cross-references.

``python scripts/crossrefs.py FILE...`` rewrites each file in place: a role whose target
is a documented visionkit object becomes ``[`x`][visionkit.module.x]`` (mkdocs-autorefs
resolves it, and ``mkdocs build --strict`` fails on one it cannot); a role naming
anything else (``keras.Model``) becomes plain code. Run it again on new docstrings.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

PUBLIC = ("backbones", "convnets", "data", "device", "dream", "errors", "explain", "gradcam", "interpret", "preprocess", "style",
          "training", "transfer", "visualize")
# private modules whose docstrings are rendered under (or belong to) a public module
HOME = {"_backbones": "backbones", "_viz_features": "visualize", "_viz_history": "visualize", "_style_model": "style",
        "_style_optim": "style", "_style_settings": "style", "_style_loop": "style",
        "_options": "training", "_checkpoint": "training", "_labels": "training"}
ROLE = re.compile(r":(func|class|data|mod|meth|attr|exc|obj):`(~?)([\w.]+?)(\(\))?`")


def _index() -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    for mod in PUBLIC:
        for name in importlib.import_module(f"visionkit.{mod}").__all__:
            names.setdefault(name, []).append(f"visionkit.{mod}.{name}")
    return names


def _resolve(target: str, home: str | None, index: dict[str, list[str]]) -> str | None:
    if target.startswith("visionkit."):
        parts = target.split(".")
        if len(parts) == 2 and parts[1] in PUBLIC:
            return target
        if len(parts) >= 3 and parts[1] in PUBLIC:
            module = importlib.import_module(".".join(parts[:2]))
            return target if parts[2] in module.__all__ else None
        return None
    head = target.split(".")[0]
    if home is not None and head in importlib.import_module(f"visionkit.{home}").__all__:
        return f"visionkit.{home}.{target}"
    found = index.get(head, [])
    if len(found) == 1:
        return found[0] + target[len(head):]
    return None


def rewrite(path: Path, index: dict[str, list[str]]) -> int:
    stem = path.stem
    home = stem if stem in PUBLIC else HOME.get(stem)
    text = path.read_text()
    count = 0

    def sub(m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        _, tilde, target, call = m.groups()
        shown = (target.rsplit(".", 1)[-1] if tilde else target) + (call or "")
        ident = _resolve(target, home, index)
        return f"[`{shown}`][{ident}]" if ident else f"``{shown}``"

    new = ROLE.sub(sub, text)
    if new != text:
        path.write_text(new)
    return count


if __name__ == "__main__":
    idx = _index()
    for arg in sys.argv[1:]:
        print(arg, rewrite(Path(arg), idx))
