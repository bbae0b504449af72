"""Export to SavedModel / ONNX / LiteRT with a parity check (issue #23)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from ship_models import colour_images, tiny_model

from visionkit import _export_runtime
from visionkit import calibration as C
from visionkit import export as E
from visionkit.errors import InvalidArgumentError, VisionkitError


@pytest.fixture(scope="module")
def model():
    return C.with_temperature(tiny_model("softmax", steps=40), 1.5)


@pytest.fixture(scope="module")
def images():
    return colour_images(40, seed=7)[0]


def _onnx():
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tf2onnx")


def test_savedmodel_export_carries_everything_and_passes_parity(model, images, tmp_path):
    result = E.export(model, tmp_path / "sm", parity_data=images, verbose=False)
    folder = tmp_path / "sm"
    assert (folder / "saved_model" / "saved_model.pb").is_file()
    assert (folder / "labels.txt").read_text().split() == ["red", "green", "blue"]
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["temperature"] == 1.5 and meta["class_names"] == ["red", "green", "blue"]
    assert meta["versions"]["tensorflow"] and meta["parity"]["passed"]
    parity = json.loads((folder / "parity.json").read_text())
    assert parity["images"] == 40 and parity["max_abs_diff"] <= 1e-4 and parity["top1_agreement"] == 1.0
    assert result.parity == parity
    # any size of uint8 image in, the model's probabilities out
    loaded = E.load_exported(folder)
    assert loaded.predict(np.repeat(np.repeat(images[:2], 2, axis=1), 3, axis=2)).shape == (2, 3)
    probs = loaded.predict(images[:4])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)


@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_float_formats_pass_parity(model, images, tmp_path, fmt):
    if fmt == "onnx":
        _onnx()
    result = E.export(model, tmp_path / fmt, format=fmt, parity_data=images, verbose=False)
    assert result.parity["passed"] and result.parity["max_abs_diff"] <= 1e-4
    assert result.parity["top1_agreement"] == 1.0
    assert E.load_exported(result.file).class_names == ["red", "green", "blue"]


def test_litert_int8_reports_agreement(model, images, tmp_path):
    result = E.export(model, tmp_path / "q", format="litert", quantize="int8", representative_data=images,
                      verbose=False)
    assert result.metadata["quantize"] == "int8"
    assert result.parity["top1_agreement"] >= 0.99
    assert result.parity["max_abs_diff"] < 0.1


def test_parity_fails_on_a_tampered_onnx_file(model, images, tmp_path):
    _onnx()
    import onnx
    from onnx import numpy_helper

    result = E.export(model, tmp_path / "o", format="onnx", parity_data=images, verbose=False)
    proto = onnx.load(str(result.file))
    for init in proto.graph.initializer:  # scale the weights of the head
        arr = numpy_helper.to_array(init)
        if arr.ndim == 2 and arr.shape[-1] == 3:
            init.CopyFrom(numpy_helper.from_array((arr * -3.0).astype(arr.dtype), init.name))
    onnx.save(proto, str(result.file))
    with pytest.raises(E.ParityError, match="does not reproduce"):
        E.check_parity(model, tmp_path / "o", images)


def test_parity_fails_on_a_swapped_savedmodel(model, images, tmp_path):
    E.export(model, tmp_path / "a", parity_data=images, verbose=False)
    other = tiny_model("softmax", steps=4, seed=9)
    E.export(other, tmp_path / "b", parity_data=images, verbose=False)
    import shutil

    shutil.rmtree(tmp_path / "a" / "saved_model")
    shutil.copytree(tmp_path / "b" / "saved_model", tmp_path / "a" / "saved_model")
    numbers = E.check_parity(model, tmp_path / "a", images, raise_on_failure=False)
    assert not numbers["passed"]
    with pytest.raises(VisionkitError):
        E.check_parity(model, tmp_path / "a", images)


def test_export_raises_when_the_written_file_is_altered(model, images, tmp_path, monkeypatch):
    real_write = _export_runtime.write
    other = tiny_model("softmax", steps=4, seed=11)

    def altered(serving, target, fmt, **kwargs):  # writes another model's graph instead
        from visionkit._export_serving import serving_model

        real_write(serving_model(other)[0], target, fmt, **kwargs)

    monkeypatch.setattr(_export_runtime, "write", altered)
    with pytest.raises(E.ParityError):
        E.export(model, tmp_path / "x", parity_data=images, verbose=False)
    assert json.loads((tmp_path / "x" / "parity.json").read_text())["passed"] is False


def test_mixed_precision_model_is_cast_to_float32(images, tmp_path):
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        inputs = keras.Input((16, 16, 3))
        x = keras.layers.Rescaling(1 / 255)(inputs)
        x = keras.layers.Conv2D(4, 3, activation="relu")(x)
        x = keras.layers.GlobalAveragePooling2D()(x)
        outputs = keras.layers.Dense(3, activation="softmax", dtype="float32")(x)
        mixed = keras.Model(inputs, outputs)
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    result = E.export(mixed, tmp_path / "m", parity_data=images, verbose=False)
    assert result.metadata["cast_to_float32"] is True
    assert result.parity["passed"]
    assert result.parity["vs_mixed_precision_model"]["max_abs_diff"] < 0.05
    assert mixed.layers[2].compute_dtype == "float16"  # the caller's model is untouched


def test_export_argument_checks(model, tmp_path):
    with pytest.raises(InvalidArgumentError, match="format"):
        E.export(model, tmp_path / "z", format="coreml")
    with pytest.raises(InvalidArgumentError, match="quantize"):
        E.export(model, tmp_path / "z", format="onnx", quantize="int8")
    with pytest.raises(InvalidArgumentError, match="representative_data"):
        E.export(model, tmp_path / "z", format="litert", quantize="int8")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(InvalidArgumentError, match="not an export"):
        E.export(model, tmp_path / "full", verbose=False)


def test_missing_converter_names_the_extra(monkeypatch):
    import sys

    from visionkit.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"visionkit\[export\]"):
        _export_runtime.require("tf2onnx", "tf2onnx", "onnx")


def test_gelu_model_exports_to_onnx(images, tmp_path):
    """TensorFlow's exact GELU uses Erfc, which tf2onnx cannot convert: it is written with erf."""
    _onnx()
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="gelu")(x)
    x = keras.layers.Activation("gelu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    result = E.export(model, tmp_path / "g", format="onnx", parity_data=images, verbose=False)
    assert result.parity["passed"] and result.parity["max_abs_diff"] <= 1e-4


def test_unloadable_export_is_an_export_error(model, images, tmp_path):
    result = E.export(model, tmp_path / "l", format="litert", parity_data=images, verbose=False)
    result.file.write_bytes(b"not a flatbuffer")
    with pytest.raises(E.ExportError, match="cannot load"):
        E.check_parity(model, tmp_path / "l", images)


def test_normalization_model_exports_to_onnx(images, tmp_path):
    """Keras' ONNX export turns a Normalization's constant mean/variance into missing inputs: held as weights."""
    _onnx()
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Normalization(mean=[120.0, 110.0, 100.0], variance=[3600.0, 3500.0, 3400.0])(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    result = E.export(model, tmp_path / "n", format="onnx", parity_data=images, verbose=False)
    assert result.parity["passed"] and result.parity["max_abs_diff"] <= 1e-4


@pytest.mark.parametrize("given", [True, False])
def test_mixed_precision_normalization_exports_to_onnx_as_the_other_formats(images, tmp_path, given,
                                                                            bfloat16_kernels):
    """A mixed_bfloat16 Normalization keeps its mean in bfloat16 (125.307 reads 125.5); every format uses float32."""
    from visionkit import _export_serving as S

    _onnx()
    mean, variance = [125.307, 122.961, 113.8575], [3967.110225, 3855.47855625, 4449.957264]  # CIFAR-10's
    keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
    try:
        inputs = keras.Input((16, 16, 3))
        norm = keras.layers.Normalization(**({"mean": mean, "variance": variance} if given else {}))
        if not given:
            norm.adapt(np.random.default_rng(0).normal(mean, np.sqrt(variance), (64, 16, 16, 3)).astype("float32"))
        x = keras.layers.Conv2D(8, 3, kernel_initializer=keras.initializers.RandomNormal(0, 3.0, seed=1))(norm(inputs))
        x = keras.layers.GlobalAveragePooling2D()(x)
        model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", dtype="float32")(x))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
    frozen, cast = S.float32_model(model, onnx=True), S.float32_model(model)
    x = images.astype("float32")
    np.testing.assert_allclose(frozen.predict(x, verbose=0), cast.predict(x, verbose=0), rtol=1e-4, atol=1e-5)
    # and both compute the mixed model's function (an adapted mean once came out as zeros)
    np.testing.assert_allclose(cast.predict(x, verbose=0), model.predict(x, verbose=0), atol=0.05)
    result = E.export(model, tmp_path / "n", format="onnx", parity_data=images, verbose=False)
    assert result.parity["passed"] and result.parity["max_abs_diff"] <= 1e-4


@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_fast_recipe_network_exports_with_its_cpu_layers(images, tmp_path, fmt):
    """The fast recipe's FusedBatchNorm, Gelu and SmallMapConv2D layers export as the Keras layers they compute."""
    from visionkit import convnets

    if fmt == "onnx":
        _onnx()
    x = np.asarray(keras.ops.image.resize(np.asarray(images, np.float32), (32, 32)))
    model = convnets.fast_cifar10_convnet(whitening_images=x, widths=(8, 8, 8), seed=0)
    model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    model.fit(x, np.eye(10, dtype="float32")[np.arange(len(x)) % 10], epochs=1, batch_size=8, verbose=0)  # moving stats
    result = E.export(model, tmp_path / fmt, format=fmt, parity_data=images, verbose=False)
    assert result.parity["passed"] and result.parity["max_abs_diff"] <= 1e-4
