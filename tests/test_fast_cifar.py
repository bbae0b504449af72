"""The fast CIFAR-10 recipe (airbench94 the Keras way): its parts, and the recipe on the sample."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from visionkit import _fast_cifar as F
from visionkit import convnets, data, training
from visionkit.errors import InvalidArgumentError, UnexpectedArgumentError


@pytest.fixture(scope="module")
def cifar_sample():
    return data.load_cifar10(sample=True)


@pytest.fixture(scope="module")
def trained():
    """Two short epochs of the recipe on part of the bundled sample."""
    return convnets.train_cifar10_fast(sample=True, epochs=2, limit=384, batch_size=128, seed=0, progress=False)


def test_whitening_layer_whitens_training_patches(cifar_sample):
    (x, _), _ = cifar_sample
    images = (x[:300].astype(np.float32) / 255.0 - np.float32(F.CIFAR_MEAN)) / np.float32(F.CIFAR_STD)
    layer = F.PatchWhitening(2, epsilon=1e-9)
    layer.adapt(images)
    out = np.asarray(layer(images))
    assert out.shape == (300, 31, 31, 24)
    first = out[..., :12].reshape(-1, 12).astype(np.float64)
    cov = first.T @ first / len(first)
    np.testing.assert_allclose(cov, np.eye(12), atol=2e-3)
    # the negated half: its own conv channels, so float32 rounding differs by CPU (3.8e-5 seen on AVX2)
    np.testing.assert_allclose(out[..., 12:], -out[..., :12], rtol=1e-4, atol=1e-4 * np.abs(out).max())
    # the recipe's epsilon shrinks only the smallest directions: still uncorrelated, variances <= 1
    layer = F.PatchWhitening(2)
    layer.adapt(images)
    first = np.asarray(layer(images))[..., :12].reshape(-1, 12).astype(np.float64)
    cov = first.T @ first / len(first)
    assert np.abs(cov - np.diag(np.diag(cov))).max() < 2e-3
    assert np.all(np.diag(cov) <= 1.0 + 1e-3) and np.diag(cov)[0] > 0.99


def _flipped(batches, originals):
    """For each image index (the labels), whether the pipeline showed it mirrored."""
    seen = {}
    for xb, idx in batches:
        for img, i in zip(np.asarray(xb), np.asarray(idx)):
            if np.array_equal(img, originals[i]):
                seen[int(i)] = False
            else:
                assert np.array_equal(img, originals[i][:, ::-1]), "neither the image nor its mirror"
                seen[int(i)] = True
    return seen


def test_alternating_flip_flips_each_image_once_every_two_epochs():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (64, 6, 6, 3), dtype=np.uint8)
    epoch = tf.Variable(0, dtype=tf.int64)
    ds, steps = F.train_dataset(x, np.arange(64), batch_size=16, seed=3, epoch=epoch, translate=0, num_classes=None)
    assert steps == 4
    flips = []
    for e in range(4):
        epoch.assign(e)
        seen = _flipped(ds, x.astype(np.float32))
        assert sorted(seen) == list(range(64))  # every image once per epoch
        flips.append(np.array([seen[i] for i in range(64)]))
    assert 16 < flips[0].sum() < 48  # a random half first
    for e in range(3):
        assert np.all(flips[e] != flips[e + 1])  # each image flipped in exactly one of two epochs


def test_pipeline_is_seeded_and_translates_within_range():
    import tensorflow as tf

    x = np.random.default_rng(1).integers(0, 256, (32, 8, 8, 3), dtype=np.uint8)
    epoch = tf.Variable(0, dtype=tf.int64)

    def batches(seed):
        ds, _ = F.train_dataset(x, np.zeros(32, int), batch_size=8, seed=seed, epoch=epoch, translate=2)
        return [np.asarray(b[0]) for b in ds]

    a, b, c = batches(5), batches(5), batches(6)
    ds, _ = F.train_dataset(x, np.zeros(32, int), batch_size=8, seed=5, epoch=epoch)
    assert ds.options().autotune.enabled is False  # the autotuner stalled whole epochs on 2 cores
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))
    epoch.assign(1)
    assert not all(np.array_equal(u, v) for u, v in zip(a, batches(5)))  # a new epoch, new shifts


def test_tta_is_the_weighted_mean_of_the_explicit_views():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(5)])
    x = np.random.default_rng(0).integers(0, 256, (7, 8, 8, 3)).astype(np.float32)

    def out(v):
        return model.predict(v, verbose=0)

    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    up_left, down_right = padded[:, :8, :8], padded[:, 2:, 2:]
    mirror = 0.5 * out(x) + 0.5 * out(x[:, :, ::-1])
    shifted = [0.5 * out(v) + 0.5 * out(v[:, :, ::-1]) for v in (up_left, down_right)]
    tol = {"rtol": 1e-4, "atol": 1e-4 * np.abs(out(x)).max()}  # other batches: float32 sums in another order
    np.testing.assert_allclose(convnets.predict_tta(model, x, level=0), out(x), **tol)
    np.testing.assert_allclose(convnets.predict_tta(model, x, level=1, batch_size=3), mirror, **tol)
    np.testing.assert_allclose(convnets.predict_tta(model, x), 0.5 * mirror + 0.25 * (shifted[0] + shifted[1]), **tol)
    with pytest.raises(InvalidArgumentError, match="level"):
        convnets.predict_tta(model, x, level=3)


def test_model_architecture_and_checks(cifar_sample):
    (x, _), _ = cifar_sample
    model = convnets.fast_cifar10_convnet(whitening_images=x[:100], seed=0)
    assert model.count_params() == 1_973_944
    assert model.get_layer("whiten").bias.trainable and not model.get_layer("whiten").kernel.trainable
    bn = model.get_layer("block1_bn1")
    assert (bn.momentum, bn.epsilon, bn.scale) == (0.6, 1e-12, False)
    conv = np.asarray(model.get_layer("block2_conv1").kernel)  # identities on the first 64 filters
    np.testing.assert_array_equal(conv[1, 1, :, :64], np.eye(64))
    assert model.layers[-1].dtype_policy.compute_dtype == "float32"
    same = convnets.fast_cifar10_convnet(whitening_images=x[:100], seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), same.get_weights()))
    plain = convnets.fast_cifar10_convnet(whitening=False, widths=(8, 16, 16))
    assert isinstance(plain.get_layer("whiten"), keras.layers.Conv2D) and plain.get_layer("whiten").trainable
    for bad in ((64, 256), (64, 0, 3), "64"):
        with pytest.raises(InvalidArgumentError, match="widths"):
            convnets.fast_cifar10_convnet(widths=bad)
    with pytest.raises(InvalidArgumentError, match="whitening_images"):
        convnets.fast_cifar10_convnet(whitening_images=np.zeros((4, 28, 28, 3)))


# bfloat16 keeps 8 significant bits; float32 differs only in the reduction order
_CPU_PATH_TOLERANCE = {"float32": 1e-5, "mixed_bfloat16": 2e-2}


@pytest.mark.parametrize("policy", sorted(_CPU_PATH_TOLERANCE))
def test_fused_batchnorm_trains_as_the_keras_layer(policy):
    import tensorflow as tf

    tol = _CPU_PATH_TOLERANCE[policy]
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(1.0, 3.0, (8, 6, 6, 5)).astype("float32"))
    weights = tf.constant(rng.normal(size=(8, 6, 6, 5)).astype("float32"))  # a loss whose input gradient is not ~0
    ours = F.FusedBatchNorm(momentum=0.6, epsilon=1e-12, scale=False, dtype=policy)
    theirs = keras.layers.BatchNormalization(momentum=0.6, epsilon=1e-12, scale=False, dtype=policy)
    for layer in (ours, theirs):
        layer.build(x.shape)
        layer.beta.assign(np.linspace(-1, 1, 5).astype("float32"))
    outputs, grads = [], []
    for layer in (ours, theirs):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        outputs.append(np.asarray(tf.cast(y, tf.float32)))
        grads.append([np.asarray(g) for g in tape.gradient(loss, [x, layer.beta])])
    assert outputs[0].dtype == np.float32 and ours.compute_dtype == theirs.compute_dtype
    np.testing.assert_allclose(outputs[0], outputs[1], rtol=tol, atol=tol)
    for a, b in zip(grads[0], grads[1]):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * np.abs(b).max())
    for name in ("moving_mean", "moving_variance"):  # Keras' momentum and biased variance
        np.testing.assert_allclose(np.asarray(getattr(ours, name)), np.asarray(getattr(theirs, name)), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(tf.cast(ours(x), tf.float32)), np.asarray(tf.cast(theirs(x), tf.float32)),
                               rtol=tol, atol=tol)  # inference: the Keras path, on statistics equal to rounding


def test_cpu_training_graph_holds_the_fused_kernels():
    import tensorflow as tf

    model = convnets.fast_cifar10_convnet(widths=(8, 8, 8), seed=0)
    assert isinstance(model.get_layer("block1_bn1"), keras.layers.BatchNormalization)
    assert isinstance(model.get_layer("block1_gelu1"), keras.layers.Activation)
    assert isinstance(model.get_layer("block3_conv2"), keras.layers.Conv2D)

    def ops(training):
        fn = tf.function(lambda v: model(v, training=training))
        graph = fn.get_concrete_function(tf.TensorSpec((2, 32, 32, 3), tf.float32)).graph
        return list(graph.get_operations())

    def compiled(op):
        try:
            return bool(op.get_attr("_XlaMustCompile"))
        except ValueError:
            return False

    train, infer = ops(True), ops(False)
    assert "FusedBatchNormV3" in {op.type for op in train} and "FusedBatchNormV3" not in {op.type for op in infer}
    assert sum(map(compiled, train)) == 7 and not any(map(compiled, infer))  # one XLA GELU per activation


@pytest.mark.parametrize("units", [True, False])
def test_fused_batchnorm_runs_bfloat16_only_where_the_cpu_has_the_units(monkeypatch, units):
    """oneDNN refuses a bfloat16 FusedBatchNormV3 without bfloat16 units: the kernel then runs in float32."""
    import tensorflow as tf

    layer = F.FusedBatchNorm(epsilon=1e-12, scale=False, dtype="mixed_bfloat16")
    with monkeypatch.context() as patch:  # the graph as built for a CPU with (or without) the units
        patch.setattr(F, "_bfloat16_units", lambda: units)
        graph = tf.function(lambda v: layer(v, training=True)).get_concrete_function(
            tf.TensorSpec((2, 4, 4, 3), tf.bfloat16)).graph
    kernels = [op for op in graph.get_operations() if op.type == "FusedBatchNormV3"]
    assert [op.get_attr("T") for op in kernels] == [tf.bfloat16 if units else tf.float32]
    # run as built for this CPU: a forced bfloat16 kernel is what oneDNN refuses without the units
    assert tf.function(lambda v: layer(v, training=True))(tf.ones((2, 4, 4, 3), tf.bfloat16)).dtype == tf.bfloat16


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (3, 3), (5, 7), (7, 7)])
def test_small_map_conv_gradients_are_the_convolutions(request, dtype, hw):
    """Both kernel-gradient forms (transposed convolution, nine matmuls) give conv2d's gradients."""
    import tensorflow as tf

    if dtype == "bfloat16":
        request.getfixturevalue("bfloat16_kernels")  # skips under an emulated AVX2 cap only

    tol = {"float32": 1e-5, "bfloat16": 2e-2}[dtype]  # float32: reduction order; bfloat16: 8 significant bits
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(4, *hw, 6)).astype("float32"))
    kernel = tf.constant(rng.normal(size=(3, 3, 6, 5)).astype("float32"))
    weights = tf.constant(rng.normal(size=(4, *hw, 5)).astype("float32"))
    results = []
    for conv in (F._conv3x3_small_map, lambda a, k: tf.nn.conv2d(a, k, 1, "SAME")):
        xs, ks = tf.cast(x, dtype), tf.cast(kernel, dtype)
        with tf.GradientTape() as tape:
            tape.watch([xs, ks])
            y = conv(xs, ks)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) * weights)
        assert y.dtype == dtype
        results.append([np.asarray(tf.cast(t, tf.float32)) for t in (y, *tape.gradient(loss, [xs, ks]))])
    for ours, theirs in zip(*results):  # output, input gradient, kernel gradient
        np.testing.assert_allclose(ours, theirs, rtol=tol, atol=tol * np.abs(theirs).max())


@pytest.mark.parametrize(("hw", "policy", "units", "training", "kernel_grad"), [
    (7, "mixed_bfloat16", True, True, "MatMul"),
    (3, "mixed_bfloat16", True, True, "Conv2D"),
    (15, "mixed_bfloat16", True, True, "Conv2DBackpropFilter"),  # oneDNN's kernel is ahead there
    (7, "mixed_bfloat16", False, True, "Conv2DBackpropFilter"),  # no bfloat16 units
    (7, "float32", True, True, "Conv2DBackpropFilter"),
    (7, "mixed_bfloat16", True, False, "Conv2DBackpropFilter"),  # inference: Keras' layer
])
def test_small_map_conv_takes_its_kernel_gradient_only_where_it_applies(request, monkeypatch, hw, policy, units,
                                                                        training, kernel_grad):
    import tensorflow as tf

    if policy == "mixed_bfloat16":
        request.getfixturevalue("bfloat16_kernels")  # skips under an emulated AVX2 cap only

    layer = F.SmallMapConv2D(4, 3, padding="same", use_bias=False, dtype=policy)
    layer.build((2, hw, hw, 3))

    def step(v):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.cast(layer(v, training=training), tf.float32))
        return tape.gradient(loss, layer.kernel)

    with monkeypatch.context() as patch:  # the graph as built for a CPU with (or without) bfloat16 units
        patch.setattr(F, "_bfloat16_units", lambda: units)
        graph = tf.function(step).get_concrete_function(tf.TensorSpec((2, hw, hw, 3), tf.float32)).graph
    types = [op.type for op in graph.get_operations()]
    assert kernel_grad in types and types.count("Conv2D") == (2 if kernel_grad == "Conv2D" else 1)
    assert ("Conv2DBackpropFilter" in types) == (kernel_grad == "Conv2DBackpropFilter")
    plain = keras.layers.Conv2D.from_config(layer.get_config())  # the same layer to Keras
    plain.build((2, hw, hw, 3))
    plain.set_weights(layer.get_weights())
    x = tf.constant(np.random.default_rng(2).normal(size=(2, hw, hw, 3)).astype("float32"))
    tol = _CPU_PATH_TOLERANCE[policy]
    np.testing.assert_allclose(np.asarray(tf.cast(layer(x, training=True), tf.float32)),
                               np.asarray(tf.cast(plain(x), tf.float32)), rtol=tol, atol=tol)


@pytest.mark.parametrize("policy", sorted(_CPU_PATH_TOLERANCE))
def test_gelu_layer_is_the_exact_gelu_with_its_gradient(policy):
    import tensorflow as tf

    tol = _CPU_PATH_TOLERANCE[policy]
    layer = F.Gelu(dtype=policy)
    x = tf.cast(tf.constant(np.linspace(-6, 6, 241, dtype="float32").reshape(1, 1, -1, 1)), layer.compute_dtype)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        ours = layer(x, training=True)
        theirs = keras.activations.gelu(tf.cast(x, tf.float32), approximate=False)
    assert ours.dtype == x.dtype
    np.testing.assert_allclose(np.asarray(tf.cast(ours, tf.float32)), np.asarray(theirs), rtol=tol, atol=tol)
    grad, expected = (np.asarray(tf.cast(tape.gradient(v, x), tf.float32)) for v in (ours, theirs))
    np.testing.assert_allclose(grad, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(np.asarray(tf.cast(layer(x), tf.float32)), np.asarray(theirs), rtol=tol, atol=tol)
    relu = F.Gelu.from_config({**layer.get_config(), "activation": "relu"})
    np.testing.assert_array_equal(np.asarray(relu(x, training=True)), np.asarray(tf.nn.relu(x)))
    assert layer.get_config()["activation"] == "gelu"  # what the ONNX export rewrites with erf


def test_optimizer_scaling_and_schedule():
    opt = F.make_optimizer(learning_rate=None, schedule=None, total_steps=100, global_batch=1024)
    lr = opt._learning_rate
    assert isinstance(lr, F.TriangleSchedule)
    assert lr.peak == pytest.approx(1.5)  # 11.5 / (1 + 1/0.15) per 1024 examples, Keras' mean loss
    assert opt.coupled_decay == pytest.approx(0.0153 / 11.5) and opt.bias_scaler == 64.0 and opt.nesterov
    rates = [float(lr(s)) for s in (0, 23, 100)]
    assert rates == pytest.approx([0.2 * 1.5, 1.5, 0.07 * 1.5], rel=1e-5)
    half = F.make_optimizer(learning_rate=None, schedule="constant", total_steps=10, global_batch=512)
    assert float(half.learning_rate) == pytest.approx(0.75)



@pytest.mark.parametrize("rate_in_momentum", [False, True])
def test_optimizer_steps_are_pytorch_sgd_on_a_changing_rate(rate_in_momentum):
    # the reference's torch.optim.SGD(nesterov=True): b = m*b + g; w -= rate*(g + m*b), the rate of this
    # step; Keras' form folds each rate into its buffer (v = m*v - rate*g; w += m*v - rate*g)
    import tensorflow as tf

    rates = [0.3, 0.9, 1.5, 1.0, 0.2]
    rng = np.random.default_rng(0)
    grads = rng.normal(size=(len(rates), 2, 3)).astype(np.float32)
    w0 = rng.normal(size=(2, 3)).astype(np.float32)
    beta0 = rng.normal(size=(3,)).astype(np.float32)
    w, beta = keras.Variable(w0, name="kernel"), keras.Variable(beta0, name="beta")
    step = keras.Variable(0.0)
    opt = F.FastSGD(learning_rate=lambda: step.value, momentum=0.85, bias_scaler=64.0, coupled_decay=0.01,
                    rate_in_momentum=rate_in_momentum)
    for i, rate in enumerate(rates):
        step.assign(rate)
        opt.apply([tf.constant(grads[i]), tf.constant(grads[i][0])], [w, beta])

    def expected(x, gs, scale):
        x, b, v = x.astype(np.float64), 0.0, 0.0
        for g, rate in zip(gs, rates):
            g = scale * g + 0.01 * x
            if rate_in_momentum:
                v = 0.85 * v - rate * g
                x = x + 0.85 * v - rate * g
            else:
                b = 0.85 * b + g
                x = x - rate * (g + 0.85 * b)
        return x

    np.testing.assert_allclose(np.asarray(w), expected(w0, grads, 1.0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(beta), expected(beta0, grads[:, 0], 64.0), rtol=1e-5, atol=1e-4)
    config = F.FastSGD(0.1, rate_in_momentum=rate_in_momentum).get_config()  # in the checkpoints' fingerprint
    assert F.FastSGD.from_config(config).rate_in_momentum == config["rate_in_momentum"] == rate_in_momentum

def _tiny_whitening_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Activation("gelu")(F.PatchWhitening(2, name="whiten")(inputs))
    x = keras.layers.BatchNormalization(scale=False, name="bn")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(10)(x))


def _tiny_run(folder, epochs, *, every=2, record=None):
    import tensorflow as tf

    x = np.random.default_rng(0).integers(0, 256, (64, 6, 6, 3), dtype=np.uint8)
    y = np.arange(64) % 10
    model = _tiny_whitening_model()
    counter = F.EpochVariable()
    ds, steps = F.train_dataset(x, y, batch_size=16, seed=0, epoch=counter.variable, translate=1)
    biases = []
    bias_record = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: biases.append(
        np.asarray(model.get_layer("whiten").bias).copy()))
    lookahead = F.Lookahead(steps_per_epoch=steps, total_steps=3 * steps, start_epoch=1, every=every)
    lookahead.track(model)  # before the checkpoint is restored, as the recipe does
    callbacks = [counter, F.WhiteningBiasFreeze(1), lookahead, bias_record, *([record] if record else [])]
    opt = F.make_optimizer(learning_rate=None, schedule=None, total_steps=3 * steps, global_batch=16)
    training.train(model, ds, epochs=epochs, optimizer=opt, callbacks=callbacks, checkpoint_dir=folder,
                   loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.2), progress=False)
    assert tf.executing_eagerly()
    return model, biases


def test_whitening_bias_trains_first_then_freezes_and_resume_is_exact(tmp_path):
    model, biases = _tiny_run(tmp_path / "once", 3)
    assert not np.allclose(biases[0], 0.0)  # trained in epoch 0
    for later in biases[1:]:  # frozen from epoch 1 on (the EMA of a constant moves it by an ulp at most)
        np.testing.assert_allclose(later, biases[0], rtol=1e-6, atol=1e-12)
    assert model.get_layer("whiten").bias.trainable  # put back at the end
    _tiny_run(tmp_path / "twice", 2)
    resumed, _ = _tiny_run(tmp_path / "twice", 3)  # resumes epoch 3: EMA and whitening come back
    for a, b in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


class _EmaRecorder(keras.callbacks.Callback):
    """The live weights and the EMA at each epoch's end, and whether the EMA came from a checkpoint."""

    def __init__(self):
        super().__init__()
        self.live, self.ema, self.restored = {}, {}, None

    def on_train_begin(self, logs=None):
        self.restored = getattr(self.model, F.Lookahead.ATTRIBUTE).restored

    def on_epoch_end(self, epoch, logs=None):
        self.live[epoch] = [np.asarray(w).copy() for w in F.Lookahead.float_weights(self.model)]
        self.ema[epoch] = [np.asarray(e).copy() for e in getattr(self.model, F.Lookahead.ATTRIBUTE).copies]


def test_lookahead_loses_no_steps_at_epoch_ends_and_resumes_exactly(tmp_path):
    # 4 steps an epoch, EMA steps 5 (its start) and 10: epochs 1 and 2 end between EMA steps
    once = _EmaRecorder()
    model, _ = _tiny_run(tmp_path / "once", 3, every=5, record=once)
    for epoch in (1, 2):  # the live weights train on past the EMA (the old callback reset them to it)
        assert any(not np.array_equal(w, e) for w, e in zip(once.live[epoch], once.ema[epoch]))
    assert not hasattr(model, F.Lookahead.ATTRIBUTE)  # detached: the trained model carries no copies
    final = F.Lookahead.float_weights(model)  # the EMA of step 10 is copied in once, at the end
    for w, e in zip(final, once.ema[2]):
        np.testing.assert_array_equal(np.asarray(w), e)
    _tiny_run(tmp_path / "twice", 2, every=5)
    again = _EmaRecorder()
    resumed, _ = _tiny_run(tmp_path / "twice", 3, every=5, record=again)  # killed after epoch 2, resumed
    assert again.restored  # the EMA came back from the checkpoint, beside the live weights
    for a, b in zip(once.live[2] + once.ema[2], again.live[2] + again.ema[2]):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_lookahead_starts_at_step_5_by_default_as_the_reference():
    # airbench94.py updates its lookahead at every 5th step from the start (hlb-cifar10 began at epoch 3)
    model = _tiny_whitening_model()
    model.compile(optimizer="sgd", loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    lookahead = F.Lookahead(steps_per_epoch=6, total_steps=12)
    seen: list[bool] = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(lookahead.started))
    x = np.random.default_rng(0).random((96, 6, 6, 3)).astype("float32")
    y = np.eye(10, dtype="float32")[np.arange(96) % 10]
    model.fit(x, y, batch_size=16, epochs=1, callbacks=[lookahead, record], verbose=0, shuffle=False)
    assert seen == [False] * 4 + [True] * 2


def test_lookahead_state_loads_from_a_checkpoint_without_it(tmp_path):
    model = _tiny_whitening_model()
    model.save_weights(str(tmp_path / "old.weights.h5"))  # as checkpoints were written before the EMA was
    fresh = _tiny_whitening_model()
    holder = F.Lookahead.track(fresh)
    assert F.Lookahead.track(fresh) is holder and fresh.count_params() == model.count_params()
    fresh.load_weights(str(tmp_path / "old.weights.h5"))
    assert not holder.restored


def test_recipe_learns_and_reports_tta(trained):
    loss = trained.history.history["loss"]
    assert loss[-1] < loss[0]
    assert set(trained.metrics) == {"loss", "accuracy", "accuracy_no_tta"}
    assert trained.settings["recipe"] == "cifar10_fast" and trained.settings["lr_schedule"] == "triangle"
    assert trained.settings["precision"] in ("float32", "mixed_bfloat16", "mixed_float16")
    assert trained.class_names == data.CIFAR10_CLASSES
    assert not hasattr(trained.model, F.Lookahead.ATTRIBUTE)  # the EMA copies are not part of the result


def test_save_load_round_trip_keeps_predictions_and_class_names(trained, tmp_path, cifar_sample):
    _, (x_test, _) = cifar_sample
    saved = trained.save(tmp_path / "out", curves=False)
    loaded = training.load_model(saved.paths["model"])
    assert training.class_names(loaded) == list(data.CIFAR10_CLASSES)
    np.testing.assert_allclose(loaded.predict(x_test[:16], verbose=0), trained.model.predict(x_test[:16], verbose=0),
                               atol=1e-4)


def test_recipe_checks_its_arguments():
    with pytest.raises(UnexpectedArgumentError, match="did you mean `epochs`"):
        convnets.train_cifar10_fast(sample=True, epoch=1)
    with pytest.raises(InvalidArgumentError, match="label_smoothing"):
        convnets.train_cifar10_fast(sample=True, label_smoothing=1.0)
    with pytest.raises(InvalidArgumentError, match="`lr_schedule`"):
        convnets.train_cifar10_fast(sample=True, lr_schedule="triangle")
    defaults = convnets.RECIPE_DEFAULTS["train_cifar10_fast"]
    assert (defaults["epochs"], defaults["batch_size"], defaults["optimizer"], defaults["precision"]) == (
        10, 1024, "sgd", "auto")


def test_cli_fast_is_the_default_and_writes_tta_accuracy(tmp_path, capsys):
    import json

    from visionkit.cli import main

    out = tmp_path / "fast"
    assert main(["cifar10", "--sample", "--epochs", "1", "--limit", "256", "--batch-size", "128", "--seed", "0",
                 "-o", str(out), "-q"]) == 0
    written = json.loads((out / "metrics.json").read_text())
    assert {"accuracy", "accuracy_no_tta"} <= set(written["test"])
    assert written["settings"]["recipe"] == "cifar10_fast" and written["settings"]["batch_size"] == 128
    assert main(["cifar10", "--sample", "--rotation", "25", "-o", str(tmp_path / "x"), "-q"]) == 2
    assert "--recipe classic" in capsys.readouterr().err


def test_variant_95_builds_the_wider_network_and_trains(tmp_path):
    result = convnets.train_cifar10_fast(sample=True, variant="95", epochs=1, limit=128, batch_size=64, seed=0,
                                         progress=False, tta=False)
    model = result.model
    assert [model.get_layer(f"block{i}_conv2").filters for i in (1, 2, 3)] == [128, 384, 384]
    assert result.settings["variant"] == "95" and result.settings["learning_rate"] == 10.0
    assert result.settings["epochs"] == 1 and np.isfinite(result.history.history["loss"]).all()
    assert convnets.fast_cifar10_convnet(widths=(128, 384, 384)).count_params() == model.count_params()
    with pytest.raises(InvalidArgumentError, match="variant"):
        convnets.train_cifar10_fast(sample=True, variant="96")


def test_cli_variant_is_an_option_of_the_fast_recipe(tmp_path, capsys):
    from visionkit.cli import main

    assert main(["cifar10", "--recipe", "classic", "--variant", "95", "--sample", "-o", str(tmp_path / "c"),
                 "-q"]) == 2
    assert "--recipe fast only" in capsys.readouterr().err
    defaults = dict(convnets.RECIPE_DEFAULTS["train_cifar10_fast"])
    assert defaults["epochs"] == 10  # the 95 budget's 15 epochs come with the variant, not the table
