"""Run the user's copy of airbench94.py on the CPU, timed per epoch (a child of ``convnets.py --only reference``).

    /path/to/torch-python benchmarks/_airbench_cpu.py --reference airbench94.py --data cifar.npz \
        --epochs 2 --precision float32 --out times.json

None of the reference's code is kept here: its file is read and executed as it is, after
these run-time adaptations (the same ones, done by hand, are listed in docs/fast-cifar10.md):

* CUDA to CPU: ``Tensor.cuda``/``Module.cuda`` return the object itself, ``torch.load``
  maps to the CPU, ``torch.cuda.Event`` times with ``time.perf_counter`` and
  ``torch.cuda.synchronize`` does nothing (the CPU runs synchronously);
* precision: ``.half()`` becomes float32; ``--precision bfloat16`` keeps float32
  weights and runs the network's forward under ``torch.autocast("cpu", torch.bfloat16)``
  (mixed precision, as visionkit's ``mixed_bfloat16``);
* data: CIFAR-10 from ``--data`` (uint8 ``x_train``, ``y_train``, ``x_test``,
  ``y_test``, written by the parent from visionkit's loader) saved in the reference's
  own ``cifar10/{train,test}.pt`` format in a temporary folder, so nothing is downloaded;
* the budget: ``hyp["opt"]["train_epochs"] = --epochs``; the per-epoch and final
  evaluations are skipped (only the training loop is timed, as for visionkit), unless
  ``--evaluate`` (accuracy runs: the reference's own budget unless ``--epochs`` is given,
  its evaluations kept, ``torch.manual_seed(--seed)`` first, the final TTA accuracy written);
* timing: the cumulative ``total_time_seconds`` the reference logs after each epoch,
  differenced, less the whitening initialisation it also counts.

Writes ``{"epoch_seconds": [...], "epoch_cpu_seconds": [...], "steps_per_epoch": int, "batch_size": int, "torch": version}``
to ``--out`` (with ``"tta_val_acc"`` and ``"seed"`` under ``--evaluate``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import types


class _Event:
    """``torch.cuda.Event`` on the CPU: wall-clock marks; the process CPU time between them adds to ``cpu``."""

    cpu = 0.0

    def __init__(self, **_: object) -> None:
        self.t = self.c = 0.0

    def record(self, *_: object) -> None:
        self.t, self.c = time.perf_counter(), time.process_time()

    def elapsed_time(self, end: _Event) -> float:
        _Event.cpu += end.c - self.c
        return (end.t - self.t) * 1000.0


def _adapt_torch(torch: types.ModuleType, dtype: str) -> None:
    """Patch the CUDA and half-precision calls the reference makes (see the module docstring)."""
    torch.Tensor.cuda = lambda self, *a, **k: self
    torch.nn.Module.cuda = lambda self, *a, **k: self
    torch.Tensor.half = lambda self, *a, **k: self.float()
    torch.nn.Module.half = lambda self: self.float()
    torch.cuda.Event = _Event
    torch.cuda.synchronize = lambda *a, **k: None
    load = torch.load
    torch.load = lambda f, *a, map_location=None, **k: load(f, *a, map_location="cpu", **k)


def _write_data(torch: types.ModuleType, npz: str, folder: str) -> None:
    import numpy as np

    arrays = np.load(npz)
    os.makedirs(os.path.join(folder, "cifar10"), exist_ok=True)
    classes = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for part in ("train", "test"):
        torch.save({"images": torch.tensor(arrays[f"x_{part}"]), "classes": classes,
                    "labels": torch.tensor(arrays[f"y_{part}"].reshape(-1).astype("int64"))},
                   os.path.join(folder, "cifar10", f"{part}.pt"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference", required=True, help="the user's airbench94.py")
    parser.add_argument("--data", required=True, help=".npz with x_train, y_train, x_test, y_test (uint8)")
    parser.add_argument("--epochs", type=int, default=None, help="default: 2, or the reference's own under --evaluate")
    parser.add_argument("--evaluate", action="store_true", help="keep the evaluations; write the final TTA accuracy")
    parser.add_argument("--seed", type=int, default=0, help="torch.manual_seed before the run (with --evaluate)")
    parser.add_argument("--precision", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    args.data, args.out = os.path.abspath(args.data), os.path.abspath(args.out)  # the run changes directory

    import torch

    _adapt_torch(torch, args.precision)
    source = open(args.reference, encoding="utf-8").read()
    ns: dict[str, object] = {"__name__": "airbench_reference", "__file__": args.reference}
    exec(compile(source, args.reference, "exec"), ns)  # defines hyp, make_net, main...; runs nothing
    hyp = ns["hyp"]
    if args.epochs is None and not args.evaluate:
        args.epochs = 2
    if args.epochs is not None:  # else the reference's own budget
        hyp["opt"]["train_epochs"] = args.epochs  # type: ignore[index]
    if args.evaluate:
        torch.manual_seed(args.seed)
    else:
        ns["evaluate"] = lambda *a, **k: float("nan")
    marks: list[tuple[object, float, float]] = []
    ns["print_training_details"] = lambda variables, is_final_entry: marks.append(
        (variables.get("epoch"), float(variables.get("total_time_seconds", 0.0)), _Event.cpu))
    whitening: list[tuple[float, float]] = []
    init = ns["init_whitening_conv"]

    def timed_init(*a: object, **k: object) -> object:
        t, c = time.perf_counter(), time.process_time()
        out = init(*a, **k)  # type: ignore[operator]
        whitening.append((time.perf_counter() - t, time.process_time() - c))
        return out

    ns["init_whitening_conv"] = timed_init
    if args.precision == "bfloat16":
        make = ns["make_net"]

        def make_net() -> object:
            net = make()  # type: ignore[operator]
            forward = net.forward

            def autocast_forward(x: object) -> object:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return forward(x).float()

            net.forward = autocast_forward
            return net

        ns["make_net"] = make_net
    with tempfile.TemporaryDirectory() as folder:
        _write_data(torch, args.data, folder)
        os.chdir(folder)
        accuracy = ns["main"](args.seed)  # type: ignore[operator]
    if args.evaluate:
        print(f"seed {args.seed}: tta_val_acc {float(accuracy):.4f}", flush=True)
    walls = [w for epoch, w, _ in marks if epoch != "eval"]
    cpus = [c for epoch, _, c in marks if epoch != "eval"]
    seconds = [b - a for a, b in zip([sum(w for w, _ in whitening), *walls[:-1]], walls)]
    cpu_seconds = [b - a for a, b in zip([sum(c for _, c in whitening), *cpus[:-1]], cpus)]
    batch = int(hyp["opt"]["batch_size"])  # type: ignore[index]
    import numpy as np

    n = len(np.load(args.data)["y_train"])
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump({"epoch_seconds": seconds, "epoch_cpu_seconds": cpu_seconds, "steps_per_epoch": n // batch, "batch_size": batch,
                   "torch": torch.__version__, "threads": torch.get_num_threads(),
                   **({"tta_val_acc": float(accuracy), "seed": args.seed} if args.evaluate else {})}, fh)


if __name__ == "__main__":
    main()
