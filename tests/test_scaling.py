"""Real multi-replica runs on one CPU machine: MirroredStrategy over two logical CPUs,
MultiWorkerMirroredStrategy with two worker processes on 127.0.0.1, mixed bfloat16."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

WORKERS = Path(__file__).parent / "workers"


def _env(repo_root: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(repo_root), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_mirrored_two_logical_cpus_matches_default(tmp_path, repo_root):
    results = {}
    for kind in ("default", "mirrored"):
        out = tmp_path / f"{kind}.json"
        res = subprocess.run([sys.executable, str(WORKERS / "mirrored.py"), kind, str(out)],
                             env=_env(repo_root), capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        results[kind] = json.loads(out.read_text())
    assert results["default"]["replicas"] == 1
    assert results["mirrored"]["replicas"] == 2
    # the first epoch agrees to float32 rounding; three epochs of training amplify the other
    # all-reduce summation order (0.5% apart on AVX2, 0.2% on AVX-512)
    np.testing.assert_allclose(results["mirrored"]["loss"][0], results["default"]["loss"][0], rtol=1e-4)
    np.testing.assert_allclose(results["mirrored"]["loss"], results["default"]["loss"], rtol=2e-2)
    assert results["default"]["loss"][-1] < results["default"]["loss"][0]


def _launch(tmp_path, repo_root, epochs, ckpt, tag, die=None):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        args = [sys.executable, str(WORKERS / "multi_worker.py"), str(epochs), str(ckpt), str(tmp_path / f"{tag}-{i}.json")]
        if die is not None and die[0] == i:
            args.append(str(die[1]))
        procs.append(subprocess.Popen(args, env=_env(repo_root, TF_CONFIG=tf_config),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def _wait(procs, timeout=300):
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=timeout)
        outs.append(out)
    return outs


@pytest.mark.slow
def test_multi_worker_identical_weights_and_resume_after_kill(tmp_path, repo_root):
    ckpt = tmp_path / "ckpt"
    # 1. a full two-worker run: both finish with the same weights
    outs = _wait(_launch(tmp_path, repo_root, 3, tmp_path / "ckpt-full", "full"))
    full = [json.loads((tmp_path / f"full-{i}.json").read_text()) for i in range(2)]
    assert full[0]["weights"] == full[1]["weights"], outs
    assert full[0]["epochs"] == [0, 1, 2]
    assert full[0]["loss"][-1] < full[0]["loss"][0]

    # 2. worker 1 is killed (SIGKILL) after epoch 1; the survivor is stopped too, as a
    #    cluster manager would; both restart and resume from the epoch-1 backup.
    procs = _launch(tmp_path, repo_root, 3, ckpt, "killed", die=(1, 1))
    assert procs[1].wait(timeout=300) == -signal.SIGKILL
    deadline = time.time() + 60
    while time.time() < deadline and not (ckpt / "state.json").exists():
        time.sleep(0.5)
    time.sleep(1.0)
    procs[0].kill()
    procs[0].wait(timeout=60)
    # the chief's checkpoint and worker 1's own backup both hold the first epoch
    assert json.loads((ckpt / "state.json").read_text())["epoch"] == 1
    assert json.loads((ckpt / "worker-1" / "state.json").read_text())["epoch"] == 1
    assert (ckpt / "best.keras").is_file() and not (ckpt / "worker-1" / "best.keras").exists()

    outs = _wait(_launch(tmp_path, repo_root, 3, ckpt, "resumed"))
    resumed = [json.loads((tmp_path / f"resumed-{i}.json").read_text()) for i in range(2)]
    assert resumed[0]["weights"] == resumed[1]["weights"], outs
    assert resumed[0]["epochs"] == [0, 1, 2]
    # epoch 1 comes from the checkpoint; the optimizer state was restored, not restarted
    assert resumed[0]["loss"][0] == full[0]["loss"][0]
    assert resumed[0]["iterations"] == full[0]["iterations"]
    assert resumed[0]["loss"][-1] < resumed[0]["loss"][0]
    assert resumed[0]["test"] == resumed[1]["test"]
    assert 0.0 <= resumed[0]["test"]["accuracy"] <= 1.0


def test_mixed_bfloat16_trains_with_float32_outputs(tmp_path, repo_root, bfloat16_kernels):
    code = (
        "import json, numpy as np\n"
        "from visionkit import convnets, device\n"
        "device.configure(precision='mixed_bfloat16', seed=0)\n"
        "from visionkit import data\n"
        "from visionkit.training import train\n"
        "(x, y), _ = data.load_mnist(sample=True)\n"
        "model = convnets.mnist_convnet()\n"
        "h = train(model, (x[:256, ..., None], y[:256]), epochs=2, batch_size=64, seed=0, progress=False)\n"
        "out = model(x[:4, ..., None].astype('float32'))\n"
        "print(json.dumps({'dtype': str(out.dtype.name if hasattr(out.dtype, 'name') else out.dtype), "
        "'compute': model.layers[1].compute_dtype, 'loss': h.history['loss']}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], env=_env(repo_root), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["dtype"] == "float32"
    assert info["compute"] == "bfloat16"
    assert all(np.isfinite(info["loss"])) and info["loss"][-1] < info["loss"][0]
