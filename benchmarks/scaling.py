"""Training throughput of the CIFAR-10 convnet under different device set-ups.

Each configuration runs in its own process (threads, logical devices and precision are
process-wide): 1 vs 2 CPU threads, the default strategy vs a 2-replica MirroredStrategy
over two logical CPUs, float32 vs mixed_bfloat16, and, where a GPU is present, 1 GPU
float32 vs mixed precision. Figures are printed, not asserted.

    python benchmarks/scaling.py [--quick] [--samples N] [--epochs E]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, os, sys, time
cfg = json.loads(sys.argv[1])
import tensorflow as tf
if cfg.get("threads"):
    tf.config.threading.set_intra_op_parallelism_threads(cfg["threads"])
    tf.config.threading.set_inter_op_parallelism_threads(cfg["threads"])
if cfg.get("logical_cpus"):
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cfg["logical_cpus"])
if cfg.get("hide_gpu"):
    tf.config.set_visible_devices([], "GPU")
import keras, numpy as np
from visionkit import convnets, data, device
from visionkit.training import train
if cfg.get("precision"):
    device.configure(precision=cfg["precision"], memory_growth=False)
strategy = device.strategy(cfg.get("strategy", "default"))
try:
    (x, y), _ = data.load_cifar10()
except Exception:
    (x, y), _ = data.load_cifar10(sample=True)
n = cfg["samples"]
x, y = x[:n], y[:n]
keras.utils.set_random_seed(0)
with strategy.scope():
    model = convnets.cifar10_convnet(augment=False)
ds = data.from_arrays(x, y, batch_size=cfg["global_batch"], seed=0)
times = []
class T(keras.callbacks.Callback):
    def on_epoch_begin(self, e, logs=None): self.t = time.perf_counter()
    def on_epoch_end(self, e, logs=None): times.append(time.perf_counter() - self.t)
train(model, ds, epochs=cfg["epochs"], strategy=strategy, seed=0, progress=False, callbacks=[T()])
steady = times[1:] or times
print("RESULT " + json.dumps({"samples_per_s": len(x) / (sum(steady) / len(steady)), "epoch_s": times,
                              "replicas": strategy.num_replicas_in_sync}))
"""


def run(cfg: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True, env=env, timeout=3600)
    for line in res.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"configuration {cfg} failed:\n{res.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run: 2,000 samples, 2 epochs")
    parser.add_argument("--samples", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch", type=int, default=128, help="global batch size (default 128)")
    args = parser.parse_args()
    samples = args.samples or (2000 if args.quick else 10000)
    epochs = args.epochs or (2 if args.quick else 3)
    base = {"samples": samples, "epochs": epochs, "global_batch": args.batch, "hide_gpu": True}
    configs = {
        "1 thread, float32": {**base, "threads": 1},
        "2 threads, float32": {**base, "threads": 2},
        "2 logical CPUs, default strategy": {**base, "logical_cpus": 2},
        "2 logical CPUs, mirrored (2 replicas)": {**base, "logical_cpus": 2, "strategy": "mirrored"},
        "2 threads, mixed_bfloat16": {**base, "threads": 2, "precision": "mixed_bfloat16"},
    }
    try:
        import tensorflow as tf

        has_gpu = bool(tf.config.list_physical_devices("GPU"))
    except ImportError:  # pragma: no cover
        has_gpu = False
    if has_gpu:
        configs["1 GPU, float32"] = {**base, "hide_gpu": False}
        configs["1 GPU, mixed_float16"] = {**base, "hide_gpu": False, "precision": "mixed_float16"}
    from _machine import describe, tag

    print(describe("float32, one row in mixed_bfloat16"))
    print(f"CIFAR-10 convnet (no augmentation), {samples} samples, global batch {args.batch}, "
          f"{epochs} epochs (first epoch excluded as warm-up); {os.cpu_count()} CPU cores")
    results = {}
    for name, cfg in configs.items():
        t0 = time.perf_counter()
        results[name] = run(cfg)
        print(f"  {name:<40} {results[name]['samples_per_s']:8.0f} samples/s   "
              f"(replicas {results[name]['replicas']}, {time.perf_counter() - t0:.0f} s wall) {tag(cfg.get('precision') or 'float32')}",
              flush=True)

    def ratio(a: str, b: str) -> str:
        return f"{results[a]['samples_per_s'] / results[b]['samples_per_s']:.2f}x"

    print("Ratios:")
    print("  2 threads / 1 thread:                 ", ratio("2 threads, float32", "1 thread, float32"), tag("float32"))
    print("  mirrored 2 replicas / default:        ", ratio("2 logical CPUs, mirrored (2 replicas)", "2 logical CPUs, default strategy"), tag("float32"))
    print("  mixed_bfloat16 / float32 (2 threads): ", ratio("2 threads, mixed_bfloat16", "2 threads, float32"),
          tag("mixed_bfloat16 / float32"))
    if has_gpu:
        print("  GPU mixed_float16 / float32:          ", ratio("1 GPU, mixed_float16", "1 GPU, float32"),
              tag("mixed_float16 / float32"))


if __name__ == "__main__":
    main()
