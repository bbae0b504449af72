"""Optimisation loops of style transfer (private): compiled Adam and scipy L-BFGS-B.

Both loops minimise ``loss_fn(x) -> (total, parts)`` over an image ``x`` of shape
``(H, W, 3)`` in VGG-preprocessed (BGR, mean-subtracted) units, inside the box
``[low, high]`` (the valid pixel range per channel). The loss and its gradient are
compiled once per image shape with ``tf.function``; the targets the loss compares
with are constants captured by ``loss_fn`` (computed once, before the loop).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from ._style_settings import require_scipy
from .errors import NonFiniteLossError, VisionkitError

__all__ = ["make_adam_step", "make_loss_and_grad", "run_adam", "run_lbfgs"]

#: Per-step report: ``report(step, x_numpy_or_tensor, losses) -> stop?``.
Report = Callable[[int, Any, dict[str, float]], bool]


def _nonfinite(step: int, losses: dict[str, float]) -> str:
    parts = ", ".join(f"{k}={v:.4g}" for k, v in losses.items())
    return (
        f"Style transfer stopped at step {step}: the loss is not finite ({parts}). "
        "Lower `style_weight`/`content_weight`/`learning_rate`; the error's `last_finite` "
        "attribute holds the last image with a finite loss."
    )


#: Adam's settings of the TensorFlow style-transfer tutorial, which optimises an image in
#: ``[0, 1]``: ``Adam(learning_rate=0.02, beta_1=0.99, epsilon=1e-1)``.
TUTORIAL_ADAM = {"learning_rate": 0.02, "beta_1": 0.99, "beta_2": 0.999, "epsilon": 1e-1}

#: visionkit optimises pixels in ``[0, 255]``: the same steps need the rate times 255
#: and the epsilon divided by 255 (the gradients are 255 times smaller; see ``make_adam_step``).
PIXEL_SCALE = 255.0
ADAM_EPSILON = TUTORIAL_ADAM["epsilon"] / PIXEL_SCALE


def make_adam_step(
    loss_fn: Callable[[tf.Tensor], tuple[tf.Tensor, dict[str, tf.Tensor]]],
    x0: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    learning_rate: float,
    beta_1: float = TUTORIAL_ADAM["beta_1"],
    beta_2: float = TUTORIAL_ADAM["beta_2"],
    epsilon: float = ADAM_EPSILON,
    jit_compile: bool = False,
) -> tuple[Callable[[], tuple[tf.Tensor, dict[str, tf.Tensor], tf.Tensor]], tf.Variable]:
    """A compiled Adam step on the pixels (clipped to ``[low, high]``) and its image variable.

    The update is Keras' ``Adam`` (epsilon added to ``sqrt(v)`` before the bias
    correction of the rate). Pixels here are ``[0, 255]`` units, the tutorial's are
    ``[0, 1]``: with ``x = 255 u`` the gradient in ``x`` is the gradient in ``u`` over
    255, so Keras' Adam on ``u`` with rate ``r`` and epsilon ``e`` moves ``x`` exactly
    as this step with rate ``255 r`` and epsilon ``e / 255`` (the default).

    ``step()`` returns ``(total, parts, ok)`` for the image before the update; when the
    loss or the gradient is not finite (``ok`` false) the image is left unchanged.
    """
    x = tf.Variable(x0, dtype=tf.float32, name="generated")
    m = tf.Variable(tf.zeros_like(x0), name="adam_m")
    v = tf.Variable(tf.zeros_like(x0), name="adam_v")
    t = tf.Variable(0.0, dtype=tf.float32, name="adam_t")
    lo = tf.constant(low, tf.float32)
    hi = tf.constant(high, tf.float32)
    lr = tf.constant(learning_rate, tf.float32)

    # jit_compile=False by default: on CPU, XLA did not speed this step up (benchmarks/style.py).
    @tf.function(jit_compile=jit_compile)
    def step() -> tuple[tf.Tensor, dict[str, tf.Tensor], tf.Tensor]:
        with tf.GradientTape() as tape:
            total, parts = loss_fn(x)
        grad = tape.gradient(total, x)
        ok = tf.math.is_finite(total) & tf.reduce_all(tf.math.is_finite(grad))
        if ok:  # autograph: a NaN/Inf step leaves x at its last finite value
            t.assign_add(1.0)
            m.assign_add((grad - m) * (1.0 - beta_1))
            v.assign_add((tf.square(grad) - v) * (1.0 - beta_2))
            alpha = lr * tf.sqrt(1.0 - tf.pow(beta_2, t)) / (1.0 - tf.pow(beta_1, t))
            x.assign(tf.clip_by_value(x - alpha * m / (tf.sqrt(v) + epsilon), lo, hi))
        return total, parts, ok

    return step, x


def run_adam(
    loss_fn: Callable[[tf.Tensor], tuple[tf.Tensor, dict[str, tf.Tensor]]],
    x0: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    steps: int,
    learning_rate: float,
    report: Report,
    to_image: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Adam on the pixels, clipped to ``[low, high]`` after every step; returns the image."""
    step, x = make_adam_step(loss_fn, x0, low, high, learning_rate=learning_rate)
    for i in range(1, steps + 1):
        total, parts, ok = step()
        losses = {"total": float(total), **{k: float(p) for k, p in parts.items()}}
        if not bool(ok):
            raise NonFiniteLossError(_nonfinite(i, losses), last_finite=to_image(x.numpy()))
        if report(i, x, losses):
            break
    return x.numpy()


def make_loss_and_grad(
    loss_fn: Callable[[tf.Tensor], tuple[tf.Tensor, dict[str, tf.Tensor]]],
    shape: tuple[int, ...],
) -> Callable[[tf.Tensor], tuple[tf.Tensor, dict[str, tf.Tensor], tf.Tensor]]:
    """``f(x) -> (total, parts, gradient)`` compiled for images of ``shape``."""

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)], jit_compile=False)
    def loss_and_grad(x: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor], tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            total, parts = loss_fn(x)
        return total, parts, tape.gradient(total, x)

    return loss_and_grad


class _Abort(VisionkitError):
    """Unwinds scipy's minimize from its callbacks (caught here, never escapes)."""

    def __init__(self, kind: str, step: int, losses: dict[str, float]) -> None:
        super().__init__(kind)
        self.kind, self.step, self.losses = kind, step, losses


def run_lbfgs(
    loss_fn: Callable[[tf.Tensor], tuple[tf.Tensor, dict[str, tf.Tensor]]],
    x0: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    *,
    steps: int,
    report: Report,
    to_image: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """L-BFGS-B (scipy) with the pixel range as box bounds; ``steps`` iterations."""
    minimize = require_scipy()
    shape = x0.shape
    loss_and_grad = make_loss_and_grad(loss_fn, shape)

    state: dict[str, Any] = {"step": 0, "losses": {}, "last": x0.astype(np.float32)}

    def fun(flat: np.ndarray) -> tuple[float, np.ndarray]:
        total, parts, grad = loss_and_grad(tf.constant(flat.reshape(shape), tf.float32))
        losses = {"total": float(total), **{k: float(p) for k, p in parts.items()}}
        grad = grad.numpy()
        if not (np.isfinite(losses["total"]) and np.isfinite(grad).all()):
            raise _Abort("nonfinite", state["step"] + 1, losses)
        state["losses"] = losses
        return losses["total"], grad.astype(np.float64).ravel()

    def callback(xk: np.ndarray) -> None:
        state["step"] += 1
        state["last"] = xk.reshape(shape).astype(np.float32)
        if report(state["step"], state["last"], state["losses"]):
            raise _Abort("stop", state["step"], state["losses"])

    bounds = np.stack(
        [np.broadcast_to(low, shape).ravel(), np.broadcast_to(high, shape).ravel()], axis=1
    ).astype(np.float64)
    try:
        result = minimize(
            fun,
            np.clip(x0, low, high).astype(np.float64).ravel(),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            callback=callback,
            options={"maxiter": steps, "maxfun": steps * 20, "maxcor": 10, "ftol": 1e-12, "gtol": 1e-12},
        )
    except _Abort as abort:
        if abort.kind == "nonfinite":
            raise NonFiniteLossError(
                _nonfinite(abort.step, abort.losses), last_finite=to_image(state["last"])
            ) from None
        return state["last"]
    final = result.x.reshape(shape).astype(np.float32)
    return final if np.isfinite(final).all() else state["last"]
