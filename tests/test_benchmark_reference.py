"""The ``reference`` benchmark task's argument handling (the run itself needs PyTorch and the user's airbench94.py)."""

from __future__ import annotations

import importlib.util
import sys

import pytest


@pytest.fixture()
def bench(repo_root, monkeypatch):
    monkeypatch.syspath_prepend(str(repo_root / "benchmarks"))
    spec = importlib.util.spec_from_file_location("bench_convnets", repo_root / "benchmarks" / "convnets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _usage_error(bench, monkeypatch, capsys, *argv):
    monkeypatch.setattr(sys, "argv", ["convnets.py", "--only", "reference", *argv])
    with pytest.raises(SystemExit) as info:
        bench.main()
    assert info.value.code == 2
    return capsys.readouterr().err


def test_reference_task_needs_the_users_airbench_copy_and_a_torch_python(bench, monkeypatch, capsys, tmp_path):
    assert "reference" in bench.TASKS
    assert "--reference PATH/TO/airbench94.py" in _usage_error(bench, monkeypatch, capsys)
    assert "no such file" in _usage_error(bench, monkeypatch, capsys, "--reference", str(tmp_path / "none.py"))
    script = tmp_path / "airbench94.py"
    script.write_text("hyp = {}\n")
    err = _usage_error(bench, monkeypatch, capsys, "--reference", str(script), "--torch-python", str(tmp_path / "py"))
    assert "cannot import torch and torchvision" in err
    err = _usage_error(bench, monkeypatch, capsys, "--reference", str(script), "--reference-epochs", "0")
    assert "at least 1" in err
