"""Make the docs figures with the real ImageNet VGG16 base (#21).

Needs ``VISIONKIT_DATA`` (or ``--data``) holding ``vgg16_imagenet_notop.weights.h5``,
``cifar10-jpeg.tar.gz`` and ``images/``. Writes into ``docs/img/``:

- ``style_vgg16.jpg``: chelsea_cat.png in the style of starry_night.jpg on VGG16 layers,
  Adam and L-BFGS, with and without colour preservation;
- ``dream_vgg16.jpg``: DeepDream of astronaut.png on VGG16's preset layers (octaves, tiles);
- ``filters_vgg16.jpg``: filter patterns of block1_conv1 ... block5_conv1;
- ``activations_vgg16.jpg``: activation grids of chelsea_cat.png;
- ``cam_vgg16.jpg``: the CAM methods on chelsea_cat.png from a cat-vs-dog classifier
  (real VGG16 base + a head fitted on 400 CIFAR-10 cats and dogs upsampled to 96 px);
  the faithfulness comparison on it is printed as a markdown table.

    VISIONKIT_DATA=../shared/data python scripts/real_weights_figures.py [style|dream|filters|activations|cam ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import numpy as np  # noqa: E402

from visionkit.backbones import preset  # noqa: E402
from visionkit.data import load_image  # noqa: E402

OUT = ROOT / "docs" / "img"
CAPTION = "real ImageNet VGG16 weights"


def _save_fig(fig, name: str) -> None:
    from visionkit._io import save_figure

    save_figure(fig, OUT / name, dpi=80)
    print(f"wrote {OUT / name} ({(OUT / name).stat().st_size // 1024} KB)", flush=True)


def style(data: Path, weights: Path) -> None:
    from visionkit.style import style_transfer
    from visionkit.visualize import image_grid

    content, painting = data / "images" / "chelsea_cat.png", data / "images" / "starry_night.jpg"
    runs = {
        "Adam, 150 steps": dict(optimizer="adam", steps=150),
        "L-BFGS, 40 steps": dict(optimizer="lbfgs", steps=40),
        "Adam, colours kept": dict(optimizer="adam", steps=150, preserve_color=True),
        "L-BFGS, colours kept": dict(optimizer="lbfgs", steps=40, preserve_color=True),
    }
    images, titles = [load_image(content, max_dim=256), load_image(painting, max_dim=256)], ["content", "style"]
    for title, kw in runs.items():
        t = time.time()
        images.append(style_transfer(content, painting, backbone="vgg16", weights=weights, max_dim=256,
                                     style_weight=1.0, seed=0, progress=False, **kw))
        titles.append(f"{title}, real VGG16")
        print(title, f"{time.time() - t:.0f} s", flush=True)
    _save_fig(image_grid(images, ncols=3, titles=titles, tile_size=3.2), "style_vgg16.jpg")


def dream(data: Path, weights: Path) -> None:
    from visionkit.dream import deep_dream
    from visionkit.visualize import image_grid

    image = load_image(data / "images" / "astronaut.png", max_dim=320)
    out = deep_dream(image, backbone="vgg16", weights=weights, octaves=3, steps=20, tile_size=192,
                     seed=0, progress=False)
    _save_fig(image_grid([image, out], ncols=2, titles=["astronaut.png", f"DeepDream, VGG16 layers ({CAPTION})"],
                         tile_size=4.0), "dream_vgg16.jpg")


def filters(data: Path, weights: Path) -> None:
    from visionkit.visualize import filter_patterns, image_grid

    grids = filter_patterns("vgg16", weights=weights, filters=16, size=64, steps=40, progress=False)
    _save_fig(image_grid(list(grids.values()), ncols=5, titles=[f"{n}" for n in grids], tile_size=2.6),
              "filters_vgg16.jpg")


def activations(data: Path, weights: Path) -> None:
    from visionkit.preprocess import vgg_preprocess
    from visionkit.visualize import activations as acts
    from visionkit.visualize import image_grid

    model = preset("vgg16").build(weights=weights, input_shape=(None, None, 3))
    image = load_image(data / "images" / "chelsea_cat.png", max_dim=224)
    layers = ["block1_conv2", "block3_conv3", "block5_conv3"]
    out = acts(model, vgg_preprocess(image), layers=layers)
    tiles, titles = [], []
    for name in layers:
        a = out[name][0] if out[name].ndim == 4 else out[name]
        tiles.append(image)
        titles.append("chelsea_cat.png")
        for c in np.argsort(a.mean(axis=(0, 1)))[::-1][:5]:
            tiles.append(a[..., c])
            titles.append(f"{name} #{c}")
    _save_fig(image_grid(tiles, ncols=6, titles=titles, tile_size=1.9), "activations_vgg16.jpg")


def cat_dog_classifier(data: Path, weights: Path):
    """VGG16 base + a ridge head fitted on 400 CIFAR-10 cats and dogs at 96 px: logits (cat, dog)."""
    import _cats_dogs as T

    x_tr, y_tr = T.cifar_cats_dogs(data, "train", 200)
    return T.cat_dog_classifier(preset("vgg16").build(weights=weights, input_shape=(None, None, 3)), x_tr, y_tr)


def cam(data: Path, weights: Path) -> None:
    import keras

    from visionkit import explain
    from visionkit.gradcam import grad_cam, overlay
    from visionkit.preprocess import vgg_preprocess
    from visionkit.visualize import image_grid

    model = cat_dog_classifier(data, weights)
    image = load_image(data / "images" / "chelsea_cat.png", size=(200, 300))
    x = vgg_preprocess(image)[None]
    methods = ("gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "eigencam")
    tiles, titles = [image], ["chelsea_cat.png"]
    for m in methods:
        heat = grad_cam(model, x, class_index=0, method=m)[0]
        tiles.append(overlay(image, heat))
        titles.append(f"{m} (cat)")
    _save_fig(image_grid(tiles, ncols=4, titles=titles, tile_size=2.6), "cam_vgg16.jpg")
    for metric in ("deletion", "insertion", "road"):  # DEFAULT_METHODS; the tables of docs/explanations-metrics.md
        result = explain.compare_methods(model, x, class_index=0, metric=metric, steps=20)
        print(result._repr_markdown_(), flush=True)
    print("p(cat) of a black image:", float(keras.ops.softmax(model(np.zeros_like(x)))[0, 0]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="*", default=["style", "dream", "filters", "activations", "cam"])
    parser.add_argument("--data", default=os.environ.get("VISIONKIT_DATA"))
    args = parser.parse_args()
    if not args.data:
        parser.error("set VISIONKIT_DATA or pass --data")
    data = Path(args.data)
    weights = data / "vgg16_imagenet_notop.weights.h5"
    for what in args.what:
        globals()[what](data, weights)


if __name__ == "__main__":
    main()
