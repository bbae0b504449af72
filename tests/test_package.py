"""The package itself: lazy import, public names, version, command line."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys

import pytest

import visionkit

PUBLIC_MODULES = list(visionkit._SUBMODULES)


def _run(code: str, repo_root) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(repo_root)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=repo_root, timeout=300)


def test_import_does_not_load_tensorflow(repo_root):
    res = _run("import sys, visionkit; print(visionkit.__version__); print('tensorflow' in sys.modules, 'keras' in sys.modules)", repo_root)
    assert res.returncode == 0, res.stderr
    version, flags = res.stdout.split("\n")[:2]
    assert version == visionkit.__version__
    assert flags == "False False"


def test_version_matches_pyproject(repo_root):
    text = (repo_root / "pyproject.toml").read_text()
    assert 'path = "visionkit/__init__.py"' in text
    assert visionkit.__version__.count(".") == 2


def test_unknown_attribute():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        visionkit.nope  # noqa: B018


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_public_modules_have_all(name):
    module = importlib.import_module(f"visionkit.{name}")
    assert module.__all__, name
    for attr in module.__all__:
        assert hasattr(module, attr), f"visionkit.{name}.{attr}"
    assert getattr(visionkit, name) is module


def test_error_hierarchy():
    from visionkit import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), visionkit.VisionkitError)
    assert issubclass(errors.InvalidArgumentError, ValueError)
    assert issubclass(errors.DataNotFoundError, FileNotFoundError)


def test_cli_help_without_tensorflow(repo_root):
    res = _run(
        "import sys\nfrom visionkit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as e:\n    code = e.code\n"
        "print('TF', 'tensorflow' in sys.modules, code)",
        repo_root,
    )
    assert res.returncode == 0, res.stderr
    assert "usage: visionkit" in res.stdout
    assert "info" in res.stdout
    assert res.stdout.strip().endswith("TF False 0")


def test_cli_bad_arguments_exit_2(repo_root):
    res = subprocess.run([sys.executable, "-m", "visionkit", "no-such-command"], capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert res.returncode == 2
    assert "invalid choice" in res.stderr
    res = subprocess.run([sys.executable, "-m", "visionkit"], capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert res.returncode == 2


def test_cli_version(repo_root):
    res = subprocess.run([sys.executable, "-m", "visionkit", "--version"], capture_output=True, text=True, cwd=repo_root, timeout=120)
    assert res.returncode == 0
    assert visionkit.__version__ in res.stdout


def test_cli_info_json(repo_root):
    res = subprocess.run([sys.executable, "-m", "visionkit", "info", "--json"], capture_output=True, text=True, cwd=repo_root, timeout=300)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["visionkit"] == visionkit.__version__
    assert data["tensorflow"].startswith("2.")
    assert data["keras"].startswith("3.")
    assert any(d["type"] == "CPU" for d in data["devices"])
