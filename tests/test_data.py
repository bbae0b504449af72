"""visionkit.data: loaders (real data and bundled sample), images, tf.data helpers."""

from __future__ import annotations

import io
import os
import shutil
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from visionkit import data
from visionkit.data import _sources
from visionkit.errors import DataNotFoundError, ImageReadError, InvalidArgumentError, VisionkitError

# ----------------------------------------------------------------------------- loaders


def test_mnist_sample():
    (x_train, y_train), (x_test, y_test) = data.load_mnist(sample=True)
    assert x_train.shape == (5000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert y_train.shape == (5000,) and set(np.unique(y_train)) == set(range(10))
    assert y_test[0] == 7
    assert 0 < x_train.mean() < 255


def test_cifar10_sample():
    (x_train, y_train), (x_test, y_test) = data.load_cifar10(sample=True)
    assert x_train.shape == (1000, 32, 32, 3) and x_test.shape == (200, 32, 32, 3)
    assert y_train.shape == (1000, 1) and y_test.shape == (200, 1)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train.ravel()).tolist() == [100] * 10
    assert len(np.unique(y_train[:50])) >= 8  # classes interleaved


@pytest.mark.data
def test_mnist_real(real_data, monkeypatch):
    monkeypatch.setenv("VISIONKIT_DATA", str(real_data))
    (x_train, y_train), (x_test, y_test) = data.load_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert x_train.dtype == np.uint8 and y_test.dtype == np.uint8
    assert y_train.min() == 0 and y_train.max() == 9
    assert y_test[0] == 7
    # explicit path wins, folder or file
    (x2, _), _ = data.load_mnist(real_data)
    (x3, _), _ = data.load_mnist(real_data / "mnist.npz")
    assert np.array_equal(x2[:10], x_train[:10]) and np.array_equal(x3[-10:], x_train[-10:])


@pytest.mark.data
def test_cifar10_real_tar_and_cache(real_data, monkeypatch, tmp_path):
    monkeypatch.setenv("VISIONKIT_DATA", str(real_data))
    monkeypatch.setenv("VISIONKIT_CACHE", str(tmp_path / "cache"))
    t0 = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = data.load_cifar10()
    first = time.perf_counter() - t0
    assert x_train.shape == (50000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    assert y_train.shape == (50000, 1) and y_test.shape == (10000, 1)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train.ravel()).tolist() == [5000] * 10
    assert np.bincount(y_test.ravel()).tolist() == [1000] * 10
    assert np.bincount(y_train[:5000].ravel(), minlength=10).min() > 350  # any slice is balanced
    assert data.CIFAR10_CLASSES == (
        "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
    )
    cached = list((tmp_path / "cache").glob("cifar10-*.npz"))
    assert len(cached) == 1
    t0 = time.perf_counter()
    (x2, y2), _ = data.load_cifar10()
    second = time.perf_counter() - t0
    assert np.array_equal(x2, x_train) and np.array_equal(y2, y_train)
    # the cache is what makes the second call cheap (not asserted as a timing)
    print(f"CIFAR-10 first load {first:.1f}s, cached load {second:.2f}s")


@pytest.mark.data
def test_cifar10_tree_matches_tar(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONKIT_CACHE", str(tmp_path / "cache"))
    import tarfile

    root = tmp_path / "tree"
    with tarfile.open(real_data / "cifar10-jpeg.tar.gz") as tar:
        members = [m for m in tar.getmembers() if m.isfile() and m.name.split("/")[-1] in ("0001.jpg", "0002.jpg")]
        tar.extractall(root, members=members, filter="data")
    (x, y), (xt, yt) = data.load_cifar10(root)  # a folder holding cifar10/
    assert x.shape == (20, 32, 32, 3) and xt.shape == (20, 32, 32, 3)
    assert sorted(y.ravel().tolist()) == sorted(list(range(10)) * 2)
    assert y.ravel().tolist() != sorted(y.ravel().tolist())  # classes interleaved, as in Keras' arrays


def test_cifar10_python_batches(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    expected = []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        x = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, 4).tolist()
        expected.append((x, labels))
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": x, b"labels": labels}, fh)
    (x_train, y_train), (x_test, y_test) = data.load_cifar10(tmp_path)
    assert x_train.shape == (20, 32, 32, 3) and y_train.shape == (20, 1)
    np.testing.assert_array_equal(x_test[0], expected[5][0][0].reshape(3, 32, 32).transpose(1, 2, 0))
    assert y_test.ravel().tolist() == expected[5][1]


def test_cifar10_pickle_with_code_is_refused(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": Evil(), b"labels": []}, fh)
    with pytest.raises(ImageReadError, match="refusing to unpickle"):
        data.load_cifar10(folder)


def test_offline_error_lists_places(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONKIT_DATA", str(tmp_path / "empty"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("no_proxy", "*")
    import socket

    with socket.socket() as s:  # a free port, closed again: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(_sources, "MNIST_URL", f"http://127.0.0.1:{port}/mnist.npz")
    monkeypatch.setattr(_sources, "CIFAR_PY_URL", f"http://127.0.0.1:{port}/cifar-10-python.tar.gz")
    with pytest.raises(DataNotFoundError) as info:
        data.load_mnist()
    msg = str(info.value)
    assert "VISIONKIT_DATA" in msg and "mnist.npz" in msg and "Keras cache" in msg and "sample=True" in msg
    assert f"download of http://127.0.0.1:{port}/mnist.npz" in msg
    assert not (tmp_path / "keras" / "datasets" / "mnist.npz").exists()
    with pytest.raises(DataNotFoundError, match="cifar10-jpeg.tar.gz"):
        data.load_cifar10()


def test_explicit_path_missing(tmp_path):
    with pytest.raises(DataNotFoundError, match="nope.npz"):
        data.load_mnist(tmp_path / "nope.npz")
    with pytest.raises(DataNotFoundError, match="argument `path`"):
        data.load_cifar10(tmp_path)


def test_mnist_wrong_file(tmp_path):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 3)))
    with pytest.raises(ImageReadError, match="not an MNIST file"):
        data.load_mnist(tmp_path)


# ----------------------------------------------------------------------------- images


def _save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_load_image_modes(tmp_path):
    rgb = Image.new("RGB", (6, 4), (10, 20, 30))
    assert data.load_image(_save(rgb, tmp_path / "a.png")).shape == (4, 6, 3)
    gray = data.load_image(_save(Image.new("L", (5, 5), 77), tmp_path / "g.png"))
    assert gray.shape == (5, 5, 3) and np.all(gray == 77) and gray.dtype == np.float32
    rgba = Image.new("RGBA", (3, 3), (255, 0, 0, 0))  # fully transparent red -> white
    assert np.all(data.load_image(_save(rgba, tmp_path / "t.png")) == 255)
    half = Image.new("RGBA", (3, 3), (0, 0, 0, 128))
    np.testing.assert_allclose(data.load_image(_save(half, tmp_path / "h.png")), 127, atol=1)
    la = Image.new("LA", (2, 2), (0, 255))
    assert np.all(data.load_image(_save(la, tmp_path / "la.png")) == 0)
    pal = Image.new("P", (2, 2), 1)
    pal.putpalette([0, 0, 0, 200, 100, 50] + [0] * 762)
    np.testing.assert_array_equal(data.load_image(_save(pal, tmp_path / "p.png"))[0, 0], [200, 100, 50])
    cmyk = Image.new("CMYK", (2, 2), (0, 0, 0, 0))
    assert np.all(data.load_image(_save(cmyk, tmp_path / "c.jpg")) > 250)


def test_load_image_16bit_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 32768, 65535]], dtype=np.uint16)
    img = Image.fromarray(arr)
    path = _save(img, tmp_path / "deep.png")
    out = data.load_image(path)
    np.testing.assert_allclose(out[0, :, 0], [0, 127.5, 255], atol=0.6)
    np.testing.assert_allclose(data.load_image(arr)[0, :, 1], [0, 127.5, 255], atol=0.6)


def test_load_image_exif_orientation(tmp_path):
    img = Image.new("RGB", (8, 4), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 4, 4))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=100)
    out = data.load_image(path)
    assert out.shape == (8, 4, 3)
    assert out[:3].mean() > 200 and out[-3:].mean() < 50  # white ends up on top


def test_load_image_sources_and_resize(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (20, 40, 3), dtype=np.uint8)
    path = _save(Image.fromarray(arr), tmp_path / "x.png")
    from_path = data.load_image(path)
    np.testing.assert_array_equal(from_path, arr.astype(np.float32))
    np.testing.assert_array_equal(data.load_image(path.read_bytes()), from_path)
    np.testing.assert_array_equal(data.load_image(Image.fromarray(arr)), from_path)
    np.testing.assert_array_equal(data.load_image(arr), from_path)
    assert data.load_image(path, max_dim=10).shape == (5, 10, 3)
    assert data.load_image(path, max_dim=80).shape == (40, 80, 3)
    resized = data.load_image(path, size=(7, 9))
    assert resized.shape == (7, 9, 3) and resized.min() >= 0 and resized.max() <= 255
    assert data.load_image(path, size=12).shape == (12, 12, 3)
    assert not np.shares_memory(data.load_image(arr.astype(np.float32)), arr)


def test_load_image_does_not_modify_input():
    arr = np.full((4, 4, 4), 100, np.uint8)
    before = arr.copy()
    data.load_image(arr, size=(2, 2))
    np.testing.assert_array_equal(arr, before)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "missing.png", "not found"),
        (lambda p: (p / "notes.txt").write_text("hello") and p / "notes.txt", "not an image"),
        (lambda p: p, "folder"),
    ],
)
def test_load_image_errors_name_the_file(tmp_path, make, match):
    path = make(tmp_path)
    with pytest.raises(ImageReadError, match=match) as info:
        data.load_image(path)
    assert str(path) in str(info.value)


def test_load_image_truncated(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageReadError, match="cut.jpg"):
        data.load_image(path)


def test_load_image_mislabelled_extension(tmp_path):
    path = tmp_path / "really_png.jpg"
    Image.new("RGB", (3, 3), (1, 2, 3)).save(path, format="PNG")
    np.testing.assert_array_equal(data.load_image(path)[0, 0], [1, 2, 3])


def test_load_image_decompression_bomb(tmp_path, monkeypatch):
    path = _save(Image.new("RGB", (100, 100)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageReadError, match="big.png"):
        data.load_image(path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"size": (0, 3)}, "size"), ({"max_dim": 0}, "max_dim"), ({"size": 4, "max_dim": 4}, "either")],
)
def test_load_image_argument_errors(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        data.load_image(np.zeros((4, 4, 3)), **kwargs)


def test_load_image_bad_array():
    with pytest.raises(InvalidArgumentError, match="source"):
        data.load_image(np.zeros((4, 4, 2)))
    with pytest.raises(InvalidArgumentError, match="non-finite|NaN"):
        data.load_image(np.full((4, 4, 3), np.nan))
    with pytest.raises(TypeError, match="source"):
        data.load_image(42)


def test_save_image_roundtrip_and_atomic(tmp_path):
    img = np.random.default_rng(0).integers(0, 256, (9, 7, 3)).astype(np.uint8)
    path = data.save_image(tmp_path / "deep" / "er" / "x.png", img)
    np.testing.assert_array_equal(np.asarray(Image.open(path)), img)
    jpg = data.save_image(tmp_path / "x.jpg", img.astype(np.float32) + 0.4)
    assert Image.open(jpg).format == "JPEG"
    gray = data.save_image(tmp_path / "g.png", np.full((3, 3, 1), 300.0))
    assert np.asarray(Image.open(gray)).max() == 255
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep", "g.png", "x.jpg"]


def test_save_image_refuses_nan_and_keeps_old_file(tmp_path):
    path = data.save_image(tmp_path / "keep.png", np.zeros((2, 2, 3), np.uint8))
    before = path.read_bytes()
    bad = np.zeros((2, 2, 3), np.float32)
    bad[0, 0, 0] = np.nan
    with pytest.raises(InvalidArgumentError, match="keep.png"):
        data.save_image(path, bad)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_save_image_failure_leaves_nothing(tmp_path, monkeypatch):
    def boom(self, fp, format=None, **kw):
        fp = open(fp, "wb")
        fp.write(b"partial")
        fp.close()
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        data.save_image(tmp_path / "x.png", np.zeros((2, 2, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "image", "match"),
    [
        ("x.gif2", np.zeros((2, 2, 3)), "path"),
        ("x.png", np.zeros((2, 2, 2)), "image"),
        ("x.png", np.zeros((2,)), "image"),
    ],
)
def test_save_image_errors(tmp_path, name, image, match):
    with pytest.raises(InvalidArgumentError, match=match):
        data.save_image(tmp_path / name, image)


def test_sample_images():
    painting = data.sample_image("painting")
    photo = data.sample_image("photo", max_dim=100)
    assert painting.shape == (384, 512, 3) and painting.dtype == np.float32
    assert photo.shape[1] == 100 and photo.max() <= 255
    assert data.sample_image_path("starry_night") == data.sample_image_path("painting")
    with pytest.raises(InvalidArgumentError, match="name"):
        data.sample_image("dog")


def test_samples_small_enough(repo_root):
    total = sum(f.stat().st_size for f in (repo_root / "visionkit" / "_samples").iterdir())
    assert total < 2.2 * 2**20


# ----------------------------------------------------------------------------- tf.data


def _folder(root, counts, size=(12, 10)):
    rng = np.random.default_rng(0)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i:03d}.{'png' if i % 2 else 'jpg'}")
    return root


def test_image_folder_basic(tmp_path):
    root = _folder(tmp_path / "ds", {"cat": 5, "dog": 3})
    ds = data.image_folder(root, image_size=(8, 8), batch_size=4, seed=0)
    assert ds.class_names == ["cat", "dog"]
    assert len(ds.file_paths) == 8
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    x = np.concatenate(images)
    y = np.concatenate(labels)
    assert x.shape == (8, 8, 8, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 255
    assert sorted(y.tolist()) == [0] * 5 + [1] * 3


@pytest.mark.parametrize(("mode", "shape", "dtype"), [("categorical", (3, 2), np.float32), ("binary", (3, 1), np.float32), ("int", (3,), np.int32)])
def test_image_folder_label_modes(tmp_path, mode, shape, dtype):
    root = _folder(tmp_path / "ds", {"a": 2, "b": 1})
    (x, y), = list(data.image_folder(root, image_size=4, batch_size=8, label_mode=mode, shuffle=False))
    assert y.shape == shape and y.dtype == dtype


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "RGB"])
def test_image_folder_matches_load_image_for_every_mode(tmp_path, mode):
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (6, 6, 4), dtype=np.uint8)
    rgba[:3, :, 3] = 0  # fully transparent top half: white, as load_image composites it
    rgba[3:, :, 3] = 255
    (tmp_path / "ds" / "a").mkdir(parents=True)
    path = tmp_path / "ds" / "a" / "img.png"
    Image.fromarray(rgba, "RGBA").convert(mode).save(path)
    (x, _), = list(data.image_folder(tmp_path / "ds", image_size=6, batch_size=1, shuffle=False))
    np.testing.assert_allclose(x.numpy()[0], data.load_image(path).astype(np.float32), atol=1.0)
    if mode in ("RGBA", "LA"):
        assert np.all(x.numpy()[0, :3] == 255)


def test_image_folder_no_labels(tmp_path):
    root = _folder(tmp_path / "ds", {"a": 3})
    batches = list(data.image_folder(root, image_size=4, batch_size=2, label_mode=None))
    assert [b.shape[0] for b in batches] == [2, 1]


def test_image_folder_split_disjoint(tmp_path):
    root = _folder(tmp_path / "ds", {"a": 10, "b": 10})
    train = data.image_folder(root, image_size=4, validation_split=0.25, subset="training")
    val = data.image_folder(root, image_size=4, validation_split=0.25, subset="validation")
    assert len(train.file_paths) == 15 and len(val.file_paths) == 5
    assert not set(train.file_paths) & set(val.file_paths)
    both = data.image_folder(root, image_size=4, validation_split=0.25, subset="both", seed=3)
    assert isinstance(both, tuple) and len(both[1].file_paths) == 5


def test_image_folder_bad_files_raise_or_skip(tmp_path):
    root = _folder(tmp_path / "ds", {"a": 3, "b": 3})
    (root / "a" / "broken.jpg").write_bytes(b"this is not a jpeg")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (root / "b" / "truncated.jpg").write_bytes(buf.getvalue()[:300])
    with pytest.raises(ImageReadError) as info:
        data.image_folder(root, image_size=4)
    assert "broken.jpg" in str(info.value) and "truncated.jpg" in str(info.value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = data.image_folder(root, image_size=4, batch_size=100, on_error="skip")
    assert len(caught) == 1 and "broken.jpg" in str(caught[0].message)
    assert len(ds.file_paths) == 6
    (x, _), = list(ds)  # a full epoch decodes without error
    assert x.shape[0] == 6


@pytest.mark.parametrize(
    ("setup", "kwargs", "error", "match"),
    [
        (lambda r: r.mkdir(), {}, InvalidArgumentError, "no sub-folders"),
        (lambda r: (r / "a").mkdir(parents=True), {}, InvalidArgumentError, "none found"),
        (lambda r: _folder(r, {"a": 2}), {"label_mode": "binary"}, InvalidArgumentError, "exactly 2 classes"),
        (lambda r: _folder(r, {"a": 2, "b": 1}), {"validation_split": 0.1, "subset": "validation"}, InvalidArgumentError, "empty"),
        (lambda r: _folder(r, {"a": 2}), {"validation_split": 0.1}, InvalidArgumentError, "go together"),
        (lambda r: _folder(r, {"a": 2}), {"label_mode": "sparse"}, InvalidArgumentError, "label_mode"),
        (lambda r: None, {}, DataNotFoundError, "not found"),
        (lambda r: None, {"image_size": 0}, InvalidArgumentError, "image_size"),  # arguments first
        (lambda r: _folder(r, {"a": 2}), {"seed": -1}, InvalidArgumentError, "seed"),
        (lambda r: _folder(r, {"a": 2}), {"shuffle": "yes"}, InvalidArgumentError, "shuffle"),
        (lambda r: _folder(r, {"a": 2}), {"subset": "test", "validation_split": 0.5}, InvalidArgumentError, "subset"),
        (lambda r: r.mkdir() or (r / "f.png").write_bytes(b""), {"directory": "file"}, InvalidArgumentError, "directory"),
    ],
)
def test_image_folder_errors(tmp_path, setup, kwargs, error, match):
    root = tmp_path / "ds"
    setup(root)
    kwargs = dict(kwargs)
    if kwargs.pop("directory", None) == "file":
        root = root / "f.png"
    kwargs = {"image_size": 4, **kwargs}
    with pytest.raises(error, match=match) as info:
        data.image_folder(root, **kwargs)
    assert isinstance(info.value, VisionkitError)


def test_image_folder_subsets_agree(tmp_path):
    root = _folder(tmp_path / "ds", {"a": 6, "b": 6})
    train, val = data.image_folder(root, image_size=4, validation_split=0.5, subset="both", seed=2)
    alone = data.image_folder(root, image_size=4, validation_split=0.5, subset="validation", seed=2)
    assert val.file_paths == alone.file_paths and len(train.file_paths) == 6
    # only the training side is shuffled: validation reads in `file_paths` order every epoch
    labels = [np.concatenate([y.numpy() for _, y in val]) for _ in range(2)]
    expected = [val.class_names.index(os.path.basename(os.path.dirname(f))) for f in val.file_paths]
    assert labels[0].tolist() == labels[1].tolist() == expected


def test_from_arrays(tmp_path):
    x = np.arange(10 * 4 * 4 * 1, dtype=np.uint8).reshape(10, 4, 4, 1)
    y = np.arange(10)
    ds = data.from_arrays(x, y, batch_size=4, seed=0)
    batches = list(ds)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]
    assert batches[0][0].dtype.name == "float32"
    got = np.concatenate([b[1].numpy() for b in batches])
    assert sorted(got.tolist()) == list(range(10))
    # the pairing of x and y survives shuffling
    for xb, yb in batches:
        np.testing.assert_array_equal(xb.numpy()[:, 0, 0, 0], x[yb.numpy(), 0, 0, 0])
    plain = list(data.from_arrays(x, batch_size=10, shuffle=False, drop_remainder=True))
    np.testing.assert_array_equal(plain[0].numpy(), x.astype(np.float32))


def test_from_arrays_augment_and_errors():
    x = np.zeros((4, 3, 3, 1), np.float32)
    calls = []

    def aug(batch, training=False):
        calls.append(training)
        return batch + 1.0

    (xb, _), = list(data.from_arrays(x, np.zeros(4), batch_size=4, augment=aug))
    assert np.all(xb.numpy() == 1.0) and calls and all(calls)
    with pytest.raises(InvalidArgumentError, match="same length"):
        data.from_arrays(x, np.zeros(3))
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        data.from_arrays(x, batch_size=0)
    with pytest.raises(InvalidArgumentError, match="augment"):
        data.from_arrays(x, augment=3)


def test_folders_env(monkeypatch, tmp_path):
    monkeypatch.delenv("VISIONKIT_DATA", raising=False)
    assert data.data_dir() is None
    monkeypatch.setenv("VISIONKIT_DATA", str(tmp_path))
    assert data.data_dir() == tmp_path
    monkeypatch.setenv("VISIONKIT_CACHE", str(tmp_path / "c"))
    assert data.cache_dir() == tmp_path / "c"
    shutil.rmtree(tmp_path, ignore_errors=True)
