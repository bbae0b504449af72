"""The fast CIFAR-10 recipe's CPU layers beside Keras' and PyTorch's, forward and backward, printed.

At airbench94's shapes (batch 1024): the six convolutions, the six BatchNorm inputs and the
seven GELU inputs of ``convnets.fast_cifar10_convnet``. For each precision (``float32``,
``mixed_bfloat16``):

* Conv2D (3×3, 'same', no bias): ``keras.layers.Conv2D`` against the recipe's
  ``SmallMapConv2D`` (its own kernel gradient on the 7×7 and 3×3 maps, where it applies:
  bfloat16 on a CPU with bfloat16 units), training mode, input and kernel gradients;

* BatchNorm: ``keras.layers.BatchNormalization`` against the recipe's ``FusedBatchNorm``
  (TensorFlow's ``FusedBatchNormV3``), training mode;
* GELU: ``keras.layers.Activation("gelu")`` against the recipe's ``Gelu`` (XLA-compiled
  forward and backward), training mode;
* with ``--torch-python PY``: PyTorch's ``Conv2d``, ``BatchNorm2d`` (float32 parameters)
  and GELU on the same shapes (channels-last; bfloat16 tensors for the bfloat16 rows, as the
  reference's convolutions give them under autocast), the peers of the reference.

Each figure is the best of ``--repeats`` calls of one compiled forward-and-backward
function (milliseconds, summed over the shapes), with the CPU's features and the
precision beside it. Set ``ONEDNN_MAX_CPU_ISA=AVX2`` (and ``ATEN_CPU_CAPABILITY=avx2``) to
have both libraries pick an AVX2-only CPU's kernels.

Run: ``python benchmarks/fast_layers.py [--torch-python /path/to/python-with-torch] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BN_SHAPES = [(1024, 15, 15, 64), (1024, 15, 15, 64), (1024, 7, 7, 256), (1024, 7, 7, 256), (1024, 3, 3, 256),
             (1024, 3, 3, 256)]
GELU_SHAPES = [(1024, 31, 31, 24), *BN_SHAPES]
CONV_SHAPES = [(1024, 31, 31, 24), (1024, 15, 15, 64), (1024, 15, 15, 64), (1024, 7, 7, 256), (1024, 7, 7, 256),
               (1024, 3, 3, 256)]
CONV_FILTERS = [64, 64, 256, 256, 256, 256]

_TORCH = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[2]))
bn_shapes, gelu_shapes, conv_shapes, conv_filters, repeats = json.loads(sys.argv[1])
def best(f):
    f(); times = []
    for _ in range(repeats):
        t = time.perf_counter(); f(); times.append(time.perf_counter() - t)
    return min(times) * 1000
out = {}
for name, dtype in (("float32", torch.float32), ("mixed_bfloat16", torch.bfloat16)):
    bn = gelu = conv = 0.0
    for (n, h, w, c), f in zip(conv_shapes, conv_filters):
        x = torch.randn(n, c, h, w).to(dtype).to(memory_format=torch.channels_last).requires_grad_(True)
        layer = torch.nn.Conv2d(c, f, 3, padding=1, bias=False).to(dtype).to(memory_format=torch.channels_last)
        def step():
            layer(x).sum().backward()
        conv += best(step)
    for n, h, w, c in bn_shapes:
        x = torch.randn(n, c, h, w).to(dtype).to(memory_format=torch.channels_last).requires_grad_(True)
        layer = torch.nn.BatchNorm2d(c, eps=1e-12, momentum=0.4)  # float32 parameters, as under autocast
        def step():
            layer(x).sum().backward()
        bn += best(step)
    for n, h, w, c in gelu_shapes:
        x = torch.randn(n, c, h, w).to(dtype).to(memory_format=torch.channels_last).requires_grad_(True)
        def step():
            torch.nn.functional.gelu(x).sum().backward()
        gelu += best(step)
    out[name] = {"conv": conv, "batchnorm": bn, "gelu": gelu}
out["version"] = torch.__version__
print(json.dumps(out))
"""


def _best(fn, x, repeats: int) -> float:
    [g.numpy() for g in fn(x)]
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        [g.numpy() for g in fn(x)]
        times.append(time.perf_counter() - t)
    return min(times) * 1000


def _keras_side(make, shapes, policy: str, repeats: int) -> float:
    """Forward and backward (input and weight gradients) of ``make(policy, i)``, a layer for shape ``i``,
    in training mode, summed over ``shapes``, in ms."""
    import tensorflow as tf

    total = 0.0
    for i, shape in enumerate(shapes):
        layer = make(policy, i)
        layer.build(shape)
        x = tf.cast(tf.random.normal(shape), layer.compute_dtype)

        @tf.function
        def step(v, layer=layer):
            with tf.GradientTape() as tape:
                tape.watch(v)
                loss = tf.reduce_sum(tf.cast(layer(v, training=True), tf.float32))
            # all of them: a gradient left out of the outputs would be pruned from the graph
            return tape.gradient(loss, [v, *layer.trainable_weights])

        total += _best(step, x, repeats)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--torch-python", default=None, metavar="PY", help="a Python with torch: its layers too")
    parser.add_argument("--repeats", type=int, default=5, help="calls per figure; the best is shown (default: 5)")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import keras
    from _machine import describe, tag

    from visionkit import _fast_cifar as F

    print(describe(), flush=True)
    torch_ms = None
    if args.torch_python:
        payload = json.dumps([BN_SHAPES, GELU_SHAPES, CONV_SHAPES, CONV_FILTERS, args.repeats])
        done = subprocess.run([args.torch_python, "-c", _TORCH, payload, str(os.cpu_count() or 1)],
                              capture_output=True, text=True, check=True)
        torch_ms = json.loads(done.stdout.strip().splitlines()[-1])
    rows = {
        "conv": (lambda p, i: keras.layers.Conv2D(CONV_FILTERS[i], 3, padding="same", use_bias=False, dtype=p),
                 lambda p, i: F.SmallMapConv2D(CONV_FILTERS[i], 3, padding="same", use_bias=False, dtype=p),
                 CONV_SHAPES),
        "batchnorm": (lambda p, i: keras.layers.BatchNormalization(momentum=0.6, epsilon=1e-12, scale=False, dtype=p),
                      lambda p, i: F.FusedBatchNorm(momentum=0.6, epsilon=1e-12, scale=False, dtype=p), BN_SHAPES),
        "gelu": (lambda p, i: keras.layers.Activation("gelu", dtype=p), lambda p, i: F.Gelu(dtype=p), GELU_SHAPES),
    }
    for policy in ("float32", "mixed_bfloat16"):
        for name, (theirs, ours, shapes) in rows.items():
            k = _keras_side(theirs, shapes, policy, args.repeats)
            v = _keras_side(ours, shapes, policy, args.repeats)
            peer = f"  PyTorch {torch_ms[policy][name]:6.0f} ms (torch {torch_ms['version']})" if torch_ms else ""
            print(f"{name:9s} fwd+bwd, {len(shapes)} shapes: Keras {k:6.0f} ms  visionkit {v:6.0f} ms "
                  f"({k / v:4.2f}x){peer}  {tag(policy)}", flush=True)


if __name__ == "__main__":
    main()
