from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from visionkit import device
from visionkit.errors import InvalidArgumentError


def test_info_keys():
    info = device.info()
    for key in ("visionkit", "python", "tensorflow", "keras", "devices", "gpus", "precision", "strategy"):
        assert key in info
    assert info["precision"] == "float32"
    assert info["gpus"] == sum(d["type"] == "GPU" for d in info["devices"])


def test_strategy_default_on_cpu(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    strat = device.strategy("auto")
    assert strat.num_replicas_in_sync == 1
    assert device.strategy("default").num_replicas_in_sync == 1
    assert device.strategy("one_device").num_replicas_in_sync == 1


@pytest.mark.parametrize(("kind", "match"), [("gpus", "kind"), ("tpu", "TPU"), ("multi_worker", "TF_CONFIG")])
def test_strategy_errors(kind, match, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(InvalidArgumentError, match=match):
        device.strategy(kind)


def test_configure_validates():
    with pytest.raises(InvalidArgumentError, match="precision"):
        device.configure(precision="float8")
    with pytest.raises(InvalidArgumentError, match="seed"):
        device.configure(seed=-1)


def test_configure_is_explicit_and_applies(repo_root):
    code = (
        "import json, keras\nfrom visionkit import device\n"
        "before = keras.config.dtype_policy().name\n"
        "applied = device.configure(precision='mixed_bfloat16', seed=3)\n"
        "print(json.dumps([before, keras.config.dtype_policy().name, applied['precision'], device.info()['precision']]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(repo_root), "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1]) == ["float32", "mixed_bfloat16", "mixed_bfloat16", "mixed_bfloat16"]


def test_auto_precision_on_cpu():
    assert device._auto_precision() == "float32"
