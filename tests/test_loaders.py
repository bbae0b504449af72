"""visionkit.data loaders, hardened: damaged files named, values checked, bounded downloads.

Every test builds its bad input itself (tiny arrays, local servers on 127.0.0.1); none
touches the network or the real datasets.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import pickle
import socket
import tarfile
import threading
import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from visionkit import data
from visionkit.data import _cifar_readers, _sources
from visionkit.errors import DataNotFoundError, ImageReadError, InvalidArgumentError

# ----------------------------------------------------------------------------- builders


def _mnist_arrays(n: int = 4) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
        "y_train": np.arange(n, dtype=np.uint8) % 10,
        "x_test": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        "y_test": np.array([7, 2], dtype=np.uint8),
    }


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _bad_crc(blob: bytes, member: str = "x_train.npy") -> bytes:
    """Flip one byte inside ``member``'s (stored, uncompressed) data: its CRC no longer matches."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        info = zf.getinfo(member)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)  # local header
    out = bytearray(blob)
    out[start + info.compress_size - 1] ^= 0xFF
    return bytes(out)


def _cifar_batch(n: int = 2, *, labels=None, data_=None) -> bytes:
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (n, 3072), dtype=np.uint8) if data_ is None else data_
    return pickle.dumps({b"data": x, b"labels": list(range(n)) if labels is None else labels})


def _cifar_python_tar(batches: dict[str, bytes] | None = None) -> bytes:
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = batches or {}
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in names:
            blob = batches.get(name, _cifar_batch())
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


def _jpeg_tree(root, per_class: int = 1):
    for split in ("train", "test"):
        for i, cls in enumerate(data.CIFAR10_CLASSES):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for j in range(per_class):
                Image.new("RGB", (32, 32), (i * 20, j * 40, 100)).save(folder / f"{j:04d}.jpg")
    return root


# ----------------------------------------------------------------------------- damaged .npz


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda good: b"", "is empty"),
        (lambda good: good[: len(good) // 2], "truncated or not an .npz"),
        (lambda good: b"not a zip at all " * 10, "truncated or not an .npz"),
        (_bad_crc, r"member 'x_train\.npy'.*CRC"),
        (lambda good: _npz_bytes({"x_train": np.zeros((2, 28, 28), np.uint8)}), "lacks the arrays y_train, x_test, y_test"),
        (lambda good: _npz_bytes({**_mnist_arrays(), "x_train": np.zeros((4, 28, 27), np.uint8)}), r"x_train has shape \(4, 28, 27\)"),
        (lambda good: _npz_bytes({**_mnist_arrays(), "y_test": np.array(["a", "b"])}), "has dtype <U1"),
    ],
    ids=["empty", "truncated", "not-zip", "bad-crc", "missing-keys", "wrong-shape", "wrong-dtype"],
)
def test_mnist_damaged_npz_is_named(tmp_path, make, match):
    file = tmp_path / "mnist.npz"
    file.write_bytes(make(_npz_bytes(_mnist_arrays())))
    with pytest.raises(ImageReadError, match=match) as info:
        data.load_mnist(file)
    assert str(file) in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        ("x_train", np.full((4, 28, 28), 1000.0), r"`x_train` \(float64\) has values in \[1000\.0, 1000\.0\], outside \[0, 255\]"),
        ("x_test", np.full((2, 28, 28), -1, np.int16), r"`x_test` \(int16\) has values in \[-1, -1\]"),
        ("x_train", np.full((4, 28, 28), np.nan, np.float32), r"`x_train`.*nan"),
        ("x_train", np.full((4, 28, 28), 0.5), r"`x_train`.*fractional"),
        ("y_train", np.array([0, 1, 2, 300]), r"`y_train` \(int64\) has values in \[0, 300\], outside \[0, 9\]"),
        ("y_test", np.array([-1, 2]), r"`y_test` \(int64\) has values in \[-1, 2\]"),
        ("y_test", np.array([10, 2], np.uint8), r"`y_test` \(uint8\) has values in \[2, 10\], outside \[0, 9\]"),
    ],
    ids=["pixel-1000", "pixel-negative", "pixel-nan", "pixel-fraction", "label-300", "label-negative", "label-10-uint8"],
)
def test_mnist_values_outside_uint8_are_refused(tmp_path, key, value, match):
    file = tmp_path / "mnist.npz"
    np.savez(file, **{**_mnist_arrays(), key: value})
    with pytest.raises(ImageReadError, match=match) as info:
        data.load_mnist(file)
    assert str(file) in str(info.value)


def test_mnist_whole_numbers_of_another_dtype_load(tmp_path):
    good = _mnist_arrays()
    np.savez(tmp_path / "mnist.npz", **{k: v.astype(np.float64 if k.startswith("x") else np.int64) for k, v in good.items()})
    (x, y), (xt, yt) = data.load_mnist(tmp_path)
    assert x.dtype == y.dtype == np.uint8
    np.testing.assert_array_equal(x, good["x_train"])
    np.testing.assert_array_equal(yt, good["y_test"])


# ----------------------------------------------------------------------------- CIFAR-10 sources


def _batches_dir(tmp_path, **overrides):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (folder / name).write_bytes(overrides.get(name, _cifar_batch()))
    return folder


@pytest.mark.parametrize(
    ("blob", "match"),
    [
        (b"", "EOFError"),
        (_cifar_batch()[:100], "not a readable CIFAR-10 batch file"),
        (_cifar_batch(labels=[0, 300]), r"`labels` \(int64\) has values in \[0, 300\], outside \[0, 9\]"),
        (_cifar_batch(labels=[-1, 3]), r"`labels` \(int64\) has values in \[-1, 3\]"),
        (_cifar_batch(data_=np.full((2, 3072), 1000.0)), r"`data` \(float64\) has values in \[1000\.0, 1000\.0\]"),
        (_cifar_batch(data_=np.zeros((2, 100), np.uint8)), r"data has shape \(2, 100\)"),
        (pickle.dumps({b"labels": [1]}), "KeyError"),
    ],
    ids=["empty", "truncated", "label-300", "label-negative", "pixel-1000", "wrong-shape", "missing-key"],
)
def test_cifar_damaged_batch_is_named(tmp_path, blob, match):
    folder = _batches_dir(tmp_path, data_batch_3=blob)
    with pytest.raises(ImageReadError, match=match) as info:
        data.load_cifar10(folder)
    assert str(folder / "data_batch_3") in str(info.value)


def test_cifar_damaged_python_tar_member_is_named(tmp_path, monkeypatch):
    blob = _cifar_python_tar({"test_batch": _cifar_batch(labels=[4, 300])})
    monkeypatch.setattr(_sources, "CIFAR_PY_SHA256", hashlib.sha256(blob).hexdigest())
    file = tmp_path / "cifar-10-python.tar.gz"
    file.write_bytes(blob)
    with pytest.raises(ImageReadError, match=r"test_batch.*outside \[0, 9\]") as info:
        data.load_cifar10(file)
    assert str(file) in str(info.value)


def test_cifar_truncated_archive_is_named(tmp_path):
    src = _jpeg_tree(tmp_path / "tree")
    file = tmp_path / "cifar10-jpeg.tar.gz"
    with tarfile.open(file, "w:gz") as tar:
        tar.add(src, arcname="cifar10")
    file.write_bytes(file.read_bytes()[:300])
    with pytest.raises(ImageReadError, match="Could not read CIFAR-10 archive") as info:
        data.load_cifar10(file)
    assert str(file) in str(info.value)


def test_cifar_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONKIT_CACHE", str(tmp_path / "cache"))
    root = _jpeg_tree(tmp_path / "cifar10")
    (x, y), _ = data.load_cifar10(root)
    (cache,) = (tmp_path / "cache").glob("cifar10-*.npz")
    cache.write_bytes(_bad_crc(cache.read_bytes()))
    with pytest.raises(ImageReadError, match=r"member 'x_train\.npy'.*CRC"):  # the damage is real
        _cifar_readers.read_cifar_npz(cache)
    (x2, _), _ = data.load_cifar10(root)
    np.testing.assert_array_equal(x2, x)
    (x3, _), _ = _cifar_readers.read_cifar_npz(cache)  # rebuilt
    np.testing.assert_array_equal(x3, x)


def test_cifar_tar_members_are_never_extracted(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONKIT_CACHE", str(tmp_path / "cache"))
    src = _jpeg_tree(tmp_path / "tree")
    (tmp_path / "work").mkdir()
    file = tmp_path / "work" / "cifar10-jpeg.tar.gz"
    with tarfile.open(file, "w:gz") as tar:
        tar.add(src, arcname="cifar10")
        for name in ("../escaped.jpg", "/tmp/absolute-escape-visionkit.jpg", "cifar10/train/cat/../../../../up.jpg"):
            blob = (src / "train" / "cat" / "0000.jpg").read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "cache" not in p.parts)
    (x, y), (xt, _) = data.load_cifar10(file)
    assert x.shape == (10, 32, 32, 3) and xt.shape == (10, 32, 32, 3)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "cache" not in p.parts)
    assert after == before


# ----------------------------------------------------------------------------- downloads


@pytest.fixture
def offline_home(tmp_path, monkeypatch):
    """No local data, an empty Keras cache, no proxy for 127.0.0.1, a 1 s network timeout."""
    monkeypatch.delenv("VISIONKIT_DATA", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("VISIONKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("VISIONKIT_DOWNLOAD_TIMEOUT", "1")
    return tmp_path / "keras" / "datasets"


class _LocalServer:
    """An HTTP server on 127.0.0.1 for the download tests; ``respond(handler)`` writes each response."""

    def __init__(self) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # http.server calls it by this name
                outer.respond(self)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/file"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def respond(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


class _Server(_LocalServer):
    """Serves ``payload`` in ``chunks`` pieces, ``delay`` s apart."""

    def __init__(self, payload: bytes, *, chunks: int = 1, delay: float = 0.0) -> None:
        super().__init__()
        self.payload, self.chunks, self.delay = payload, chunks, delay
        self.requests = 0

    def respond(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        self.requests += 1
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(self.payload)))
        handler.end_headers()
        step = -(-len(self.payload) // self.chunks)
        for i in range(0, len(self.payload), step):
            time.sleep(self.delay)
            handler.wfile.write(self.payload[i : i + step])
            handler.wfile.flush()


def _in_thread(fn, *, guard: float = 60.0):
    """Run ``fn()`` in a thread; return its result or exception. Fails (rather than hangs) past ``guard`` seconds."""
    box: dict[str, object] = {}

    def target():
        try:
            box["result"] = fn()
        except BaseException as exc:  # any error is handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=guard)
    assert not thread.is_alive(), f"the call still hangs after {guard} s"
    return box.get("result"), box.get("error")


def test_stalled_network_fails_with_the_offline_error(offline_home, monkeypatch):
    stop = threading.Event()
    held: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(0.2)

        def accept_and_never_answer():
            while not stop.is_set():
                try:
                    held.append(listener.accept()[0])
                except OSError:
                    continue

        thread = threading.Thread(target=accept_and_never_answer, daemon=True)
        thread.start()
        port = listener.getsockname()[1]
        monkeypatch.setattr(_sources, "MNIST_URL", f"http://127.0.0.1:{port}/mnist.npz")
        monkeypatch.setattr(_sources, "CIFAR_PY_URL", f"http://127.0.0.1:{port}/cifar-10-python.tar.gz")
        try:
            _, error = _in_thread(data.load_mnist)
            _, error_cifar = _in_thread(data.load_cifar10)
        finally:
            stop.set()
            thread.join(timeout=10)
            for conn in held:
                conn.close()
    assert held, "the client never connected"
    assert isinstance(error, DataNotFoundError), error
    msg = str(error)
    assert "no answer within 1 s" in msg and "VISIONKIT_DOWNLOAD_TIMEOUT" in msg
    assert "VISIONKIT_DATA" in msg and "Keras cache" in msg and "sample=True" in msg
    assert isinstance(error_cifar, DataNotFoundError) and "no answer within 1 s" in str(error_cifar)
    assert not offline_home.exists() or not list(offline_home.iterdir())  # no partial file left


def test_slow_but_live_download_completes_and_is_cached(offline_home, monkeypatch):
    payload = _npz_bytes(_mnist_arrays())
    monkeypatch.setattr(_sources, "MNIST_SHA256", hashlib.sha256(payload).hexdigest())
    with _Server(payload, chunks=5, delay=0.3) as server:  # 1.5 s in all, more than the 1 s timeout
        monkeypatch.setattr(_sources, "MNIST_URL", server.url)
        result, error = _in_thread(data.load_mnist)
    assert error is None, error
    (x, _), _ = result
    np.testing.assert_array_equal(x, _mnist_arrays()["x_train"])
    assert (offline_home / "mnist.npz").read_bytes() == payload  # where Keras would cache it
    assert [p.name for p in offline_home.iterdir()] == ["mnist.npz"]  # no temporary left
    (x2, _), _ = data.load_mnist()  # the server is gone: read from the cache
    np.testing.assert_array_equal(x2, x)


def test_download_with_wrong_hash_is_refused(offline_home, monkeypatch):
    with _Server(_npz_bytes(_mnist_arrays())) as server:
        monkeypatch.setattr(_sources, "MNIST_URL", server.url)
        with pytest.raises(DataNotFoundError, match=r"download of .*sha256 [0-9a-f]{12}\.\.\., expected 731c5ac60275"):
            data.load_mnist()
    assert not offline_home.exists() or not list(offline_home.iterdir())


def test_damaged_keras_cache_is_downloaded_again(offline_home, monkeypatch):
    payload = _npz_bytes(_mnist_arrays())
    monkeypatch.setattr(_sources, "MNIST_SHA256", hashlib.sha256(payload).hexdigest())
    offline_home.mkdir(parents=True)
    (offline_home / "mnist.npz").write_bytes(payload[:100])  # a download cut short
    with _Server(payload) as server:
        monkeypatch.setattr(_sources, "MNIST_URL", server.url)
        (x, _), _ = data.load_mnist()
    assert server.requests == 1
    np.testing.assert_array_equal(x, _mnist_arrays()["x_train"])
    assert (offline_home / "mnist.npz").read_bytes() == payload


def test_cifar_download_is_kept_where_keras_keeps_it(offline_home, monkeypatch):
    payload = _cifar_python_tar()
    monkeypatch.setattr(_sources, "CIFAR_PY_SHA256", hashlib.sha256(payload).hexdigest())
    with _Server(payload) as server:
        monkeypatch.setattr(_sources, "CIFAR_PY_URL", server.url)
        (x, y), (xt, yt) = data.load_cifar10()
    assert x.shape == (10, 32, 32, 3) and y.shape == (10, 1) and xt.shape == (2, 32, 32, 3)
    assert (offline_home / "cifar-10-batches-py-target_archive").read_bytes() == payload
    (x2, _), _ = data.load_cifar10()  # the server is gone
    np.testing.assert_array_equal(x2, x)


@pytest.mark.parametrize("value", ["0", "-3", "soon", "inf", "nan"])
def test_download_timeout_must_be_positive_seconds(offline_home, monkeypatch, value):
    monkeypatch.setenv("VISIONKIT_DOWNLOAD_TIMEOUT", value)
    with pytest.raises(InvalidArgumentError, match="VISIONKIT_DOWNLOAD_TIMEOUT"):
        data.load_mnist()


# ----------------------------------------------------------------------------- bombs: sizes checked before reading (#19)


def _npz_declaring(shape: tuple[int, ...], key: str = "x_train") -> bytes:
    """A tiny .npz whose member ``key`` declares ``shape`` (uint8) but holds 16 bytes."""
    arrays = _npz_bytes(_mnist_arrays())
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(arrays)) as src, zipfile.ZipFile(buf, "w") as out:
        for info in src.infolist():
            if info.filename == f"{key}.npy":
                head = io.BytesIO()
                np.lib.format.write_array_header_1_0(head, {"descr": "|u1", "fortran_order": False, "shape": shape})
                out.writestr(info.filename, head.getvalue() + bytes(16))
            else:
                out.writestr(info, src.read(info))
    return buf.getvalue()


def test_npz_declaring_an_enormous_array_is_refused_before_reading(tmp_path):
    file = tmp_path / "mnist.npz"
    file.write_bytes(_npz_declaring((10**7, 10**6, 28)))  # 280 TB declared in a file of a few KiB
    with pytest.raises(ImageReadError, match=r"array 'x_train' declares shape \(10000000, 1000000, 28\)") as info:
        data.load_mnist(file)
    assert str(file) in str(info.value) and "MAX_NPZ_ARRAY_BYTES" in str(info.value)


def test_npz_declaring_more_than_its_member_holds_is_refused(tmp_path):
    file = tmp_path / "mnist.npz"
    file.write_bytes(_npz_declaring((1000, 28, 28)))  # under the cap, but the member holds 16 bytes
    with pytest.raises(ImageReadError, match=r"declares shape \(1000, 28, 28\).*holds 16 bytes"):
        data.load_mnist(file)


def test_cifar_cache_declaring_an_enormous_array_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("VISIONKIT_CACHE", str(tmp_path / "cache"))
    root = _jpeg_tree(tmp_path / "cifar10")
    (x, _), _ = data.load_cifar10(root)
    (cache,) = (tmp_path / "cache").glob("cifar10-*.npz")
    cache.write_bytes(_npz_declaring((10**7, 10**6, 32, 3)))
    (x2, _), _ = data.load_cifar10(root)  # the damaged cache is treated as damaged: rebuilt
    np.testing.assert_array_equal(x2, x)
    (x3, _), _ = _cifar_readers.read_cifar_npz(cache)
    np.testing.assert_array_equal(x3, x)


def test_cifar_archive_member_larger_than_an_image_is_refused_unread(tmp_path, monkeypatch):
    src = _jpeg_tree(tmp_path / "tree")
    file = tmp_path / "cifar10-jpeg.tar.gz"
    with tarfile.open(file, "w:gz") as tar:
        tar.add(src, arcname="cifar10")
        info = tarfile.TarInfo("cifar10/train/cat/huge.jpg")
        info.size = data.MAX_ARCHIVE_MEMBER_BYTES + 1  # zeros: a few KiB once compressed
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    read_sizes: list[int] = []
    real = tarfile.TarFile.extractfile

    def spy(self, member):
        read_sizes.append(member.size if isinstance(member, tarfile.TarInfo) else -1)
        return real(self, member)

    monkeypatch.setattr(tarfile.TarFile, "extractfile", spy)
    with pytest.raises(ImageReadError, match=r"member 'cifar10/train/cat/huge\.jpg' declares 1,048,577 bytes") as info:
        data.load_cifar10(file)
    assert str(file) in str(info.value) and "MAX_ARCHIVE_MEMBER_BYTES" in str(info.value)
    assert max(read_sizes) <= data.MAX_ARCHIVE_MEMBER_BYTES  # never opened


class _EndlessServer(_LocalServer):
    """A body that never ends (no Content-Length), or announces ``announce`` bytes."""

    def __init__(self, *, announce: int | None = None) -> None:
        super().__init__()
        self.announce = announce
        self.sent = 0

    def respond(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        if self.announce is not None:
            handler.send_header("Content-Length", str(self.announce))
        handler.end_headers()
        try:
            while self.sent < 64 << 20:  # a guard for the old code: 64 MiB, then stop
                handler.wfile.write(bytes(1 << 16))
                self.sent += 1 << 16
        except OSError:
            pass  # the client hung up


def test_download_stops_at_the_known_size_and_keeps_nothing(offline_home, monkeypatch):
    monkeypatch.setattr(_sources, "MNIST_SIZE", 1 << 20)  # the official file's size, made small for the test
    with _EndlessServer() as server:
        monkeypatch.setattr(_sources, "MNIST_URL", server.url)
        _, error = _in_thread(data.load_mnist)
    assert isinstance(error, DataNotFoundError), error
    assert "sent more than the 1048576 bytes of the file" in str(error)
    assert server.sent < 16 << 20  # stopped near the size, not at the server's end
    assert not offline_home.exists() or not list(offline_home.iterdir())


def test_download_announcing_more_than_the_known_size_is_refused(offline_home, monkeypatch):
    with _EndlessServer(announce=10**12) as server:
        monkeypatch.setattr(_sources, "CIFAR_PY_URL", server.url)
        _, error = _in_thread(data.load_cifar10)
    assert isinstance(error, DataNotFoundError), error
    assert f"announces 1000000000000 bytes, more than the {_sources.CIFAR_PY_SIZE} bytes" in str(error)
    assert not offline_home.exists() or not list(offline_home.iterdir())
