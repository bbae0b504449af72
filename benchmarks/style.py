"""Speed of visionkit's style-transfer step against the textbook loop, side by side.

In one process, interleaved round by round (the medians are printed):

1. ``reference``: one VGG-19 forward + backward pass (gradient with respect to the
   input) of the full convolutional base on the generated image alone;
2. ``visionkit``: one step of ``visionkit.style`` (targets computed once, compiled
   loss-and-gradient + Adam update, image in a ``tf.Variable``);
3. ``visionkit+xla``: the same step with ``jit_compile=True``;
4. ``naive``: the textbook step (keras.io / Deep Learning with Python), written here:
   eager, the features of the content, style and generated images recomputed every
   step by one batched pass of a VGG-19 returning every layer's output, Keras Adam.

It also prints the achieved GFLOP/s of the visionkit step (convolution and Gram FLOPs
counted analytically; backward = gradient w.r.t. activations only, as many FLOPs as
the forward) against a large float32 matmul measured in the same run, and the
style/content losses reached after N steps of Adam and of L-BFGS.

ImageNet weights are used when Keras has them cached; otherwise random weights (the
cost per step is identical; the loss values are then not comparable with real runs).

    python benchmarks/style.py [--quick] [--size 512] [--rounds 5] [--loss-size 192] [--loss-steps 100]
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


def conv_flops(h: int, w: int, upto: str) -> float:
    """Forward FLOPs of VGG-19's convolutions up to layer ``upto`` on an h x w image."""
    from visionkit._style_model import VGG19_LAYER_NAMES

    channels = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
    flops, cin = 0.0, 3
    for name in VGG19_LAYER_NAMES[: VGG19_LAYER_NAMES.index(upto) + 1]:
        if name.endswith("_pool"):
            h, w = h // 2, w // 2
            continue
        cout = channels[int(name[5])]
        flops += 2.0 * h * w * 9 * cin * cout
        cin = cout
    return flops


def gram_flops(h: int, w: int, layers: tuple[str, ...]) -> float:
    channels = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
    total = 0.0
    for name in layers:
        b = int(name[5])
        s = 2 ** (b - 1)
        total += 2.0 * (h // s) * (w // s) * channels[b] ** 2
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps (CI smoke run)")
    parser.add_argument("--size", type=int, default=None, help="longer side of the timed image (default 512; quick 128)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 5; quick 3)")
    parser.add_argument("--loss-size", type=int, default=None, help="image size of the loss comparison (default 192; quick 96)")
    parser.add_argument("--loss-steps", type=int, default=None, help="steps of the loss comparison (default 100; quick 20)")
    parser.add_argument("--no-xla", action="store_true", help="skip the jit_compile=True variant")
    parser.add_argument("--style-weight", type=float, default=None,
                        help="style weight of the loss comparison (default 1e-2 with ImageNet weights, 1e3 with random ones)")
    parser.add_argument("--tv-weight", type=float, default=None,
                        help="TV weight of the loss comparison (default 1e2 with ImageNet weights, 1 with random ones)")
    args = parser.parse_args(argv)
    size = args.size or (128 if args.quick else 512)
    rounds = args.rounds or (3 if args.quick else 5)
    loss_size = args.loss_size or (96 if args.quick else 192)
    loss_steps = args.loss_steps or (20 if args.quick else 100)

    import keras
    import numpy as np
    import tensorflow as tf

    from visionkit import data, style
    from visionkit._backbones import application
    from visionkit._style_model import build_extractor
    from visionkit._style_optim import ADAM_EPSILON, make_adam_step
    from visionkit.errors import WeightsUnavailableError
    from visionkit.preprocess import IMAGENET_MEAN_RGB, vgg_preprocess

    try:
        base = application("vgg19", weights="imagenet", include_top=False, input_shape=(None, None, 3))
        weights: str | None = "imagenet"
    except WeightsUnavailableError:
        keras.utils.set_random_seed(0)
        base = application("vgg19", weights=None, include_top=False, input_shape=(None, None, 3))
        weights = None
    from _machine import describe, tag

    print(describe())
    print(f"weights: {'ImageNet' if weights else 'random (ImageNet weights unavailable offline)'}")

    content = data.sample_image("photo", max_dim=size)
    style_img = data.sample_image("painting", max_dim=size)
    h, w = content.shape[:2]
    print(f"generated image: {h}x{w} (content 'photo' scaled to {size}), style {style_img.shape[0]}x{style_img.shape[1]}")

    c_layers, s_layers = style.VGG19_CONTENT_LAYERS, style.VGG19_STYLE_LAYERS
    cw, sw, tw = 1e4, 1e-2, 1e2
    mean_bgr = np.asarray(IMAGENET_MEAN_RGB[::-1], np.float32)
    low, high = -mean_bgr, 255.0 - mean_bgr
    x0 = vgg_preprocess(content)

    # --- 1. reference: one forward + backward of the full VGG-19 conv base
    x_ref = tf.Variable(x0[None])

    @tf.function
    def reference() -> tf.Tensor:
        with tf.GradientTape() as tape:
            y = tf.reduce_sum(base(x_ref))
        return tape.gradient(y, x_ref)

    # --- 2. visionkit step (the library's own pieces)
    extractor = build_extractor(tuple(dict.fromkeys(c_layers + s_layers)), pooling="avg", weights=None)
    extractor.set_weights(
        [base.get_layer(layer.name).get_weights()[i] for layer in extractor.layers if layer.weights for i in range(2)]
    )
    c_feats = extractor(tf.constant(x0[None]))
    s_feats = extractor(tf.constant(vgg_preprocess(style_img)[None]))
    content_targets = {n: tf.constant(c_feats[n]) for n in c_layers}
    style_targets = {n: tf.constant(style.gram_matrix(s_feats[n])) for n in s_layers}
    lw = {n: 1.0 / len(s_layers) for n in s_layers}
    loss_fn = style._make_loss(extractor, content_targets, style_targets, lw, content_weight=cw, style_weight=sw, tv_weight=tw)
    vk_step, _ = make_adam_step(loss_fn, x0, low, high, learning_rate=5.0)
    xla_step = None if args.no_xla else make_adam_step(loss_fn, x0, low, high, learning_rate=5.0, jit_compile=True)[0]

    # --- 4. naive textbook step: eager, everything recomputed every step
    naive_model = keras.Model(base.inputs, {layer.name: layer.output for layer in base.layers[1:]})
    style_same = vgg_preprocess(data.load_image(style_img, size=(h, w)))
    naive_content = tf.constant(x0[None])
    naive_style = tf.constant(style_same[None])
    naive_x = tf.Variable(x0[None])
    naive_opt = keras.optimizers.Adam(learning_rate=5.0, beta_1=0.99, epsilon=ADAM_EPSILON)  # visionkit's steps

    def naive_gram(f: tf.Tensor) -> tf.Tensor:
        f = tf.reshape(f, (-1, f.shape[-1]))
        return tf.matmul(f, f, transpose_a=True) / tf.cast(tf.shape(f)[0], tf.float32)

    def naive_step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            feats = naive_model(tf.concat([naive_content, naive_style, naive_x], axis=0))
            loss = tf.zeros(())
            for n in c_layers:
                loss += cw * tf.reduce_mean(tf.square(feats[n][2] - feats[n][0])) / len(c_layers)
            for n in s_layers:
                loss += sw / len(s_layers) * tf.reduce_mean(tf.square(naive_gram(feats[n][2]) - naive_gram(feats[n][1])))
            loss += tw * style.total_variation_loss(naive_x)
        grads = tape.gradient(loss, naive_x)
        naive_opt.apply_gradients([(grads, naive_x)])
        naive_x.assign(tf.clip_by_value(naive_x, low, high))
        return loss

    # --- matmul peak
    n_mm, n_chain = 2048, (2 if args.quick else 8)  # chained matmuls: about as long as a step, same contention
    a = tf.random.normal((n_mm, n_mm))
    b = tf.random.normal((n_mm, n_mm)) / n_mm**0.5

    @tf.function
    def matmul() -> tf.Tensor:
        x = a
        for _ in range(n_chain):
            x = tf.matmul(x, b)
        return x[0, 0]

    def timed(fn) -> float:
        t0 = time.perf_counter()
        out = fn()
        tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
        return time.perf_counter() - t0

    candidates = {"reference": reference, "visionkit": vk_step, "naive": naive_step, "matmul": matmul}
    if xla_step is not None:
        candidates["visionkit+xla"] = xla_step
    print("warming up (tracing / compiling) ...", flush=True)
    for fn in candidates.values():
        timed(fn)
        timed(fn)
    times: dict[str, list[float]] = {k: [] for k in candidates}
    for r in range(rounds):
        for k, fn in candidates.items():
            times[k].append(timed(fn))
        print(f"  round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items()) + f" {tag()}", flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    # Per-round ratios: each pair was measured back to back, under the same machine load.
    ratio = {
        k: statistics.median(a / b for a, b in zip(times[num], times[den]))
        for k, (num, den) in {
            "vk/ref": ("visionkit", "reference"),
            "naive/vk": ("naive", "visionkit"),
            "xla/vk": ("visionkit+xla", "visionkit"),
        }.items()
        if num in times
    }

    step_flops = 2 * conv_flops(h, w, "block5_conv2") + 3 * gram_flops(h, w, s_layers)
    ref_flops = 2 * conv_flops(h, w, "block5_conv4")
    mm_gflops = n_chain * 2 * n_mm**3 / med["matmul"] / 1e9
    print()
    print(f"== per-step time at {h}x{w}, median of {rounds} interleaved rounds ==")
    print(f"VGG-19 forward+backward (reference) : {med['reference'] * 1e3:9.1f} ms   ({ref_flops / med['reference'] / 1e9:6.1f} GFLOP/s) {tag()}")
    print(f"visionkit step (compiled)           : {med['visionkit'] * 1e3:9.1f} ms   = {med['visionkit'] / med['reference']:.2f}x reference "
          f"(median per-round ratio {ratio['vk/ref']:.2f}x; target <= 1.25x) {tag()}")
    if "visionkit+xla" in med:
        print(f"visionkit step, jit_compile=True    : {med['visionkit+xla'] * 1e3:9.1f} ms   = {med['visionkit+xla'] / med['visionkit']:.2f}x the default step "
              f"(per-round {ratio['xla/vk']:.2f}x) {tag()}")
    print(f"naive textbook step (eager)         : {med['naive'] * 1e3:9.1f} ms   -> visionkit is {med['naive'] / med['visionkit']:.2f}x faster "
          f"(per-round {ratio['naive/vk']:.2f}x; target >= 2x) {tag()}")
    print(f"visionkit step: {step_flops / 1e9:.1f} GFLOP -> {step_flops / med['visionkit'] / 1e9:.1f} GFLOP/s; "
          f"{n_mm}x{n_mm} float32 matmul: {mm_gflops:.1f} GFLOP/s ({100 * step_flops / med['visionkit'] / 1e9 / mm_gflops:.0f}% of it) {tag()}")

    # --- losses after N steps
    print()
    c_small = data.sample_image("photo", max_dim=loss_size)
    s_small = data.sample_image("painting", max_dim=loss_size)
    # Random VGG-19 features fade with depth (deep layers ~0), so the default balance,
    # tuned for ImageNet features, leaves only the TV term: re-balance for random weights.
    sw_loss = args.style_weight if args.style_weight is not None else (1e-2 if weights else 1e3)
    tw_loss = args.tv_weight if args.tv_weight is not None else (1e2 if weights else 1.0)
    print(f"== losses after {loss_steps} steps at max_dim={loss_size} ({'ImageNet' if weights else 'random'} weights, "
          f"content_weight=1e4, style_weight={sw_loss:g}, tv_weight={tw_loss:g}) ==")
    for opt in ("adam", "lbfgs"):
        hist: list[dict[str, float]] = []
        t0 = time.perf_counter()
        keras.utils.set_random_seed(0)
        style.style_transfer(
            c_small, s_small, max_dim=loss_size, steps=loss_steps, optimizer=opt, weights=weights,
            style_weight=sw_loss, tv_weight=tw_loss,
            progress=False, callback=lambda k, img, losses, hist=hist: hist.append(losses),
        )
        dt = time.perf_counter() - t0
        first, last = hist[0], hist[-1]
        print(f"{opt:>5}: total {first['total']:.4g} -> {last['total']:.4g}  "
              f"(style {first['style']:.4g} -> {last['style']:.4g}, content {first['content']:.4g} -> {last['content']:.4g}, "
              f"tv {first['tv']:.4g} -> {last['tv']:.4g}) in {len(hist)} steps, {dt:.1f} s {tag()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
