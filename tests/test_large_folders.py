"""Image folders at dataset scale (#22): the cached header index, the read-time guard,
the cache option, TFRecords and progress."""

from __future__ import annotations

import io
import json
import os
import struct
import warnings

import numpy as np
import pytest
from PIL import Image

from visionkit import data
from visionkit.data import _folders, _headers, _index
from visionkit.errors import ImageReadError, InvalidArgumentError


def _tree(root, counts, size=(6, 6)):
    rng = np.random.default_rng(0)
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / cls / f"{i:02d}.png")
    return root


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def _count_sniffs(monkeypatch):
    seen = []
    real = _headers.sniff

    def counting(path):
        seen.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(_headers, "sniff", counting)
    return seen


def _corrupt_png(path):
    """A PNG whose header and IEND are whole but whose pixel data is not: only a decode finds it."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(3).integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(buf, "PNG")
    raw = bytearray(buf.getvalue())
    at = raw.index(b"IDAT") + 4
    raw[at:at + 8] = b"\x00" * 8  # pixel data (and so its CRC) broken
    path.write_bytes(bytes(raw))
    assert _headers.sniff(str(path))[3] is False  # the header check passes it


# ----------------------------------------------------------------------------- the index


def test_index_is_reused_while_the_folder_is_unchanged(tmp_path, monkeypatch):
    root = _tree(tmp_path / "ds", {"a": 3, "b": 3})
    data.image_folder(root, image_size=4, progress=False)
    assert _index.index_path(root).is_file()
    seen = _count_sniffs(monkeypatch)
    data.image_folder(root, image_size=4, progress=False)
    assert seen == []  # nothing read again
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(root / "a" / "01.png")
    os.utime(root / "a" / "01.png", ns=(1, 1))
    data.image_folder(root, image_size=4, progress=False)
    assert seen == ["01.png"]  # only the changed file


@pytest.mark.parametrize("damage", ["garbage", "cut", "bad_orientation", "other_folder"])
def test_damaged_index_is_rebuilt(tmp_path, monkeypatch, damage):
    root = _tree(tmp_path / "ds", {"a": 2, "b": 2})
    data.image_folder(root, image_size=4, progress=False)
    path = _index.index_path(root)
    if damage == "garbage":
        path.write_bytes(b"not an npz")
    elif damage == "cut":
        path.write_bytes(path.read_bytes()[:100])
    else:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        if damage == "bad_orientation":
            arrays["meta"][:, 4] = 99
        else:
            arrays["root"] = np.frombuffer(b"/elsewhere", dtype=np.uint8)
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)
    seen = _count_sniffs(monkeypatch)
    ds = data.image_folder(root, image_size=4, shuffle=False, progress=False)
    assert sorted(seen) == ["00.png", "00.png", "01.png", "01.png"]  # rebuilt from the files
    assert sum(len(y) for _, y in _batches(ds)) == 4
    assert _index.read_index(path, root) is not None  # and written again, valid


# ----------------------------------------------------------------------------- read time


def test_read_time_corrupt_file_is_skipped_and_named_once(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 3, "b": 3})
    _corrupt_png(root / "a" / "01b.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the header check sees nothing
        ds = data.image_folder(root, image_size=4, batch_size=4, on_error="skip", shuffle=False, progress=False)
    assert len(ds.file_paths) == 7 and int(ds.cardinality()) == 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = _batches(ds)
        second = _batches(ds)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1 and "01b.png" in messages[0]  # once per file, not once per epoch
    for epoch in (first, second):  # every epoch completes, without the bad file
        assert np.concatenate([y for _, y in epoch]).tolist() == [0, 0, 0, 1, 1, 1]


def test_read_time_corrupt_file_is_named_with_on_error_raise(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 3, "b": 3})
    _corrupt_png(root / "b" / "bad.png")
    ds = data.image_folder(root, image_size=4, batch_size=2, progress=False)
    with pytest.raises(Exception, match="bad.png"):
        _batches(ds)


def _image_keys(batches):
    return sorted(round(float(v), 3) for x, _ in batches for v in x.reshape(len(x), -1).sum(axis=1))


@pytest.mark.parametrize("fusion", [True, False])
def test_read_time_bad_file_loses_only_itself_in_every_shuffled_epoch(tmp_path, fusion):
    import tensorflow as tf

    root = _tree(tmp_path / "ds", {"a": 7, "b": 6})
    clean = data.image_folder(root, image_size=4, batch_size=4, shuffle=False, progress=False)
    expected = _image_keys(_batches(clean))
    _corrupt_png(root / "a" / "03b.png")
    ds = data.image_folder(root, image_size=4, batch_size=4, on_error="skip", seed=1, progress=False)
    if not fusion:  # batch edges shift after a dropped batch when tf.data does not fuse map and batch
        options = tf.data.Options()
        options.experimental_optimization.map_and_batch_fusion = False
        ds = ds.with_options(options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        epochs = [_batches(ds) for _ in range(4)]
    for epoch in epochs:
        assert len(epoch) == 4 and all(1 <= len(y) <= 4 for _, y in epoch)  # the announced count, never more
        if fusion:  # the 13 good images, each once
            assert _image_keys(epoch) == expected
        else:
            assert set(_image_keys(epoch)) <= set(expected) and len(_image_keys(epoch)) >= 12 - 4


def test_last_batch_lost_to_bad_files_keeps_the_batch_count(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 4})
    _corrupt_png(root / "a" / "zz.png")  # the 5th file, alone in the last batch
    ds = data.image_folder(root, image_size=4, batch_size=4, on_error="skip", shuffle=False, progress=False)
    assert int(ds.cardinality()) == 2
    with pytest.warns(RuntimeWarning, match="zz.png"):
        batches = _batches(ds)
    assert [len(y) for _, y in batches] == [4, 1]  # a stand-in batch of one good image
    np.testing.assert_array_equal(batches[1][0][0], batches[0][0][0])


def test_check_decode_finds_it_before_training(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 3, "b": 3})
    _corrupt_png(root / "a" / "01b.png")
    with pytest.raises(ImageReadError, match="01b.png"):
        data.image_folder(root, image_size=4, check="decode", progress=False)


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize("cache", [True, "memory", "file"])
def test_cache_gives_the_same_images(tmp_path, cache):
    root = _tree(tmp_path / "ds", {"a": 3, "b": 2})
    plain = _batches(data.image_folder(root, image_size=4, batch_size=2, shuffle=False, progress=False))
    option = str(tmp_path / "cache" / "imgs") if cache == "file" else cache
    ds = data.image_folder(root, image_size=4, batch_size=2, shuffle=False, cache=option, progress=False)
    for _ in range(2):
        got = _batches(ds)
        np.testing.assert_array_equal(np.concatenate([x for x, _ in got]), np.concatenate([x for x, _ in plain]))
    if cache == "file":
        assert any(p.name.startswith("imgs-") for p in (tmp_path / "cache").iterdir())
    shuffled = data.image_folder(root, image_size=4, batch_size=2, seed=1, cache=option, progress=False)
    assert sorted(np.concatenate([y for _, y in _batches(shuffled)]).tolist()) == [0, 0, 0, 1, 1]


def test_new_option_errors(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 2})
    for kwargs, name in (({"check": "full"}, "check"), ({"cache": 3}, "cache"), ({"progress": "no"}, "progress")):
        with pytest.raises(InvalidArgumentError, match=name):
            data.image_folder(root, **kwargs)


def test_progress_false_is_silent_and_true_shows(tmp_path, capsys, monkeypatch):
    root = _tree(tmp_path / "ds", {"a": 2, "b": 2})
    monkeypatch.setattr(_folders, "PROGRESS_DELAY", 0.0)
    data.image_folder(root, image_size=4, progress=False)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    _index.index_path(root).unlink()
    data.image_folder(root, image_size=4, progress=True)
    assert "image_folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------- TFRecords


def test_tfrecords_round_trip_equals_image_folder(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 3, "b": 4}, size=(7, 9))
    manifest = data.write_tfrecords(root, tmp_path / "rec", shard_size=3, progress=False)
    assert sorted(p.name for p in manifest.parent.glob("shard-*")) == [f"shard-0000{i}.tfrecord" for i in range(3)]
    kw = {"image_size": 5, "batch_size": 2, "shuffle": False, "label_mode": "categorical"}
    want = data.image_folder(root, progress=False, **kw)
    got = data.read_tfrecords(tmp_path / "rec", **kw)
    assert got.class_names == want.class_names == ["a", "b"] and got.file_paths == want.file_paths
    assert int(got.cardinality()) == int(want.cardinality()) == 4
    for (xa, ya), (xb, yb) in zip(_batches(want), _batches(got)):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    shuffled = data.read_tfrecords(tmp_path / "rec", image_size=5, batch_size=3, seed=0)
    assert sorted(np.concatenate([y for _, y in _batches(shuffled)]).tolist()) == [0, 0, 0, 1, 1, 1, 1]


def test_tfrecords_writing_resumes_and_skips_written_shards(tmp_path, monkeypatch):
    root = _tree(tmp_path / "ds", {"a": 3, "b": 3})
    out = tmp_path / "rec"
    data.write_tfrecords(root, out, shard_size=2, progress=False)
    progress = {"key": None, "shards": json.loads((out / "manifest.json").read_text())["shards"][:2]}
    (out / "manifest.json").unlink()
    # an interrupted run left the first two shards and its progress file
    from visionkit.data import _tfrecords

    key = []
    real = _tfrecords._resumable

    def spy(folder, k):
        key.append(k)
        return real(folder, k)

    monkeypatch.setattr(_tfrecords, "_resumable", spy)
    data.write_tfrecords(root, out, shard_size=2, progress=False)
    progress["key"] = key[0]
    (out / ".progress.json").write_text(json.dumps(progress))
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
    os.utime(out / "shard-00000.tfrecord", ns=(5, 5))
    data.write_tfrecords(root, out, shard_size=2, progress=False)
    assert (out / "shard-00000.tfrecord").stat().st_mtime_ns == 5  # kept, not rewritten
    assert (out / "shard-00002.tfrecord").stat().st_mtime_ns >= before["shard-00002.tfrecord"]
    assert not (out / ".progress.json").exists()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m, out: m.update(class_names="abc"), "class_names"),
        (lambda m, out: m.update(count=m["count"] + 1), "count"),
        (lambda m, out: m["shards"][0].update(file="../shard-00000.tfrecord"), "shard entry"),
        (lambda m, out: m.update(format="other"), "format"),
        (lambda m, out: (out / "shard-00001.tfrecord").write_bytes(b"x"), "should be"),
    ],
)
def test_tampered_manifest_is_refused(tmp_path, edit, match):
    root = _tree(tmp_path / "ds", {"a": 2, "b": 2})
    out = tmp_path / "rec"
    data.write_tfrecords(root, out, shard_size=2, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    edit(manifest, out)
    (out / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ImageReadError, match=match):
        data.read_tfrecords(out)


def test_tfrecords_at_a_fixed_size_and_an_unreadable_manifest(tmp_path):
    root = _tree(tmp_path / "ds", {"a": 2, "b": 2}, size=(20, 30))
    data.write_tfrecords(root, tmp_path / "rec", image_size=(10, 15), progress=False)
    ds = data.read_tfrecords(tmp_path / "rec", image_size=(10, 15), batch_size=None, shuffle=False)
    assert [tuple(x.shape) for x, _ in ds] == [(10, 15, 3)] * 4
    (tmp_path / "rec" / "manifest.json").write_bytes(struct.pack("<I", 7) + b"\xff")
    with pytest.raises(ImageReadError, match="manifest"):
        data.read_tfrecords(tmp_path / "rec")


def test_tfrecords_command(tmp_path, capsys):
    from visionkit.cli import main

    root = _tree(tmp_path / "ds", {"a": 2, "b": 2})
    assert main(["tfrecords", str(root), "-o", str(tmp_path / "rec"), "--shard-size", "3", "--quiet"]) == 0
    assert "manifest.json" in capsys.readouterr().out
    assert data.read_tfrecords(tmp_path / "rec", image_size=4).class_names == ["a", "b"]
