"""DeepDream speed and memory: visionkit's compiled tiled dream vs a naive eager loop.

Run ``python benchmarks/dream.py [--quick]``. Every configuration runs in its own child
process (so its peak resident memory, ``ru_maxrss``, is its own); configurations are
interleaved round after round and the medians printed, since the CPU may be shared.

Configurations (InceptionV3 base, random weights: same cost as ImageNet weights):

- ``visionkit``: :func:`visionkit.dream.deep_dream`, default settings (3 octaves, scale
  1.4, 20 steps, ``tile_size=512``), at ``--size`` (512) and at ``--big`` (2048) pixels;
- ``naive``: the same octave loop written plainly in the benchmark: eager (no
  ``tf.function``), untiled, the whole image through the network at once, at ``--size``;
  and, for peak memory only, one untiled step at ``--big`` (``--no-naive-big`` skips it);
- with ``--huge 4096``: one tiled step at 4096x4096, for its peak memory.

Wall time counts the dream only (the model is built before the clock starts; the
compiled version's tracing is included). Peak RSS is the child's maximum resident set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _image(size: int):
    from visionkit.data import sample_image

    return sample_image("photo", size=(size, size))


def _naive_dream(features, layer_weights, preprocess, image, *, octaves, octave_scale, steps, step_size):
    """Plain eager DeepDream: no tf.function, no tiles, no roll."""
    import tensorflow as tf

    from visionkit.dream import dream_loss

    h, w = image.shape[:2]
    shapes = [(round(h / octave_scale**i), round(w / octave_scale**i)) for i in range(octaves - 1, -1, -1)]
    base = tf.constant(image)
    x = tf.image.resize(base, shapes[0], antialias=True)
    previous = x
    for i, shape in enumerate(shapes):
        if i:
            original = tf.image.resize(base, shape, antialias=True)
            x = tf.image.resize(x, shape, antialias=True) + original - tf.image.resize(previous, shape, antialias=True)
            previous = original
        for _ in range(steps):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = dream_loss(features(preprocess(x[tf.newaxis]), training=False), layer_weights)
            grad = tape.gradient(loss, x)
            x = tf.clip_by_value(x + step_size * 127.5 * grad / tf.math.reduce_std(grad), 0.0, 255.0)
    return tf.cast(tf.round(x), tf.uint8).numpy()


def child(config: dict) -> None:
    """Run one configuration; print a JSON line with time and memory."""
    from visionkit.dream import INCEPTION_V3_LAYERS, _default_model, deep_dream, dream_model

    image = _image(config["size"])
    settings = {k: config[k] for k in ("octaves", "octave_scale", "steps", "step_size")}
    if config["kind"] == "visionkit":
        model = _default_model(None)
        rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        out = deep_dream(image, model=model, layers=INCEPTION_V3_LAYERS, preprocess=_preprocess(),
                         tile_size=config["tile_size"], seed=0, progress=False, **settings)
    else:
        model = _default_model(None)
        features = dream_model(model, INCEPTION_V3_LAYERS)
        rss_model = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        out = _naive_dream(features, INCEPTION_V3_LAYERS, _preprocess(), image, **settings)
    wall = time.perf_counter() - start
    assert out.shape == image.shape
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"wall_s": wall, "peak_mib": peak / 1024, "model_mib": rss_model / 1024}))


def _preprocess():
    from visionkit._backbones import preprocess_function

    return preprocess_function("inception_v3")


def _run_child(config: dict, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", json.dumps(config)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"exit {proc.returncode}: {tail[:120]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps (about 2 minutes)")
    parser.add_argument("--size", type=int, default=None, help="small image side (default 512; quick 256)")
    parser.add_argument("--big", type=int, default=None, help="large image side (default 2048; quick 1024)")
    parser.add_argument("--tile-size", type=int, default=None, help="tile size at the large size (default 512; quick 256)")
    parser.add_argument("--steps", type=int, default=None, help="steps per octave at the small size (default 20; quick 4)")
    parser.add_argument("--big-steps", type=int, default=None, help="steps per octave at the large size (default = --steps)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds at the small size (default 3; quick 2)")
    parser.add_argument("--big-repeats", type=int, default=1, help="rounds at the large size (default 1)")
    parser.add_argument("--no-naive-big", action="store_true", help="skip the naive untiled step at the large size")
    parser.add_argument("--huge", type=int, default=0,
                        help="also one tiled step (1 octave) at this side, e.g. 4096, for its peak memory")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per child process")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return

    q = args.quick
    size = args.size or (256 if q else 512)
    big = args.big or (1024 if q else 2048)
    tile = args.tile_size or (256 if q else 512)
    steps = args.steps or (4 if q else 20)
    big_steps = args.big_steps or steps
    repeats = args.repeats or (2 if q else 3)
    common = {"octaves": 3, "octave_scale": 1.4, "step_size": 0.01}
    configs = {
        f"visionkit {size}px tile 512": {"kind": "visionkit", "size": size, "tile_size": 512, "steps": steps, **common},
        f"naive     {size}px untiled": {"kind": "naive", "size": size, "tile_size": 0, "steps": steps, **common},
    }
    big_configs = {
        f"visionkit {big}px tile {tile}": {"kind": "visionkit", "size": big, "tile_size": tile, "steps": big_steps, **common},
    }
    if not args.no_naive_big:
        big_configs[f"naive     {big}px untiled (1 step)"] = {
            "kind": "naive", "size": big, "tile_size": 0, "steps": 1, **common, "octaves": 1,
        }
    if args.huge:
        big_configs[f"visionkit {args.huge}px tile {tile} (1 step)"] = {
            "kind": "visionkit", "size": args.huge, "tile_size": tile, "steps": 1, **common, "octaves": 1,
        }
    from _machine import describe, tag

    print(describe("float32"), flush=True)  # DeepDream always runs in float32
    print(f"DeepDream benchmark: InceptionV3 (random weights), layers mixed4-7, 3 octaves x 1.4, "
          f"{steps} steps/octave at {size}px, {big_steps} at {big}px; {os.cpu_count()} CPUs; "
          f"{repeats} interleaved rounds at {size}px, {args.big_repeats} at {big}px.", flush=True)
    results: dict[str, list[dict]] = {name: [] for name in [*configs, *big_configs]}
    rounds = max(repeats, args.big_repeats)
    for r in range(rounds):
        todo = {**(configs if r < repeats else {}), **(big_configs if r < args.big_repeats else {})}
        for name, config in todo.items():
            res = _run_child(config, args.timeout)
            results[name].append(res)
            shown = res.get("error") or f"{res['wall_s']:.1f} s, peak RSS {res['peak_mib']:.0f} MiB"
            print(f"  round {r + 1}: {name}: {shown} {tag('float32')}", flush=True)

    def med(name: str, key: str) -> float | None:
        values = [r[key] for r in results[name] if key in r]
        return statistics.median(values) if values else None

    print()
    print(f"{'configuration':<36} {'wall (median)':>14} {'peak RSS':>10} {'RSS after model':>16}")
    for name in results:
        wall, peak, base = med(name, "wall_s"), med(name, "peak_mib"), med(name, "model_mib")
        if wall is None:
            print(f"{name:<36} {results[name][0].get('error', 'failed')}")
            continue
        print(f"{name:<36} {wall:>12.1f} s {peak:>6.0f} MiB {base:>12.0f} MiB  {tag('float32')}")
    names = list(configs)
    t_vk, t_naive = med(names[0], "wall_s"), med(names[1], "wall_s")
    if t_vk and t_naive:
        print(f"\ntime ratio at {size}px, naive / visionkit: {t_naive / t_vk:.2f}x "
              f"({'visionkit faster' if t_naive > t_vk else 'visionkit slower'}) {tag('float32')}")
    tiled_big = f"visionkit {big}px tile {tile}"
    naive_big = f"naive     {big}px untiled (1 step)"
    if naive_big in results and med(tiled_big, "peak_mib") and med(naive_big, "peak_mib"):
        print(f"peak RSS at {big}px, naive untiled / visionkit tiled: "
              f"{med(naive_big, 'peak_mib') / med(tiled_big, 'peak_mib'):.2f}x {tag('float32')}")


if __name__ == "__main__":
    main()
