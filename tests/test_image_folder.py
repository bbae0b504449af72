"""visionkit.data.image_folder hardening: bad files before training, EXIF, odd folders, Keras parity."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from visionkit import data
from visionkit.errors import ImageReadError, InvalidArgumentError, VisionkitError


def _save(path, array, fmt=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, fmt, **kwargs)
    return path


def _tree(root, counts, size=(6, 6)):
    """``root/<class>/<i>.png``, random images; ``counts`` images per class."""
    rng = np.random.default_rng(0)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            _save(root / cls / f"{i:02d}.png", rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return root


def _encoded(array, fmt, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, fmt, **kwargs)
    return buf.getvalue()


def _images(ds):
    return np.concatenate([(b[0] if isinstance(b, tuple) else b).numpy() for b in ds])


def _labels(ds):
    return np.concatenate([y.numpy() for _, y in ds])


def _rel(ds, root):
    return [os.path.relpath(p, root) for p in ds.file_paths]


# ----------------------------------------------------------------------------- bad files


def _files_tensorflow_rejects(folder):
    """A PNG without its IEND chunk and a GIF without its last 2 bytes: PIL reads both, TensorFlow neither."""
    rng = np.random.default_rng(1)
    png = _encoded(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), "PNG")
    assert png.endswith(b"IEND\xaeB`\x82")
    (folder / "no_iend.png").write_bytes(png[:-12])
    gif = _encoded(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8), "GIF")
    (folder / "cut.gif").write_bytes(gif[:-2])
    for name in ("no_iend.png", "cut.gif"):
        with Image.open(folder / name) as img:
            img.load()  # PIL (the old up-front check) accepts them


def test_files_tensorflow_cannot_decode_are_named_before_training(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 3, "b": 3})
    _files_tensorflow_rejects(root / "a")
    with pytest.raises(ImageReadError) as info:
        data.image_folder(root, image_size=4)
    assert "no_iend.png" in str(info.value) and "cut.gif" in str(info.value)
    assert "Invalid PNG data" in str(info.value)


def test_skip_drops_them_with_one_warning_and_an_epoch_completes(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 3, "b": 3})
    _files_tensorflow_rejects(root / "b")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = data.image_folder(root, image_size=4, batch_size=2, on_error="skip", shuffle=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "no_iend.png" in messages[0] and "cut.gif" in messages[0]
    assert len(ds.file_paths) == 6 and not any(p.endswith((".gif", "no_iend.png")) for p in ds.file_paths)
    for _ in range(2):  # every epoch decodes to the end
        assert _labels(ds).tolist() == [0, 0, 0, 1, 1, 1]


def test_multi_picture_jpeg_is_read(tmp_path):
    # phones write MPO (a JPEG with a second picture): TensorFlow decodes it; the old check refused it
    root = tmp_path / "ds"
    first = Image.fromarray(np.full((8, 8, 3), 100, np.uint8))
    (root / "a").mkdir(parents=True)
    first.save(root / "a" / "photo.jpg", "MPO", save_all=True, append_images=[first.point(lambda v: 200)])
    with Image.open(root / "a" / "photo.jpg") as img:
        assert img.format == "MPO"
    (x, _), = list(data.image_folder(root, image_size=8, batch_size=1))
    np.testing.assert_allclose(x.numpy()[0], data.load_image(root / "a" / "photo.jpg"), atol=2)


# ----------------------------------------------------------------------------- EXIF orientation


def _png_with_exif_after_pixels(array, orientation):
    """A PNG whose eXIf chunk comes after IDAT (PIL sees it only on load)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes()
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload + struct.pack(">I", zlib.crc32(b"eXIf" + payload))
    png = _encoded(array, "PNG")
    return png[:-12] + chunk + png[-12:]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_load_image(tmp_path, orientation):
    array = np.random.default_rng(orientation).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    (tmp_path / "ds" / "a").mkdir(parents=True)
    path = tmp_path / "ds" / "a" / "img.png"
    path.write_bytes(_png_with_exif_after_pixels(array, orientation))
    expected = data.load_image(path)
    assert expected.shape == ((4, 6, 3) if orientation < 5 else (6, 4, 3))
    (x, _), = list(data.image_folder(tmp_path / "ds", image_size=expected.shape[:2], batch_size=1))
    np.testing.assert_array_equal(x.numpy()[0], expected)


def test_exif_orientation_of_a_jpeg(tmp_path):
    yy, xx = np.mgrid[0:16, 0:24]
    array = np.stack([yy * 15, xx * 10, 255 - yy * 15], axis=-1).astype(np.uint8)  # smooth: JPEG keeps it
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    path = _save(tmp_path / "ds" / "a" / "photo.jpg", array, "JPEG", exif=exif, quality=95)
    expected = data.load_image(path)
    assert expected.shape == (24, 16, 3)
    (x, _), = list(data.image_folder(tmp_path / "ds", image_size=(24, 16), batch_size=1))
    assert np.abs(x.numpy()[0] - expected).mean() < 2.0


def test_xmp_orientation_and_exif_without_orientation(tmp_path):
    from PIL import PngImagePlugin

    array = np.random.default_rng(3).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta><rdf:Description tiff:Orientation="8"/></x:xmpmeta>')
    _save(tmp_path / "ds" / "a" / "xmp.png", array, "PNG", pnginfo=info)
    exif = Image.Exif()
    exif[0x010F] = "camera maker"  # EXIF, but no orientation
    _save(tmp_path / "ds" / "b" / "plain.png", array, "PNG", exif=exif)
    for path, shape in ((tmp_path / "ds" / "a" / "xmp.png", (6, 4, 3)), (tmp_path / "ds" / "b" / "plain.png", (4, 6, 3))):
        expected = data.load_image(path)
        assert expected.shape == shape
        x = next(iter(data.image_folder(path.parent, labels=None, image_size=shape[:2], batch_size=1)))
        np.testing.assert_array_equal(x.numpy()[0], expected)


# ----------------------------------------------------------------------------- odd folders


def test_empty_class_folder_warns_and_class_names_drops_it(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 2, "c": 2})
    (root / "b").mkdir()
    with pytest.warns(UserWarning, match=r"\['b'\].*class_names=\['a', 'c'\]"):
        ds = data.image_folder(root, image_size=4)
    assert ds.class_names == ["a", "b", "c"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = data.image_folder(root, image_size=4, class_names=["a", "c"])
    assert ds.class_names == ["a", "c"] and len(ds.file_paths) == 4


def test_class_folder_linking_to_the_root_is_not_read(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 2, "b": 2})
    os.symlink(root, root / "c", target_is_directory=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = data.image_folder(root, image_size=4, batch_size=10, shuffle=False)
    assert len(ds.file_paths) == 4 and _labels(ds).tolist() == [0, 0, 1, 1]  # not every image again under c
    messages = [str(w.message) for w in caught]
    assert any("lead back" in m and os.path.join(str(root), "c") in m for m in messages)
    assert any("['c']" in m and "class_names=['a', 'b']" in m for m in messages)


@pytest.mark.parametrize("follow_links", [False, True])
def test_links_inside_a_class_never_loop_nor_relabel(tmp_path, follow_links):
    root = _tree(tmp_path / "ds", {"a": 2, "b": 2})
    _save(root / "a" / "deep" / "x.png", np.zeros((6, 6, 3), np.uint8))  # a real sub-folder: always read
    outside = _tree(tmp_path / "more", {"x": 3})
    os.symlink(root, root / "a" / "back_to_root", target_is_directory=True)
    os.symlink(root / "b", root / "a" / "into_b", target_is_directory=True)
    os.symlink(outside / "x", root / "b" / "extra", target_is_directory=True)
    os.symlink(outside, outside / "x" / "loop", target_is_directory=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = data.image_folder(root, image_size=4, batch_size=20, shuffle=False, follow_links=follow_links)
    paths = _rel(ds, root)
    if follow_links:  # the outside folder is read once, under b; the links back into the tree are not
        assert paths == ["a/00.png", "a/01.png", "a/deep/x.png", "b/00.png", "b/01.png", "b/extra/00.png", "b/extra/01.png", "b/extra/02.png"]
        assert _labels(ds).tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
        assert any("back_to_root" in str(w.message) and "into_b" in str(w.message) for w in caught)
    else:  # as Keras: links to folders are not entered
        assert paths == ["a/00.png", "a/01.png", "a/deep/x.png", "b/00.png", "b/01.png"]
        assert not caught


def test_linked_class_folder_and_file_links_are_read(tmp_path):
    outside = _tree(tmp_path / "store", {"cats": 2})
    root = _tree(tmp_path / "ds", {"dogs": 1})
    os.symlink(outside / "cats", root / "cats", target_is_directory=True)
    os.symlink(outside / "cats" / "00.png", root / "dogs" / "linked.png")
    ds = data.image_folder(root, image_size=4, shuffle=False)
    assert _rel(ds, root) == ["cats/00.png", "cats/01.png", "dogs/00.png", "dogs/linked.png"]


# ----------------------------------------------------------------------------- Keras parity


def test_labels_none_reads_every_image_in_alphanumeric_order(tmp_path):
    root = _tree(tmp_path / "ds", {"b": 1, "a": 2})
    _save(root / "top.png", np.zeros((6, 6, 3), np.uint8))
    _save(root / "a" / "deep" / "x.png", np.zeros((6, 6, 3), np.uint8))
    ds = data.image_folder(root, labels=None, image_size=4, batch_size=10, shuffle=False)
    assert ds.class_names is None
    assert _rel(ds, root) == ["top.png", "a/00.png", "a/01.png", "a/deep/x.png", "b/00.png"]
    batch = next(iter(ds))
    assert not isinstance(batch, tuple) and batch.shape == (5, 4, 4, 3)


def test_explicit_labels_follow_the_file_order(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 2, "b": 2})
    ds = data.image_folder(root, labels=[1, 0, 2, 1], label_mode="categorical", image_size=4, shuffle=False)
    assert ds.class_names == ["0", "1", "2"]
    np.testing.assert_array_equal(_labels(ds), np.eye(3)[[1, 0, 2, 1]])
    given = dict(zip(_rel(ds, root), (1, 0, 2, 1)))
    val = data.image_folder(root, labels=(1, 0, 2, 1), image_size=4, validation_split=0.5, subset="validation",
                            seed=3, shuffle=False)
    assert _labels(val).tolist() == [given[p] for p in _rel(val, root)]  # each label stays with its file


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": [0, 1]}, "one label per image file"),
        ({"labels": [0, 1, 2, -1]}, "labels"),
        ({"labels": "folders"}, "labels"),
        ({"labels": [0, 1, 2, 1], "label_mode": "binary"}, "labels 0 and 1"),
        ({"labels": None, "class_names": ["a"]}, "class_names"),
        ({"labels": [0, 1, 1, 0], "class_names": ["a", "b"]}, "class_names"),
        ({"class_names": ["a", "zebra"]}, "zebra"),
        ({"class_names": ["a", "a"]}, "distinct"),
        ({"color_mode": "cmyk"}, "color_mode"),
        ({"crop_to_aspect_ratio": True, "pad_to_aspect_ratio": True}, "not both"),
        ({"follow_links": "yes"}, "follow_links"),
    ],
)
def test_new_argument_errors(tmp_path, kwargs, match):
    root = _tree(tmp_path / "ds", {"a": 2, "b": 2})
    with pytest.raises(InvalidArgumentError, match=match) as info:
        data.image_folder(root, image_size=4, **kwargs)
    assert isinstance(info.value, VisionkitError) and "Received:" in str(info.value)


def test_class_names_choose_and_order_the_classes(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 1, "b": 2, "c": 1})
    ds = data.image_folder(root, class_names=["c", "a"], image_size=4, shuffle=False, batch_size=10)
    assert ds.class_names == ["c", "a"]
    assert _rel(ds, root) == ["c/00.png", "a/00.png"] and _labels(ds).tolist() == [0, 1]


def test_color_modes(tmp_path):
    rgba = np.random.default_rng(2).integers(0, 256, (6, 6, 4), dtype=np.uint8)
    rgba[:3, :, 3] = 0
    rgba[3:, :, 3] = 255
    path = _save(tmp_path / "ds" / "a" / "img.png", rgba, "PNG")
    (_, _), = list(data.image_folder(tmp_path / "ds", image_size=6))
    (x4, _), = list(data.image_folder(tmp_path / "ds", image_size=6, color_mode="rgba"))
    np.testing.assert_array_equal(x4.numpy()[0], rgba.astype(np.float32))
    (x1, _), = list(data.image_folder(tmp_path / "ds", image_size=6, color_mode="grayscale"))
    gray = np.asarray(Image.fromarray(data.load_image(path).astype(np.uint8)).convert("L"), np.float32)
    assert x1.shape == (1, 6, 6, 1) and np.all(x1.numpy()[0, :3] > 254.99)  # transparent: white
    np.testing.assert_allclose(x1.numpy()[0, ..., 0], gray, atol=1.0)
    _save(tmp_path / "ds" / "a" / "gray.png", rgba[..., 0], "PNG")
    (x4, _), = list(data.image_folder(tmp_path / "ds", image_size=6, color_mode="rgba", shuffle=False, batch_size=2))
    assert np.all(x4.numpy()[0, ..., 3] == 255) and np.all(x4.numpy()[0, ..., 0] == rgba[..., 0])


def test_crop_and_pad_to_aspect_ratio(tmp_path):
    array = np.zeros((8, 24, 3), np.uint8)
    array[:, :8] = (255, 0, 0)
    array[:, 8:16] = (0, 255, 0)
    array[:, 16:] = (0, 0, 255)
    _save(tmp_path / "ds" / "a" / "wide.png", array, "PNG")
    (crop, _), = list(data.image_folder(tmp_path / "ds", image_size=8, crop_to_aspect_ratio=True))
    np.testing.assert_allclose(crop.numpy()[0], np.broadcast_to([0, 255, 0], (8, 8, 3)))  # the centre, undistorted
    (pad, _), = list(data.image_folder(tmp_path / "ds", image_size=6, pad_to_aspect_ratio=True))
    rows = pad.numpy()[0].reshape(6, -1).max(axis=1)
    assert rows[0] == 0 and rows[-1] == 0 and rows[3] > 0  # black bars above and below
    (plain, _), = list(data.image_folder(tmp_path / "ds", image_size=8))
    assert plain.numpy()[0, :, 0, 0].min() == 255  # distorted: red reaches the left edge


def test_shuffle_false_is_alphanumeric_even_when_split(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 6, "b": 6})
    train, val = data.image_folder(root, image_size=4, validation_split=0.25, subset="both", shuffle=False)
    assert train.file_paths == sorted(train.file_paths) and val.file_paths == sorted(val.file_paths)
    assert not set(train.file_paths) & set(val.file_paths) and len(val.file_paths) == 3
    shuffled = data.image_folder(root, image_size=4, validation_split=0.25, subset="validation")
    assert sorted(shuffled.file_paths) == val.file_paths  # the same split whatever `shuffle`
    whole = data.image_folder(root, image_size=4, shuffle=False)
    assert _rel(whole, root) == [f"{c}/{i:02d}.png" for c in "ab" for i in range(6)]


def test_a_lone_validation_subset_is_shuffled_each_epoch(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 10, "b": 10})
    kwargs = {"image_size": 2, "validation_split": 0.5, "batch_size": 20, "seed": 0}
    val = data.image_folder(root, subset="validation", **kwargs)
    epochs = [_labels(val).tolist() for _ in range(4)]
    assert any(e != epochs[0] for e in epochs[1:]) and sorted(epochs[0]) == sorted(epochs[1])
    _, both_val = data.image_folder(root, subset="both", **kwargs)  # as Keras: "both" keeps validation in order
    assert _labels(both_val).tolist() == _labels(both_val).tolist()
    expected = [both_val.class_names.index(os.path.basename(os.path.dirname(p))) for p in both_val.file_paths]
    assert _labels(both_val).tolist() == expected


def test_folder_splits_passes_color_mode_and_follow_links(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 4, "b": 4})
    extra = _tree(tmp_path / "more", {"x": 2})
    os.symlink(extra / "x", root / "a" / "extra", target_is_directory=True)
    splits = data.folder_splits(root, image_size=4, batch_size=16, validation_split=0, color_mode="grayscale", follow_links=True)
    x, _ = next(iter(splits.train))
    assert x.shape == (10, 4, 4, 1)
    assert len(data.folder_splits(root, image_size=4, validation_split=0).train.file_paths) == 8
    with pytest.raises(InvalidArgumentError, match="color_mode"):
        data.folder_splits(root, color_mode="bgr")
