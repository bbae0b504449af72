"""Speed of visionkit's batched Grad-CAM against ``model.predict`` and a per-image loop.

On VGG16 (``weights=None``: random weights cost exactly what ImageNet weights cost) with
its classifier head, for N images at 224x224, in one process, interleaved round by round
(the medians are printed):

1. ``predict``: ``model.predict(x, batch_size=32)``, the cost of one forward pass;
2. ``visionkit``: ``visionkit.gradcam.grad_cam(model, x)`` (compiled forward + gradient
   of the class logit w.r.t. the last 4-D layer, the whole batch in one step);
3. ``naive``: the textbook per-image loop (keras.io Grad-CAM example), written here:
   a ``keras.Model(model.inputs, [layer.output, model.output])``, then for each image an
   eager ``GradientTape`` forward, the gradient of the top softmax score, the channel
   weights and the map.

The first call of each (graph building, tracing) is excluded from the rounds and
printed separately. The per-image heatmaps of 2 and 3 are compared, for the record.

    python benchmarks/gradcam.py [--quick] [--images 32] [--rounds 3]

With ``--methods``: every method of ``grad_cam`` and every gradient attribution,
batched, on a small convnet (64x64 RGB, 3 conv layers, 10 classes); saliency,
SmoothGrad and integrated gradients against the per-image ``GradientTape`` loop written
here (target >= 3x faster), and Score-CAM against tf-keras-vis on the same batch when
tf-keras-vis is installed.

    python benchmarks/gradcam.py --methods [--images 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _machine import describe, tag  # noqa: E402  (the CPU and precision beside every figure)


def naive_grad_cam(grad_model, images, size):
    """Per-image Grad-CAM, the keras.io way (score after the softmax)."""
    import numpy as np
    import tensorflow as tf

    maps = []
    for img in images:
        with tf.GradientTape() as tape:
            conv_out, preds = grad_model(img[None])
            top = tf.argmax(preds[0])
            score = preds[:, top]
        grads = tape.gradient(score, conv_out)
        pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
        heat = tf.nn.relu(conv_out[0] @ pooled[..., None])[..., 0]
        heat = tf.image.resize(heat[..., None], size)[..., 0]
        heat = heat / (tf.reduce_max(heat) + 1e-12)
        maps.append(heat.numpy())
    return np.stack(maps)


def per_image_attribution(model, images, kind, samples=8, steps=16, noise=0.15):
    """The per-image GradientTape loop: saliency, SmoothGrad or integrated gradients."""
    import numpy as np
    import tensorflow as tf

    maps = []
    for img in images:
        x = tf.convert_to_tensor(img[None])
        c = int(np.argmax(model(x)[0]))
        if kind == "saliency":
            points = [x]
        elif kind == "smoothgrad":
            sigma = noise * float(tf.reduce_max(x) - tf.reduce_min(x))
            points = [x + tf.random.normal(x.shape, stddev=sigma) for _ in range(samples)]
        else:
            points = [k / steps * x for k in range(1, steps + 1)]
        total = tf.zeros_like(x)
        for p in points:
            with tf.GradientTape() as tape:
                tape.watch(p)
                score = model(p)[0, c]
            g = tape.gradient(score, p)
            total += tf.abs(g) if kind == "smoothgrad" else g
        grads = total / len(points) if kind != "saliency" else total
        a = grads * x if kind == "integrated_gradients" else grads
        maps.append(tf.reduce_max(tf.abs(a), axis=-1)[0].numpy())
    return np.stack(maps)


def methods_benchmark(args) -> int:
    import keras
    import numpy as np
    import tensorflow as tf

    from visionkit import gradcam

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64, 64, 3)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"), keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="last"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(10),
    ])
    x = np.random.default_rng(0).uniform(0, 1, (args.images, 64, 64, 3)).astype("float32")
    runs = {f"grad_cam {m}": (lambda m=m: gradcam.grad_cam(model, x, method=m)) for m in gradcam.METHODS}
    runs["grad_cam gradcam aug_smooth"] = lambda: gradcam.grad_cam(model, x, aug_smooth=True)
    runs["grad_cam scorecam channels=16"] = lambda: gradcam.grad_cam(model, x, method="scorecam", scorecam_channels=16)
    runs["saliency"] = lambda: gradcam.saliency(model, x)
    runs["smoothgrad (8 samples)"] = lambda: gradcam.smoothgrad(model, x, samples=8, seed=0)
    runs["integrated_gradients (16 steps)"] = lambda: gradcam.integrated_gradients(model, x, steps=16)
    runs["guided_grad_cam"] = lambda: gradcam.guided_grad_cam(model, x)
    runs["loop saliency"] = lambda: per_image_attribution(model, x, "saliency")
    runs["loop smoothgrad (8 samples)"] = lambda: per_image_attribution(model, x, "smoothgrad")
    runs["loop integrated_gradients (16 steps)"] = lambda: per_image_attribution(model, x, "integrated_gradients")
    try:
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore

        top = model.predict(x, verbose=0).argmax(1).tolist()
        tkv = Scorecam(model, clone=True)
        runs["tf-keras-vis Scorecam"] = lambda: tkv(CategoricalScore(top), x, penultimate_layer="last")
    except ImportError:
        print("tf-keras-vis is not installed: no Score-CAM comparison")
    print(describe())
    print(f"small convnet 64x64x3 -> 10 logits, {args.images} images, layer 'last' (16x16x64), {args.rounds} rounds; "
          f"TF {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs")
    import warnings

    times: dict[str, list[float]] = {k: [] for k in runs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn in runs.values():
            fn()  # tracing, graph building
        for _ in range(args.rounds):
            for name, fn in runs.items():
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'':<40} {'median s':>9} {'ms/image':>9}")
    for k in runs:
        print(f"{k:<40} {med[k]:>9.3f} {med[k] / args.images * 1e3:>9.1f}  {tag()}")
    for ours, loop in (("saliency", "loop saliency"), ("smoothgrad (8 samples)", "loop smoothgrad (8 samples)"),
                       ("integrated_gradients (16 steps)", "loop integrated_gradients (16 steps)")):
        print(f"per-image loop / visionkit, {ours}: {med[loop] / med[ours]:.1f}x  (target >= 3x) {tag()}")
    if "tf-keras-vis Scorecam" in med:
        print(f"tf-keras-vis / visionkit, Score-CAM: {med['tf-keras-vis Scorecam'] / med['grad_cam scorecam']:.1f}x {tag()}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="8 images, 2 rounds")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--methods", action="store_true", help="every method on a small convnet")
    args = parser.parse_args(argv)
    if args.methods:
        if args.quick:
            args.images, args.rounds = min(args.images, 8), min(args.rounds, 2)
        return methods_benchmark(args)
    if args.quick:
        args.images, args.rounds = min(args.images, 8), min(args.rounds, 2)

    import keras
    import numpy as np
    import tensorflow as tf

    from visionkit._backbones import application
    from visionkit.gradcam import candidate_layers, grad_cam

    keras.utils.set_random_seed(0)
    size = (args.size, args.size)
    model = application("vgg16", weights=None, include_top=True, input_shape=(*size, 3))
    layer = candidate_layers(model)[-1]
    x = np.random.default_rng(0).uniform(-100, 100, size=(args.images, *size, 3)).astype("float32")
    grad_model = keras.Model(model.inputs[0], [model.get_layer(layer).output, model.output])

    runs = {
        "predict": lambda: model.predict(x, batch_size=32, verbose=0),
        "visionkit": lambda: grad_cam(model, x, layer=layer, batch_size=32),
        "naive": lambda: naive_grad_cam(grad_model, x[: max(1, args.images // 4)], size),
    }
    # the naive loop runs on a quarter of the images (it is linear in N); reported per image
    n_of = {"predict": args.images, "visionkit": args.images, "naive": max(1, args.images // 4)}
    print(describe())
    print(f"VGG16 (weights=None, include_top=True), {args.images} images {size[0]}x{size[1]}, "
          f"layer {layer!r}, {args.rounds} rounds interleaved; TF {tf.__version__}, Keras {keras.__version__}, "
          f"{os.cpu_count()} CPUs, devices: {[d.device_type for d in tf.config.list_physical_devices()]}")
    first = {}
    for name, fn in runs.items():
        t = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t
    times: dict[str, list[float]] = {k: [] for k in runs}
    order = list(runs)
    for r in range(args.rounds):
        for name in order[r % 3 :] + order[: r % 3]:  # rotate the order each round
            t = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    per_image = {k: med[k] / n_of[k] for k in med}
    print(f"{'':<10} {'first call s':>12} {'median s':>9} {'ms/image':>9}  (N)")
    for k in runs:
        print(f"{k:<10} {first[k]:>12.2f} {med[k]:>9.2f} {per_image[k] * 1e3:>9.1f}  ({n_of[k]}) {tag()}")
    print(f"visionkit / predict (same batch):       {med['visionkit'] / med['predict']:.2f}x  (target <= 1.5x) {tag()}")
    print(f"naive / visionkit (per image):           {per_image['naive'] / per_image['visionkit']:.1f}x  (target >= 3x) {tag()}")
    ours = grad_cam(model, x[:2], layer=layer)
    # the naive loop takes the gradient after the softmax; visionkit before it
    theirs = naive_grad_cam(grad_model, x[:2], size)
    print(f"max |visionkit - naive| heatmap difference (logit vs softmax score): {np.abs(ours - theirs).max():.3f} {tag()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
