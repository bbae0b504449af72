"""Convnet recipes: accuracy, wall time and throughput, printed.

    python benchmarks/convnets.py            # the issue's full settings (CIFAR-10 wants a GPU)
    python benchmarks/convnets.py --quick    # minutes on a laptop CPU
    python benchmarks/convnets.py --only chollet,throughput
    python benchmarks/convnets.py --only cifar10-fast --seeds 0 1 2           # the fast recipe
    python benchmarks/convnets.py --only cifar10-fast --seeds 0 1 2 --no-ema  # an ablation

Tasks (``--only``, comma-separated; default all):

* ``chollet``: MNIST, the book's convnet, 5 epochs, batch 64, RMSprop, all 60,000
  training images (no hold-out, like the book); target test accuracy >= 0.990.
* ``cookbook``: MNIST, the cookbook convnet, same settings; target >= 0.985.
* ``cifar10``: ``convnets.train_cifar10`` at its defaults on CIFAR-10 (the JPEG copy in
  VISIONKIT_DATA): 45,000 training images, 5,000 held out, 50 epochs, batch 64, Adam
  with a cosine-decaying rate, flips and shifts up to 10 %; target test accuracy >= 0.80.
* ``cifar10-rotate``: the same plus the classic rotations up to 25°.
* ``cifar10-classic``: the classic recipe (``rotation=25, translation=0,
  lr_schedule="constant"``): flips and rotations, constant rate.
* ``cifar10-fast``: ``convnets.train_cifar10_fast`` (airbench94 the Keras way) on all
  50,000 training images, 10 epochs, batch 1024, once per ``--seeds``: test accuracy with
  and without TTA, wall time of the whole run (data loading, whitening, training,
  evaluation), training images/s (epoch times), then mean/std/min over the seeds.
  ``--epochs``, ``--limit``, ``--precision float32|auto`` and the ablation switches
  ``--no-whitening --no-ema --no-tta --no-alt-flip --no-label-smoothing``.
* ``pipeline``: the fast recipe's training step fed from its real ``tf.data`` pipeline
  against the same step on one constant in-memory batch (target ratio <= 1.05).
* ``throughput``: ``visionkit.training.train`` against a naive ``model.fit`` on numpy
  arrays of the same model, batch size and optimizer, side by side, alternating, in
  this run: samples/s from the median epoch time (first epoch, with tracing, left out).
* ``jit``: the same ``fit`` with ``jit_compile=False`` and ``True``.
* ``reference``: the fast recipe against the airbench94 PyTorch reference on the CPU, on
  the same data, ``--reference-epochs`` (default 2) each, epochs timed alike (the
  training loop only), alternating for ``--rounds``: images/s of each epoch (wall and
  per CPU-second) side by side, their ratio, the CPU's features and the precision
  (``--precision float32``: both float32; ``auto``: visionkit's choice, and the
  reference under ``torch.autocast`` bfloat16 when that is ``mixed_bfloat16``). Needs
  ``--reference PATH/TO/airbench94.py`` (your copy of KellerJordan/cifar10-airbench's
  ``legacy/airbench94.py``; none of it is in this repository) and a Python with
  PyTorch and torchvision (``--torch-python``, default this one); the adaptations it
  makes at run time are listed in ``_airbench_cpu.py`` and docs/fast-cifar10.md.

Data come from VISIONKIT_DATA (see ``docs/offline-data.md``); without it the bundled
samples are used and the accuracies are not comparable with the targets.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras
import numpy as np
from _machine import describe, tag

from visionkit import convnets, data, training

CIFAR10_VARIANTS = {
    "cifar10": ({}, "cosine, flips+shifts"),
    "cifar10-rotate": ({"rotation": 25.0}, "cosine, flips+shifts+rotations"),
    "cifar10-classic": ({"rotation": 25.0, "translation": 0.0, "lr_schedule": "constant"}, "constant, flips+rotations"),
}
TASKS = ("chollet", "cookbook", *CIFAR10_VARIANTS, "cifar10-fast", "pipeline", "throughput", "jit", "reference")


class EpochTimer(keras.callbacks.Callback):
    """Wall and process CPU seconds of each epoch (CPU time: less at the mercy of a shared machine's load)."""

    def __init__(self, report: bool = False) -> None:
        super().__init__()
        self.times: list[float] = []
        self.cpu: list[float] = []
        self.report = report  # a line per epoch: long runs show how far they got

    def on_epoch_begin(self, epoch, logs=None):
        self._t, self._c = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._t)
        self.cpu.append(time.process_time() - self._c)
        if self.report:
            accuracy = (logs or {}).get("accuracy", float("nan"))
            print(f"    epoch {epoch + 1}: {self.times[-1]:.1f} s ({self.cpu[-1]:.1f} CPU-s), "
                  f"training accuracy {accuracy:.4f}, load {os.getloadavg()[0]:.1f}", flush=True)


def shuffled(x, y, limit=None):
    """A seeded random subset."""
    order = np.random.default_rng(0).permutation(len(x))[:limit]
    return x[order], y[order]


def mnist(sample: bool):
    (x, y), (xt, yt) = data.load_mnist(sample=sample)
    return (x[..., None], y), (xt[..., None], yt)


def cifar10_run(name: str, args: argparse.Namespace, sample: bool) -> None:
    """The recipe as a user runs it: ``train_cifar10`` (its hold-out split, its evaluation)."""
    keras.utils.set_random_seed(0)
    options, described = CIFAR10_VARIANTS[name]
    epochs = 1 if args.quick else 50
    start = time.perf_counter()
    _model, history, metrics = convnets.train_cifar10(
        epochs=epochs, limit=5000 if args.quick else None, sample=sample, seed=0, progress=False, **options
    )
    wall = time.perf_counter() - start
    h = history.history
    best = int(np.argmax(h["val_accuracy"]))
    available = 1000 if sample else 50000
    n_train = round(min(5000 if args.quick else available, available) * 0.9)
    print(f"{name:<15} train={n_train:>6} epochs={epochs:>2} batch=64 adam "
          f"{described} "
          f"test_acc={metrics['accuracy']:.4f} (target 0.800{'' if not (args.quick or sample) else ', not comparable at these settings'}) "
          f"final val_acc={h['val_accuracy'][-1]:.4f}, best val_acc={h['val_accuracy'][best]:.4f} at epoch {best + 1}, "
          f"final train acc={h['accuracy'][-1]:.4f} wall={wall:7.1f}s  {n_train * epochs / wall:8.0f} samples/s "
          f"(wall clock, validation and test included) {tag()}", flush=True)
    for epoch in range(0, epochs, 5 if epochs >= 10 else 1):
        print(f"    epoch {epoch + 1:>2}: acc {h['accuracy'][epoch]:.4f}  val_acc {h['val_accuracy'][epoch]:.4f}", flush=True)
    if args.curves:
        from visionkit._io import save_figure
        from visionkit.visualize import plot_history

        path = Path(args.curves) / f"{name}-curves.png"
        save_figure(plot_history(history), path)
        print(f"    curves: {path}", flush=True)


def accuracy_run(name: str, args: argparse.Namespace, sample: bool) -> None:
    keras.utils.set_random_seed(0)
    if name.startswith("cifar10"):
        cifar10_run(name, args, sample)
        return
    (x, y), (xt, yt) = mnist(sample)
    epochs = 1 if args.quick else 5
    limit = (10000 if name == "chollet" else 3000) if args.quick else None
    x, y = shuffled(x, y, limit)
    model = convnets.mnist_convnet(variant=name)
    optimizer, target = "rmsprop", 0.990 if name == "chollet" else 0.985
    timer = EpochTimer()
    start = time.perf_counter()
    training.train(model, (x, y), epochs=epochs, batch_size=64, optimizer=optimizer, seed=0,
                   progress=False, callbacks=[timer])
    wall = time.perf_counter() - start
    acc = training.evaluate(model, (xt, yt), batch_size=256)["accuracy"]
    rate = len(x) * epochs / sum(timer.times)
    print(f"{name:<9} train={len(x):>6} epochs={epochs:>2} batch=64 {optimizer:<7} "
          f"test_acc={acc:.4f} (target {target:.3f}{'' if not (args.quick or sample) else ', not comparable at these settings'}) "
          f"wall={wall:7.1f}s  {rate:8.0f} samples/s {tag()}", flush=True)


def fast_run(args: argparse.Namespace, sample: bool) -> None:
    """``train_cifar10_fast`` once per seed, as a user runs it; then mean/std/min over the seeds."""
    parts = {"whitening": not args.no_whitening, "ema": False if args.no_ema else None, "tta": not args.no_tta,
             "alternating_flip": not args.no_alt_flip, "label_smoothing": 0.0 if args.no_label_smoothing else 0.2}
    off = [k for k, v in parts.items() if v is not None and v in (False, 0.0)]
    given = {"epochs": args.epochs} if args.epochs else {}  # else the variant's (its batch is too)
    print(f"cifar10-fast: variant={args.variant} epochs={args.epochs or 'default'} precision={args.precision} limit={args.limit} "
          f"off={off or 'none'} seeds={args.seeds}", flush=True)
    accs, plain, walls, rates = [], [], [], []
    for seed in args.seeds:
        keras.utils.set_random_seed(seed)
        timer = EpochTimer(report=True)
        start = time.perf_counter()
        result = convnets.train_cifar10_fast(variant=args.variant, **given, precision=args.precision,
                                             seed=seed, limit=args.limit, sample=sample, progress=False, callbacks=[timer], **parts)
        wall = time.perf_counter() - start
        epochs, batch = result.settings["epochs"], result.settings["batch_size"]
        n_train = min(args.limit or 50000, 1000 if sample else 50000)
        steps_images = (n_train // min(batch, n_train)) * min(batch, n_train)
        rate = steps_images * epochs / sum(timer.times)
        later = steps_images * (epochs - 1) / sum(timer.times[1:]) if epochs > 1 else float("nan")
        m = result.metrics
        accs.append(m["accuracy"])
        plain.append(m["accuracy_no_tta"])
        walls.append(wall)
        rates.append(rate)
        print(f"  seed {seed}: test_acc={m['accuracy']:.4f} (no TTA {m['accuracy_no_tta']:.4f}) wall={wall:7.1f}s "
              f"train {rate:6.0f} images/s ({later:6.0f} after the first epoch) {tag(result.settings['precision'])}",
              flush=True)
        if args.curves:
            save_fast_curves(result, Path(args.curves), f"cifar10-fast{'' if args.variant == '94' else '-' + args.variant}-ep{epochs}-{args.precision}"
                             f"{''.join('-no-' + k for k in off)}-seed{seed}", timer.times, wall)

    def stats(v):
        return f"mean {statistics.mean(v):.4f} std {statistics.stdev(v) if len(v) > 1 else 0.0:.4f} min {min(v):.4f}"

    print(f"  accuracy (TTA)    {stats(accs)}\n  accuracy (no TTA) {stats(plain)}\n"
          f"  wall {statistics.mean(walls):.1f}s mean, train {statistics.mean(rates):.0f} images/s mean "
          f"{tag(result.settings['precision'])}", flush=True)


def save_fast_curves(result, folder: Path, stem: str, epoch_times: list[float], wall: float) -> None:
    """The run's curves (PNG) and its history, epoch times and metrics (JSON), for the docs."""
    from visionkit._io import save_figure, write_json
    from visionkit.visualize import plot_history

    save_figure(plot_history(result.history), folder / f"{stem}.png")
    record = {"history": {k: [float(v) for v in vs] for k, vs in result.history.history.items()},
              "epoch_seconds": [float(t) for t in epoch_times], "wall_seconds": wall, "metrics": dict(result.metrics),
              "load_average": os.getloadavg(), "machine": describe(result.settings["precision"]),
              "settings": {k: v for k, v in result.settings.items() if isinstance(v, (int, float, str, bool))}}
    write_json(folder / f"{stem}.json", record)
    print(f"    curves: {folder / stem}.png and .json", flush=True)


def pipeline_probe(args: argparse.Namespace, sample: bool) -> None:
    """One epoch of the fast recipe's step from its tf.data pipeline vs from one constant batch."""
    import tensorflow as tf

    from visionkit import _fast_cifar as F
    from visionkit.device import precision_scope, resolve_precision

    (x, y), _ = data.load_cifar10(sample=sample)
    n = min(args.limit or 10240, len(x))
    x, y = x[:n], y[:n]
    batch = min(1024, n)
    precision = resolve_precision(args.precision)
    with precision_scope(precision):
        model = F.build_model(whitening_images=x[:5000], seed=0)
    counter = F.EpochVariable()
    ds, steps = F.train_dataset(x, y, batch_size=batch, seed=0, epoch=counter.variable)
    first = next(iter(ds))
    const = tf.data.Dataset.from_tensors(first).repeat(steps)
    model.compile(optimizer=F.make_optimizer(learning_rate=None, schedule=None, total_steps=4 * steps,
                                             global_batch=batch),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2))
    model.fit(const.take(2), epochs=1, verbose=0, shuffle=False)  # trace once
    rounds = {"pipeline": [], "constant": []}
    for _ in range(2):
        for name, source in (("pipeline", ds), ("constant", const)):
            timer = EpochTimer()
            model.fit(source, epochs=1, verbose=0, callbacks=[timer, counter], shuffle=False)
            rounds[name].append(timer.times[0] / steps)
    p, c = min(rounds["pipeline"]), min(rounds["constant"])
    print(f"pipeline: {n} images, batch {batch}, {steps} steps, precision {precision}: step from the pipeline "
          f"{p * 1000:.0f} ms, on a constant batch {c * 1000:.0f} ms, ratio {p / c:.3f} (target <= 1.05); "
          f"{batch / p:.0f} images/s {tag(precision)}", flush=True)


def naive_fit(x, y, epochs: int, jit: bool | str = "auto") -> float:
    """Plain model.fit on numpy arrays: the baseline."""
    model = convnets.mnist_convnet()
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=jit)
    timer = EpochTimer()
    model.fit(x.astype("float32"), y, batch_size=64, epochs=epochs, verbose=0, callbacks=[timer])
    return len(x) / statistics.median(timer.times[1:])


def visionkit_train(x, y, epochs: int) -> float:
    model = convnets.mnist_convnet()
    timer = EpochTimer()
    training.train(model, (x, y), epochs=epochs, batch_size=64, optimizer="rmsprop", progress=False,
                   callbacks=[timer])
    return len(x) / statistics.median(timer.times[1:])


def dataset_fit(x, y, epochs: int, jit: bool) -> float:
    model = convnets.mnist_convnet()
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=jit)
    timer = EpochTimer()
    model.fit(data.from_arrays(x, y, batch_size=64, seed=0), epochs=epochs, verbose=0, callbacks=[timer],
              shuffle=False)
    return len(x) / statistics.median(timer.times[1:])


def check_reference_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors of the ``reference`` task, before anything runs."""
    if args.reference is None:
        parser.error("the reference task needs --reference PATH/TO/airbench94.py (your copy of "
                     "KellerJordan/cifar10-airbench's legacy/airbench94.py)")
    if not Path(args.reference).is_file():
        parser.error(f"--reference {args.reference}: no such file")
    if args.reference_epochs < 1 or args.rounds < 1:
        parser.error("--reference-epochs and --rounds must be at least 1")
    import shutil
    import subprocess

    python = shutil.which(args.torch_python) or args.torch_python
    try:
        probe = subprocess.run([python, "-c", "import torch, torchvision"], capture_output=True, text=True)
        problem = None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["failed"])[-1]
    except OSError as exc:
        problem = str(exc)
    if problem is not None:
        parser.error(f"--torch-python {args.torch_python}: cannot import torch and torchvision ({problem})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small subsets, 1 epoch")
    parser.add_argument("--only", default=",".join(TASKS), help=f"comma-separated tasks from {TASKS}")
    parser.add_argument("--curves", default=None, metavar="DIR", help="save the CIFAR-10 runs' training curves here (and --reference-accuracy's records)")
    fast = parser.add_argument_group("cifar10-fast and pipeline")
    fast.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed (default: 0)")
    fast.add_argument("--variant", choices=convnets.FAST_VARIANTS, default="94", help="the fast recipe's budget (default: 94)")
    fast.add_argument("--epochs", type=int, default=None,
                      help="epochs of the fast recipe (default: the variant's, 10 for 94, 15 for 95, 8 for 94-muon)")
    fast.add_argument("--limit", type=int, default=None, help="train on N images only (subset probes)")
    fast.add_argument("--precision", choices=("float32", "auto"), default="auto", help="(default: auto)")
    for part in ("whitening", "ema", "tta", "alt-flip", "label-smoothing"):
        fast.add_argument(f"--no-{part}", action="store_true", help=f"ablation: no {part}")
    ref = parser.add_argument_group("reference")
    ref.add_argument("--reference", default=None, metavar="PATH", help="your copy of airbench94.py")
    ref.add_argument("--torch-python", default=sys.executable, metavar="PATH",
                     help="a Python with torch and torchvision (default: this one)")
    ref.add_argument("--reference-epochs", type=int, default=2, help="epochs of each side (default: 2)")
    ref.add_argument("--rounds", type=int, default=1, help="alternating rounds (default: 1)")
    ref.add_argument("--reference-accuracy", action="store_true",
                     help="instead of timing: the reference's own full runs, one per --seeds, TTA accuracy")
    args = parser.parse_args()
    tasks = [t.strip() for t in args.only.split(",") if t.strip()]
    for t in tasks:
        if t not in TASKS:
            parser.error(f"unknown task {t!r}; choose from {TASKS}")
    if "reference" in tasks:
        check_reference_args(parser, args)
    sample = data.data_dir() is None
    import tensorflow as tf

    print(f"{describe()}; devices: {[d.device_type for d in tf.config.list_physical_devices()]}")
    print(f"data: {'bundled samples (VISIONKIT_DATA unset)' if sample else data.data_dir()}; "
          f"mode: {'quick' if args.quick else 'full'}", flush=True)

    for name in ("chollet", "cookbook", *CIFAR10_VARIANTS):
        if name in tasks:
            accuracy_run(name, args, sample)
    if "pipeline" in tasks:
        pipeline_probe(args, sample)
    if "cifar10-fast" in tasks:
        fast_run(args, sample)
    if "reference" in tasks:
        from _reference import reference_accuracy, reference_run

        if args.reference_accuracy:
            reference_accuracy(args, sample)
        else:
            reference_run(args, sample, EpochTimer)

    if "throughput" in tasks or "jit" in tasks:
        (x, y), _ = mnist(sample)
        n = 3200 if args.quick else 12800
        epochs = 3 if args.quick else 4
        x, y = shuffled(x, y, n)
    if "throughput" in tasks:
        rounds = 2
        print(f"throughput: mnist chollet, {n} images x {epochs} epochs, batch 64, RMSprop, median epoch "
              f"after the first, {rounds} alternating rounds", flush=True)
        naive, ours = [], []
        for _ in range(rounds):
            naive.append(naive_fit(x, y, epochs))
            ours.append(visionkit_train(x, y, epochs))
        for i in range(rounds):
            print(f"  round {i + 1}: model.fit(numpy) {naive[i]:8.0f} samples/s | training.train() {ours[i]:8.0f} samples/s"
                  f" | ratio {ours[i] / naive[i]:.2f} {tag()}")
        print(f"  best of rounds: model.fit(numpy) {max(naive):.0f} samples/s, training.train() {max(ours):.0f} "
              f"samples/s, ratio {max(ours) / max(naive):.2f} {tag()}", flush=True)
    if "jit" in tasks:
        print(f"jit_compile: mnist chollet on the from_arrays dataset, {n} images x {epochs} epochs", flush=True)
        off, on = [], []
        for _ in range(1 if args.quick else 2):
            off.append(dataset_fit(x, y, epochs, False))
            on.append(dataset_fit(x, y, epochs, True))
        print(f"  jit_compile=False {max(off):8.0f} samples/s | jit_compile=True {max(on):8.0f} samples/s | "
              f"ratio on/off {max(on) / max(off):.2f} (train() leaves it to Keras' 'auto': off on CPU) {tag()}", flush=True)


if __name__ == "__main__":
    main()
