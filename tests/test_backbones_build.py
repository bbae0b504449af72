from __future__ import annotations

import numpy as np
import pytest

from visionkit import _backbones
from visionkit.errors import InvalidArgumentError, WeightsUnavailableError


def test_offline_imagenet_error_names_cache_file(monkeypatch, tmp_path):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def fail(*args, **kwargs):
        raise Exception(
            "URL fetch failure on https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
            "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5: None -- [Errno -2] Name or service not known"
        )

    monkeypatch.setattr(keras.applications.vgg16, "VGG16", fail)
    with pytest.raises(WeightsUnavailableError) as info:
        _backbones.application("vgg16", weights="imagenet", input_shape=(32, 32, 3))
    msg = str(info.value)
    assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg
    assert str(tmp_path / "models") in msg
    assert "weights=None" in msg


def test_weights_path_roundtrip(tmp_path):
    model = _backbones.application("vgg16", weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "base.weights.h5"
    model.save_weights(path)
    again = _backbones.application("vgg16", weights=path, input_shape=(32, 32, 3))
    x = np.random.default_rng(0).uniform(0, 255, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(model(x), again(x), atol=1e-5)


def test_weights_errors(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="missing.h5"):
        _backbones.application("vgg16", weights=tmp_path / "missing.h5")
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(WeightsUnavailableError, match="bad.weights.h5"):
        _backbones.application("vgg16", weights=bad, input_shape=(32, 32, 3))
    with pytest.raises(InvalidArgumentError, match="name"):
        _backbones.application("vgg17", weights=None)
    with pytest.raises(InvalidArgumentError, match="weights"):
        _backbones.application("vgg16", weights=3)
