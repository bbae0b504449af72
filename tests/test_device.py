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


@pytest.mark.parametrize(("flags", "gpus", "tpu", "expected"), [
    (["avx2", "avx512f"], [], False, "float32"),
    (["avx512f", "avx512_bf16"], [], False, "mixed_bfloat16"),
    (["amx_bf16"], [], False, "mixed_bfloat16"),
    (["avx2"], [(7, 0)], False, "mixed_float16"),
    (["avx512_bf16"], [(8, 6)], False, "mixed_float16"),
    (["avx2"], [(6, 1)], False, "float32"),
    (["avx2"], [], True, "mixed_bfloat16"),
])
def test_auto_precision_choice(flags, gpus, tpu, expected):
    assert device.auto_precision(cpu_flags=flags, gpu_capabilities=gpus, tpu=tpu) == expected


def test_precision_scope_restores_the_global_policy():
    import keras

    before = keras.config.dtype_policy().name
    with device.precision_scope("mixed_bfloat16") as policy:
        layer = keras.layers.Dense(2)
        assert keras.config.dtype_policy().name == policy == "mixed_bfloat16"
    assert layer.dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == before
    with pytest.raises(InvalidArgumentError, match="precision"):
        with device.precision_scope("half"):
            pass


def test_resolve_strategy_and_global_batch():
    assert device.resolve_strategy(None) is None
    strat = device.resolve_strategy("default")
    assert device.resolve_strategy(strat) is strat
    assert device.global_batch_size(16, strat) == 16 * strat.num_replicas_in_sync
    with pytest.raises(InvalidArgumentError, match="strategy"):
        device.resolve_strategy("best")
    with pytest.raises(InvalidArgumentError, match="strategy"):
        device.resolve_strategy(3)


def test_info_shows_cpu_features_and_the_auto_choice():
    shown = device.info()
    assert shown["auto_precision"] == device.auto_precision()
    assert set(shown["cpu_features"]) <= {"avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "amx_int8"}
    if {"avx512_bf16", "amx_bf16"} & set(shown["cpu_features"]) and not shown["gpus"]:
        assert shown["auto_precision"] == "mixed_bfloat16"


@pytest.mark.parametrize("seed", [-1, 2**32], ids=["negative", "beyond-numpy"])
def test_configure_refuses_seeds_outside_numpys_range(seed):
    # 2**32 reached NumPy's bare ValueError from keras.utils.set_random_seed (#19)
    with pytest.raises(InvalidArgumentError, match=r"`seed`.*<= 4294967295.*Received: seed="):
        device.configure(seed=seed, memory_growth=False)


def test_auto_precision_follows_an_onednn_isa_cap(monkeypatch):
    """Under ONEDNN_MAX_CPU_ISA=AVX2 oneDNN cannot build bfloat16 convolutions: auto picks float32."""
    monkeypatch.setattr(device, "_cpu_flags_from_machine", lambda: {"avx2", "avx512f", "avx512_bf16", "amx_bf16"})
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert device.auto_precision(gpu_capabilities=[], tpu=False) == "float32"
    assert device.info()["cpu_features"] == ["avx2"]
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx512_core_vnni")
    assert device.auto_precision(gpu_capabilities=[], tpu=False) == "float32"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert device.auto_precision(gpu_capabilities=[], tpu=False) == "mixed_bfloat16"
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert device.auto_precision(gpu_capabilities=[], tpu=False) == "mixed_bfloat16"
