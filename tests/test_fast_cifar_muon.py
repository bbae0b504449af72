"""The fast recipe's Muon budget (airbench94_muon): the optimizer against the reference's steps."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from visionkit import _fast_cifar as F
from visionkit import _fast_cifar_muon as M
from visionkit import convnets, training


def _newton_schulz_reference(g, steps=3):
    """airbench94_muon's ``zeropower_via_newtonschulz5``, in float64 NumPy."""
    a, b, c = 3.4445, -4.7750, 2.0315
    x = g / (np.linalg.norm(g) + 1e-7)
    tall = g.shape[0] > g.shape[1]
    if tall:
        x = x.T
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return x.T if tall else x


@pytest.mark.parametrize("shape", [(64, 216), (300, 40)])
def test_newton_schulz_is_the_reference_iteration_and_orthogonalises(shape):
    g = np.random.default_rng(0).normal(size=shape)
    got = np.asarray(M.newton_schulz(keras.ops.convert_to_tensor(g.astype(np.float32))))
    want = _newton_schulz_reference(g)
    np.testing.assert_allclose(got, want, atol=2e-5)  # float32 against float64, entries about 0.1
    singular = np.linalg.svd(got, compute_uv=False)
    assert singular.min() > 0.3 and singular.max() < 1.3  # near 1, not S: the iteration's band
    u, _, vt = np.linalg.svd(g, full_matrices=False)
    cosine = np.sum(got * (u @ vt)) / (np.linalg.norm(got) * np.linalg.norm(u @ vt))
    assert cosine > 0.95  # about U V^T


def _reference_steps(kernel, bias, head, whiten_bias, grads, *, rate_factors, batch, whiten_steps):
    """airbench94_muon's two optimizers (Muon on the filters, PyTorch's Nesterov SGD on the rest), in NumPy.

    ``kernel`` is in PyTorch's layout ``(out, in, kh, kw)``; gradients are of a loss summed over the batch.
    """
    h = M.MUON_HYPER
    wd = h["weight_decay"] * batch
    p = {"kernel": kernel.astype(np.float64), "bias": bias.astype(np.float64), "head": head.astype(np.float64),
         "whiten": whiten_bias.astype(np.float64)}
    buf = {k: np.zeros_like(v) for k, v in p.items()}
    lrs = {"bias": h["bias_lr"], "head": h["head_lr"], "whiten": h["bias_lr"]}
    for step, (g, factor) in enumerate(zip(grads, rate_factors)):
        buf["kernel"] = h["filter_momentum"] * buf["kernel"] + g["kernel"]
        nesterov = g["kernel"] + h["filter_momentum"] * buf["kernel"]
        out = p["kernel"].shape[0]
        p["kernel"] = p["kernel"] * (out ** 0.5 / np.linalg.norm(p["kernel"]))
        update = _newton_schulz_reference(nesterov.reshape(out, -1)).reshape(p["kernel"].shape)
        p["kernel"] = p["kernel"] - h["filter_lr"] * factor * update
        for k in ("bias", "head", "whiten"):
            lr = lrs[k] * (max(1 - step / whiten_steps, 0.0) if k == "whiten" else factor)
            gk = g[k] + (wd / lrs[k]) * p[k]
            buf[k] = h["momentum"] * buf[k] + gk
            p[k] = p[k] - lr * (gk + h["momentum"] * buf[k])
    return p


def test_fast_muon_steps_are_the_reference_optimizers():
    import tensorflow as tf

    rng = np.random.default_rng(1)
    batch, whiten_steps, n = 8, 2, 4
    factors = [1.0, 0.75, 0.5, 0.25]  # the linear decay of a 4-step run
    kernel_t = rng.normal(size=(6, 4, 3, 3))  # PyTorch's (out, in, kh, kw)
    bias, head, whiten_bias = rng.normal(size=6), rng.normal(size=(6, 10)), rng.normal(size=4)
    grads = [{"kernel": rng.normal(size=kernel_t.shape), "bias": rng.normal(size=6),
              "head": rng.normal(size=(6, 10)), "whiten": rng.normal(size=4)} for _ in range(n)]
    want = _reference_steps(kernel_t, bias, head, whiten_bias, grads, rate_factors=factors, batch=batch,
                            whiten_steps=whiten_steps)

    def keras_var(value, name):
        return keras.Variable(np.asarray(value, np.float32), name=name)

    kernel = keras_var(kernel_t.transpose(2, 3, 1, 0), "kernel")  # Keras' (kh, kw, in, out)
    variables = [kernel, keras_var(bias, "beta"), keras_var(head.copy(), "dense_kernel"),
                 keras_var(whiten_bias, "bias")]
    opt = M.make_muon_optimizer(learning_rate=None, schedule=None, total_steps=n, steps_per_epoch=1,
                                global_batch=batch)
    opt.whiten_steps = whiten_steps
    opt.whiten_names = (variables[3].path,)  # before the first step builds the optimizer
    for g in grads:  # Keras averages the loss over the batch: its gradients are the reference's / batch
        keras_grads = [g["kernel"].transpose(2, 3, 1, 0) / batch, g["bias"] / batch, g["head"] / batch,
                       g["whiten"] / batch]
        opt.apply([tf.constant(x, tf.float32) for x in keras_grads], variables)
    np.testing.assert_allclose(np.asarray(kernel).transpose(3, 2, 0, 1), want["kernel"], atol=1e-4)
    for var, key in zip(variables[1:], ("bias", "head", "whiten")):
        np.testing.assert_allclose(np.asarray(var), want[key], rtol=1e-4, atol=1e-4)


def test_muon_optimizer_rates_scale_and_round_trip():
    opt = M.make_muon_optimizer(learning_rate=0.48, schedule="constant", total_steps=10, steps_per_epoch=5,
                                global_batch=2000)
    assert (opt.filter_rate, opt.bias_rate, opt.head_rate) == pytest.approx((0.48, 0.106, 1.34))
    assert opt.weight_decay_total == pytest.approx(0.004) and opt.gradient_scale == 2000.0
    assert opt.whiten_steps == 15 and float(opt.learning_rate) == 1.0
    decay = M.make_muon_optimizer(learning_rate=None, schedule=None, total_steps=10, steps_per_epoch=5,
                                  global_batch=2000)
    assert [float(decay._learning_rate(s)) for s in (0, 5, 10)] == pytest.approx([1.0, 0.5, 0.0])
    again = M.FastMuon.from_config(opt.get_config())  # in the checkpoints' fingerprint
    assert again.get_config() == opt.get_config()


def test_fast_muon_finds_the_whitening_bias_of_the_recipe_model():
    import tensorflow as tf

    model = F.build_model(widths=(4, 8, 8), head_std=1.0, logit_scale=1 / 8, seed=0)
    opt = M.make_muon_optimizer(learning_rate=None, schedule="constant", total_steps=10, steps_per_epoch=1,
                                global_batch=16)  # whiten_steps: 3
    variables = model.trainable_variables
    bias = model.get_layer("whiten").bias
    step = tf.function(lambda: opt.apply([tf.ones_like(v) for v in variables], variables))  # as fit runs it
    seen = [np.asarray(bias).copy()]
    for _ in range(4):
        step()
        seen.append(np.asarray(bias).copy())
    assert opt._whiten == {opt._var_key(bias)}
    assert not np.array_equal(seen[2], seen[3])  # step 3 (rate 1/3 of 0.053) moves it
    np.testing.assert_array_equal(seen[3], seen[4])  # step 4: its rate has decayed to zero
    beta = model.get_layer("block1_bn1").beta
    assert opt._var_key(beta) not in opt._whiten


def _tiny_muon_run(folder, epochs):
    x = np.random.default_rng(0).integers(0, 256, (64, 32, 32, 3), dtype=np.uint8)
    y = np.arange(64) % 10
    keras.utils.set_random_seed(0)
    model = F.build_model(whitening_images=x[:32], widths=(4, 8, 8), head_std=1.0, logit_scale=1 / 8, seed=0)
    counter = F.EpochVariable()
    ds, steps = F.train_dataset(x, y, batch_size=16, seed=0, epoch=counter.variable, translate=1)
    opt = M.make_muon_optimizer(learning_rate=None, schedule=None, total_steps=3 * steps, steps_per_epoch=steps,
                                global_batch=16)
    training.train(model, ds, epochs=epochs, optimizer=opt, callbacks=[counter, F.WhiteningBiasFreeze(1)],
                   checkpoint_dir=folder, loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                   progress=False)
    return model


def test_muon_run_resumes_exactly(tmp_path):
    once = _tiny_muon_run(tmp_path / "once", 3)
    _tiny_muon_run(tmp_path / "twice", 2)
    resumed = _tiny_muon_run(tmp_path / "twice", 3)  # the momentum buffers come back with the weights
    for a, b in zip(once.get_weights(), resumed.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_variant_94_muon_trains_with_its_own_defaults():
    result = convnets.train_cifar10_fast(sample=True, variant="94-muon", epochs=1, limit=256, batch_size=128,
                                         seed=0, progress=False, tta=False)
    s = result.settings
    assert s["variant"] == "94-muon" and s["optimizer"] == "muon" and s["learning_rate"] == 0.24
    assert s["ema"] is False and s["lr_schedule"] == "linear" and s["batch_size"] == 128
    assert np.isfinite(result.history.history["loss"]).all()
    head = np.asarray(result.model.get_layer("dense").kernel)
    assert 0.7 < head.std() < 1.3  # the unit-scale head (logits divided by the width)
    assert result.model.get_layer("logits").scale == pytest.approx(1 / 256)


def test_variant_94_muon_defaults_and_ema_switch(monkeypatch):
    from visionkit import _fast_cifar_recipe as R

    seen = {}

    def fake_run(train, validation, test, *, options, parts, **kwargs):
        seen.update(options=options, parts=parts)
        return None

    monkeypatch.setattr(R, "run", fake_run)
    convnets.train_cifar10_fast(sample=True, variant="94-muon")
    assert (seen["options"].epochs, seen["options"].batch_size, seen["options"].optimizer) == (8, 2000, "muon")
    assert seen["parts"].ema is False
    convnets.train_cifar10_fast(sample=True, variant="94-muon", ema=True, optimizer="sgd", epochs=3)
    assert seen["parts"].ema is True and seen["options"].optimizer == "sgd" and seen["options"].epochs == 3
    convnets.train_cifar10_fast(sample=True)
    assert seen["parts"].ema is True and seen["options"].batch_size == 1024


def test_every_public_budget_has_a_network():
    assert convnets.FAST_VARIANTS == tuple(F.VARIANTS) == ("94", "95", "94-muon")


def test_training_accepts_keras_muon_by_name():
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8), keras.layers.Dense(2)])
    result = training.train(model, (x, (x[:, 0] > 0).astype(int)), epochs=1, batch_size=16, optimizer="muon",
                            loss="sparse_categorical_crossentropy", progress=False)
    assert type(result.model.optimizer).__name__ == "Muon"
