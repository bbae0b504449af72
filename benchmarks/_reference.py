"""The ``reference`` task of ``convnets.py``: the fast recipe beside airbench94 in PyTorch, on the CPU.

Both train on the same CIFAR-10 arrays (visionkit's loader: VISIONKIT_DATA's copy, else
the bundled sample), ``--reference-epochs`` epochs each at batch 1024, one after the
other and alternating for ``--rounds``; each epoch is timed around its training loop
(visionkit: ``fit``'s epoch, pipeline included; the reference: its own
``total_time_seconds``, data preparation included). The reference runs in a child
process (``_airbench_cpu.py``) under ``--torch-python`` with the same environment, so
an ``ONEDNN_MAX_CPU_ISA`` cap applies to both (and ``ATEN_CPU_CAPABILITY`` is set to
match it for PyTorch's own kernels).

With ``--reference-accuracy`` the reference instead runs its own full budget once per
``--seeds`` (``torch.manual_seed``), evaluated as it evaluates itself (TTA level 2), so
its mean on this copy of the data stands beside the fast recipe's.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _machine import tag

from visionkit import convnets, data
from visionkit.device import resolve_precision

HERE = Path(__file__).resolve().parent


def _rates(seconds: list[float], images: int) -> str:
    return " ".join(f"{images / s:6.0f}" for s in seconds)


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    cap = env.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if cap.startswith("AVX2") and "ATEN_CPU_CAPABILITY" not in env:
        env["ATEN_CPU_CAPABILITY"] = "avx2"  # PyTorch's own (non-oneDNN) kernels, capped alike
    return env


def run_reference(args: Any, npz: Path, precision: str, *, seed: int | None = None) -> dict[str, Any]:
    """One run of the user's airbench94.py through ``_airbench_cpu.py``; its timing record.

    ``seed`` given: a full run at the reference's own budget, evaluated (``--evaluate``).
    """
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "times.json"
        budget = ["--evaluate", "--seed", str(seed)] if seed is not None else ["--epochs", str(args.reference_epochs)]
        cmd = [args.torch_python, str(HERE / "_airbench_cpu.py"), "--reference", str(Path(args.reference).resolve()),
               "--data", str(npz), *budget, "--precision", precision, "--out", str(out)]
        done = subprocess.run(cmd, env=_child_env(), capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"the reference failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        return json.loads(out.read_text())


def run_visionkit(args: Any, sample: bool, timer_cls: Any) -> tuple[list[float], list[float], str]:
    timer = timer_cls()
    result = convnets.train_cifar10_fast(epochs=args.reference_epochs, precision=args.precision, seed=0,
                                         sample=sample, limit=args.limit, progress=False, callbacks=[timer], tta=False)
    return timer.times, timer.cpu, result.settings["precision"]


def reference_run(args: Any, sample: bool, timer_cls: Any) -> None:
    """Print visionkit's and the reference's images/s side by side, with their ratio."""
    (x, y), (xt, yt) = data.load_cifar10(sample=sample)
    if args.limit:  # throughput probes: the same number of images on both sides (the reference's first ones)
        x, y = x[:args.limit], y[:args.limit]
    ours_precision = resolve_precision(args.precision)
    theirs = "bfloat16" if ours_precision == "mixed_bfloat16" else "float32"
    if len(x) < 1024:
        print(f"reference: skipped, {len(x)} training images is less than one batch of 1024 (set VISIONKIT_DATA)")
        return
    images = (len(x) // 1024) * 1024
    print(f"reference: airbench94 ({args.reference}) in PyTorch vs train_cifar10_fast, {len(x)} training images, "
          f"{args.reference_epochs} epoch(s) each at batch 1024, {args.rounds} alternating round(s); visionkit "
          f"{ours_precision}, reference {theirs}{' (autocast)' if theirs == 'bfloat16' else ''}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        npz = Path(folder) / "cifar10.npz"
        np.savez(npz, x_train=x, y_train=y, x_test=xt, y_test=yt)
        best_ours = best_theirs = 0.0
        for r in range(args.rounds):
            walls, cpus, policy = run_visionkit(args, sample, timer_cls)
            load_ours = os.getloadavg()
            rec = run_reference(args, npz, theirs)
            load_theirs = os.getloadavg()
            last_ours, last_theirs = images / walls[-1], images / rec["epoch_seconds"][-1]
            best_ours, best_theirs = max(best_ours, last_ours), max(best_theirs, last_theirs)
            print(f"  round {r + 1}: visionkit  img/s by epoch {_rates(walls, images)} | per CPU-second "
                  f"{_rates(cpus, images)} | load {load_ours[0]:.1f} {tag(policy)}\n"
                  f"           reference  img/s by epoch {_rates(rec['epoch_seconds'], images)} | per CPU-second "
                  f"{_rates(rec['epoch_cpu_seconds'], images)} | load {load_theirs[0]:.1f} "
                  f"[torch {rec['torch']}, {rec['threads']} threads, {theirs}]\n"
                  f"           ratio visionkit/reference (last epoch): wall {last_ours / last_theirs:.2f}, "
                  f"CPU {rec['epoch_cpu_seconds'][-1] / cpus[-1]:.2f}", flush=True)
    print(f"  best of rounds (last epoch): visionkit {best_ours:.0f} img/s, reference {best_theirs:.0f} img/s, "
          f"ratio {best_ours / best_theirs:.2f} {tag(policy)} at {time.strftime('%Y-%m-%d %H:%M')}", flush=True)


def reference_accuracy(args: Any, sample: bool) -> None:
    """The reference's own full runs on visionkit's CIFAR-10 arrays: TTA accuracy per seed, mean and spread."""
    (x, y), (xt, yt) = data.load_cifar10(sample=sample)
    theirs = "bfloat16" if resolve_precision(args.precision) == "mixed_bfloat16" else "float32"
    print(f"reference accuracy: airbench94 ({args.reference}) in PyTorch, its own budget, {len(x)} training images, "
          f"{theirs}, seeds {args.seeds} (torch.manual_seed)", flush=True)
    accuracies = []
    with tempfile.TemporaryDirectory() as folder:
        npz = Path(folder) / "cifar10.npz"
        np.savez(npz, x_train=x, y_train=y, x_test=xt, y_test=yt)
        for seed in args.seeds:
            rec = run_reference(args, npz, theirs, seed=seed)
            accuracies.append(rec["tta_val_acc"])
            if args.curves:  # the record, for benchmarks/fast_cifar_seeds_figure.py --reference
                Path(args.curves).mkdir(parents=True, exist_ok=True)
                (Path(args.curves) / f"airbench94-{theirs}-seed{seed}.json").write_text(json.dumps(rec))
            print(f"  seed {seed}: TTA accuracy {rec['tta_val_acc']:.4f}, training {sum(rec['epoch_seconds']):.0f} s "
                  f"| load {os.getloadavg()[0]:.1f} [torch {rec['torch']}, {rec['threads']} threads, {theirs}]", flush=True)
    spread = f" +- {np.std(accuracies, ddof=1):.4f}" if len(accuracies) > 1 else ""
    print(f"  mean of {len(accuracies)}: {np.mean(accuracies):.4f}{spread} {tag(theirs)}", flush=True)
