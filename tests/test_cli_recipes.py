"""The training sub-commands: demo, mnist, cifar10, train."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from visionkit.cli import main


def _outputs(folder):
    assert {p.name for p in folder.iterdir()} >= {"model.keras", "curves.png", "metrics.json"}
    return json.loads((folder / "metrics.json").read_text())


def test_demo_writes_three_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--epochs", "1", "-q"]) == 0
    metrics = _outputs(out)
    assert 0 <= metrics["test"]["accuracy"] <= 1 and metrics["epochs"] == 1
    printed = capsys.readouterr().out
    assert "test: accuracy" in printed and str(out / "curves.png") in printed
    import keras

    model = keras.models.load_model(out / "model.keras")
    assert model.count_params() == 93_322
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mnist_and_train_sample(tmp_path):
    out = tmp_path / "mnist"
    ckpt = tmp_path / "ckpt"
    argv = ["mnist", "--sample", "--epochs", "1", "--limit", "600", "--batch-size", "32", "-o", str(out),
            "--checkpoint-dir", str(ckpt), "-q"]
    assert main(argv) == 0
    settings = _outputs(out)["settings"]
    assert settings["batch_size"] == 32 and settings["lr_schedule"] == "constant"
    assert (ckpt / "state.json").is_file()
    out2 = tmp_path / "folder"
    assert main(["train", "--sample", "--image-size", "48", "--epochs", "1", "-o", str(out2), "-q"]) == 0
    written = _outputs(out2)
    assert written["class_names"] == ["cat", "dog"]
    # the class names travel with the saved model
    from visionkit import training

    assert training.class_names(training.load_model(out2 / "model.keras")) == ["cat", "dog"]


def test_cifar10_sample_options(tmp_path):
    out = tmp_path / "cifar"
    argv = ["cifar10", "--recipe", "classic", "--sample", "--epochs", "1", "--limit", "300", "--translation", "0", "--rotation", "25",
            "-o", str(out), "-q"]
    assert main(argv) == 0
    settings = _outputs(out)["settings"]
    assert settings["translation"] == 0 and settings["rotation"] == 25 and settings["lr_schedule"] == "cosine"
    import keras

    aug = keras.models.load_model(out / "model.keras").get_layer("augmentation")
    assert [type(layer).__name__ for layer in aug.layers] == ["RandomFlip", "RandomRotation"]


@pytest.mark.parametrize(
    "argv",
    [
        ["mnist", "--epochs", "0"],
        ["mnist", "--variant", "lenet"],
        ["cifar10", "--batch-size", "x"],
        ["cifar10", "--strategy", "warp"],
        ["cifar10", "--recipe", "classic", "--translation", "2"],
        ["cifar10", "--recipe", "classic", "--rotation", "-5"],
        ["mnist", "--lr-schedule", "step"],
        ["train", "--image-size", "20"],
        ["demo", "--epochs", "-1"],
    ],
)
def test_bad_arguments_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert "error" in capsys.readouterr().err


@pytest.mark.parametrize("extra", [[], ["DIR", "--sample"]])
def test_train_needs_dir_or_sample(tmp_path, capsys, extra):
    argv = ["train", "-o", str(tmp_path)] + [str(tmp_path) if a == "DIR" else a for a in extra]
    with pytest.raises(SystemExit) as info:  # a usage error, reported by argparse with the usage line
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: visionkit train" in err and "DIR or --sample" in err


def test_bad_data_path_exit_1(tmp_path, capsys):
    assert main(["mnist", "--data", str(tmp_path / "missing.npz"), "-o", str(tmp_path), "-q"]) == 1
    assert "missing.npz" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["demo", "mnist", "cifar10", "train"])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "--output" in text and "--epochs" in text
    if command != "demo":
        for option in ("--batch-size", "--checkpoint-dir", "--sample", "--strategy"):
            assert option in text


def test_parser_does_not_import_tensorflow(repo_root):
    code = "import sys, visionkit.cli as c; c.build_parser(); print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
