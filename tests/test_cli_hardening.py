"""The command line under bad conditions: one exit-code rule, outputs never lost, quiet logs, unsafe loading."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import numpy as np
import pytest

from visionkit import training
from visionkit.cli import main

# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny saved model, an image, a folder, and paths that do not exist."""
    import keras

    from visionkit.data import save_image

    root = tmp_path_factory.mktemp("cli-inputs")
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(2, 3, name="c")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inputs, keras.layers.Dense(2)(x)).save(root / "m.keras")
    save_image(root / "img.png", np.random.default_rng(0).integers(0, 255, (16, 16, 3)).astype("uint8"))
    (root / "dir").mkdir()
    return {
        "MODEL": str(root / "m.keras"), "IMG": str(root / "img.png"), "DIR": str(root / "dir"),
        "OUT": str(root / "out"), "OUTPNG": str(root / "out.png"),
        "NOMODEL": str(root / "missing-model.keras"), "NOIMG": str(root / "missing-image.png"),
        "NODIR": str(root / "missing-folder"), "NODATA": str(root / "missing-data.npz"),
        "NOWEIGHTS": str(root / "missing-weights.h5"),
    }


def _argv(template: str, files: dict[str, str]) -> list[str]:
    return [files.get(word, word) for word in template.split()]


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def no_training(monkeypatch):
    """Make every training function fail loudly: the checks must come before any training."""
    from visionkit import convnets, transfer

    def refuse(*args, **kwargs):
        raise AssertionError("trained although an argument was bad")

    for module, name in ((convnets, "train_mnist"), (convnets, "train_cifar10"),
                         (convnets, "train_image_folder"), (transfer, "train_transfer")):
        monkeypatch.setattr(module, name, refuse)


# ----------------------------------------------------------------------------- exit codes

MISSING = [
    ("gradcam NOMODEL IMG -o OUT", "NOMODEL"),
    ("gradcam MODEL NOIMG -o OUT", "NOIMG"),
    ("activations NOMODEL IMG -o OUT", "NOMODEL"),
    ("activations MODEL NOIMG -o OUT", "NOIMG"),
    ("filters NOMODEL c -o OUTPNG -q", "NOMODEL"),
    ("style NOIMG IMG -o OUTPNG --weights none -q", "NOIMG"),
    ("style IMG NOIMG -o OUTPNG --weights none -q", "NOIMG"),
    ("style IMG IMG -o OUTPNG --weights NOWEIGHTS -q", "NOWEIGHTS"),
    ("dream NOIMG -o OUTPNG --weights none -q", "NOIMG"),
    ("dream IMG -o OUTPNG --weights NOWEIGHTS -q", "NOWEIGHTS"),
    ("mnist --data NODATA -o OUT -q", "NODATA"),
    ("cifar10 --data NODIR -o OUT -q", "NODIR"),
    ("train NODIR -o OUT -q", "NODIR"),
    ("train --sample --test-dir NODIR -o OUT -q", "NODIR"),
    ("train DIR --test-dir NODIR -o OUT -q", "NODIR"),
    ("transfer NODIR --weights none -o OUT -q", "NODIR"),
    ("transfer DIR --test-dir NODIR --weights none -o OUT -q", "NODIR"),
    ("transfer DIR --weights NOWEIGHTS -o OUT -q", "NOWEIGHTS"),
]


@pytest.mark.parametrize(("template", "missing"), MISSING, ids=[t for t, _ in MISSING])
def test_missing_input_exits_1_naming_it(template, missing, files, no_training, capsys):
    assert main(_argv(template, files)) == 1
    line = _one_line(capsys.readouterr().err)
    assert files[missing] in line and line.startswith(f"visionkit {template.split()[0]}: error:")


def test_library_argument_error_exits_1(files, capsys):
    # an InvalidArgumentError raised by the library is not a usage error: 1, one line
    assert main(["gradcam", files["MODEL"], files["IMG"], "-o", files["OUT"], "--layer", "nope"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert "nope" in line


@pytest.mark.parametrize("template", ["dream IMG -o out.xyz", "style IMG IMG -o out.xyz --weights none", "train",
                                      "mnist --epochs 0", "gradcam MODEL"])
def test_usage_errors_exit_2_with_the_usage_line(template, files, no_training, capsys):
    try:
        code = main(_argv(template, files))  # found after parsing: returned
    except SystemExit as exit_:  # found by argparse: raised
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert f"usage: visionkit {template.split()[0]}" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- output folder

TRAINING = ["mnist --sample", "cifar10 --sample", "train --sample", "transfer DIR --weights none", "demo"]


@pytest.mark.parametrize("template", TRAINING)
@pytest.mark.parametrize("where", ["file", "below-a-file"])
def test_output_in_the_way_fails_before_training(template, where, files, tmp_path, no_training, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    out = blocker if where == "file" else blocker / "sub"
    assert main([*_argv(template, files), "-o", str(out), "-q"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert str(out) in line and "--output" in line and "nothing was trained" in line
    assert blocker.read_text() == "not a folder"


@pytest.fixture(scope="module")
def result():
    from visionkit.convnets import train_mnist

    return train_mnist(sample=True, limit=64, epochs=1, batch_size=32, progress=False, seed=0)


def _disk_full_at(monkeypatch, *folders):
    """Make TrainResult.save fail with ENOSPC for ``folders`` (a full disk)."""
    save = training.TrainResult.save
    full = {os.fspath(f) for f in folders}

    def fake_save(self, directory, **kwargs):
        if os.fspath(directory) in full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return save(self, directory, **kwargs)

    monkeypatch.setattr(training.TrainResult, "save", fake_save)


def test_disk_full_saves_to_the_checkpoint_folder(tmp_path, monkeypatch, capsys):
    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    _disk_full_at(monkeypatch, out)
    argv = ["mnist", "--sample", "--limit", "64", "--epochs", "1", "-o", str(out), "--checkpoint-dir", str(ckpt), "-q"]
    assert main(argv) == 1
    line = _one_line(capsys.readouterr().err)
    assert str(out) in line and "No space left" in line and str(ckpt / "model.keras") in line
    assert training.load_model(ckpt / "model.keras").count_params() > 0
    assert (ckpt / "metrics.json").is_file() and (ckpt / "state.json").is_file()


def test_disk_full_without_checkpoints_saves_to_a_temporary_folder(result, tmp_path, monkeypatch):
    import tempfile

    from visionkit._cli._recipe import OutputWriteError, write_outputs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    _disk_full_at(monkeypatch, tmp_path / "out")
    with pytest.raises(OutputWriteError) as info:
        write_outputs(str(tmp_path / "out"), result)
    (fallback,) = tmp_path.glob("visionkit-output-*")
    assert str(fallback / "model.keras") in str(info.value)
    assert training.load_model(fallback / "model.keras").count_params() == result.model.count_params()


def test_disk_full_everywhere_says_the_model_is_lost(result, tmp_path, monkeypatch):
    from visionkit._cli._recipe import OutputWriteError, write_outputs

    def full(self, directory, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(training.TrainResult, "save", full)
    with pytest.raises(OutputWriteError, match="is lost .the checkpoints in"):
        write_outputs(str(tmp_path / "out"), result, checkpoint_dir=str(tmp_path / "ckpt"))


# ----------------------------------------------------------------------------- TensorFlow's logs

_NOISE = ("oneDNN", "cuInit", "cuda", "absl::InitializeLog", "cpu_feature_guard")


def _stderr(args, repo_root):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = str(repo_root)
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=repo_root, timeout=300)
    return res.returncode, res.stderr


def test_tensorflow_logs_are_silent_unless_verbose(repo_root, tmp_path):
    missing = str(tmp_path / "missing.keras")
    rc, err = _stderr(["-m", "visionkit", "filters", missing, "x"], repo_root)
    assert rc == 1
    assert err.strip() == f"visionkit filters: error: MODEL: no such file: '{missing}'"
    rc, err = _stderr(["-m", "visionkit", "info"], repo_root)
    assert rc == 0 and err == ""
    # --verbose shows what a bare import of TensorFlow prints on this machine (if anything)
    _, bare = _stderr(["-c", "import tensorflow as tf; tf.config.list_physical_devices()"], repo_root)
    rc, err = _stderr(["-m", "visionkit", "--verbose", "info"], repo_root)
    assert rc == 0
    for word in _NOISE:
        assert (word in err) == (word in bare), word


# ----------------------------------------------------------------------------- unsafe loading


def test_unsafe_load(tmp_path, files, capsys):
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(inputs)
    x = keras.layers.Conv2D(2, 3, name="c")(x)
    keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x)).save(tmp_path / "lambda.keras")
    argv = ["activations", str(tmp_path / "lambda.keras"), files["IMG"], "-o", str(tmp_path / "acts")]
    assert main(argv) == 1
    line = _one_line(capsys.readouterr().err)
    assert "--unsafe-load" in line and "lambda.keras" in line and "safe_mode" not in line
    assert main([*argv, "--unsafe-load"]) == 0
    captured = capsys.readouterr()
    assert "warning: --unsafe-load" in _one_line(captured.err)
    assert sorted(p.name for p in (tmp_path / "acts").iterdir()) == ["00_c.png"]
