"""Build the small real samples bundled in ``visionkit/_samples`` from ``../shared/data``.

Run from the repository root: ``python scripts/make_samples.py [DATA_DIR]``. The output
is deterministic (fixed seed), stratified by class, and stays under ~2 MB in all.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "visionkit" / "_samples"


def stratified(y: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    y = y.reshape(-1)
    idx = [rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in np.unique(y)]
    return np.sort(np.concatenate(idx))


def _cifar_jpegs(file: Path) -> list[tuple[str, int, str, bytes]]:
    from visionkit.data import CIFAR10_CLASSES

    index = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    items = []
    with tarfile.open(file) as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) >= 3 and parts[-3] in ("train", "test") and parts[-2] in index:
                items.append((parts[-3], index[parts[-2]], parts[-1], tar.extractfile(m).read()))
    items.sort(key=lambda t: (t[0], t[1], t[2]))
    return items


def main(data: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from visionkit.data import load_mnist

    rng = np.random.default_rng(2026)
    OUT.mkdir(parents=True, exist_ok=True)
    (xtr, ytr), (xte, yte) = load_mnist(data / "mnist.npz")
    a, b = stratified(ytr, 500, rng), stratified(yte, 100, rng)
    # keep the famous first test digit (a 7) first
    b = np.concatenate([[0], b[b != 0][: len(b) - 1]])
    np.savez_compressed(OUT / "mnist_sample.npz", x_train=xtr[a], y_train=ytr[a], x_test=xte[b], y_test=yte[b])
    # CIFAR-10: keep the original JPEG bytes (about 1 KB an image), decoded on load.
    items = _cifar_jpegs(data / "cifar10-jpeg.tar.gz")
    arrays: dict[str, np.ndarray] = {}
    for split, per_class in (("train", 100), ("test", 20)):
        part = [t for t in items if t[0] == split]
        labels = np.array([t[1] for t in part], dtype=np.uint8)
        chosen = rng.permutation(stratified(labels, per_class, rng))  # classes interleaved
        blobs = [part[i][3] for i in chosen]
        arrays[f"jpeg_{split}"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        arrays[f"offsets_{split}"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        arrays[f"y_{split}"] = labels[chosen].reshape(-1, 1)
    np.savez_compressed(OUT / "cifar10_sample.npz", **arrays)
    for src, dst, width in (("starry_night.jpg", "starry_night.jpg", 512), ("chelsea_cat.png", "chelsea_cat.jpg", 451)):
        img = Image.open(data / "images" / src).convert("RGB")
        img = img.resize((width, round(img.height * width / img.width)), Image.Resampling.LANCZOS)
        img.save(OUT / dst, quality=88)
    for f in sorted(OUT.iterdir()):
        print(f"{f.name}: {f.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data")
