"""Common image corruptions, batched in TensorFlow (private; public through ``visionkit.robustness``).

Each corruption takes a float32 batch ``(N, H, W, C)`` in ``[0, 1]`` (C = 1 or 3), a
severity 1-5 and a seed, and returns a batch of the same shape in ``[0, 1]``. The
parameters follow those of CIFAR-10-C (Hendrycks and Dietterich, ICLR 2019; their
``make_cifar_c.py``), with the sizes of the blurs scaled by ``max(1, min(H, W) / 32)``; the
implementations are TensorFlow re-writes, not the published code (no ImageMagick, no
plasma fractal), so the images are not identical to the published sets.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["CORRUPTIONS", "PARAMETERS", "apply"]

#: Per corruption, the parameter at severities 1..5 (at 32 px for the blurs).
PARAMETERS: dict[str, tuple[Any, ...]] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),  # noise std
    "shot_noise": (500, 250, 100, 75, 50),  # photons per unit intensity
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),  # sigma, px at 32 px
    "defocus_blur": (0.6, 0.9, 1.2, 1.6, 2.0),  # disk radius, px at 32 px
    "motion_blur": (3, 5, 7, 9, 11),  # line length, px at 32 px
    "zoom_blur": (0.06, 0.11, 0.16, 0.21, 0.26),  # largest zoom - 1 (steps of 0.01)
    "jpeg_compression": (80, 65, 58, 50, 40),  # JPEG quality
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),  # down-scaling factor
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),  # contrast factor
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),  # added to the HSV value
    "fog": ((0.2, 3.0), (0.5, 3.0), (0.75, 2.5), (1.0, 2.0), (1.5, 1.75)),  # (strength, roughness decay)
}
CORRUPTIONS: tuple[str, ...] = tuple(PARAMETERS)


def _tf() -> Any:
    import tensorflow as tf

    return tf


def _seed(seed: int, kind: str, severity: int) -> Any:
    tf = _tf()
    return tf.constant([int(seed) % (2**31 - 1), CORRUPTIONS.index(kind) * 16 + severity], tf.int32)


def _scale(x: Any) -> float:
    return max(1.0, min(int(x.shape[1]), int(x.shape[2])) / 32.0)


def _depthwise(x: Any, kernel: np.ndarray) -> Any:
    """Convolve every channel with the 2-D ``kernel`` (symmetric padding keeps the size)."""
    tf = _tf()
    kh, kw = kernel.shape
    ph, pw = kh // 2, kw // 2
    h, w = int(x.shape[1]), int(x.shape[2])
    mode = "SYMMETRIC" if ph <= h and pw <= w else "CONSTANT"
    padded = tf.pad(x, [[0, 0], [ph, kh - 1 - ph], [pw, kw - 1 - pw], [0, 0]], mode=mode)
    c = int(x.shape[-1])
    k = tf.constant(np.tile(kernel.astype(np.float32)[:, :, None, None], (1, 1, c, 1)))
    return tf.nn.depthwise_conv2d(padded, k, strides=[1, 1, 1, 1], padding="VALID")


def _gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(3 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (t / max(sigma, 1e-6)) ** 2)
    g /= g.sum()
    return np.outer(g, g)


def _disk_kernel(radius: float) -> np.ndarray:
    size = max(1, math.ceil(radius + 1.0))
    t = np.arange(-size, size + 1, dtype=np.float64)
    dist = np.hypot(*np.meshgrid(t, t))
    k = np.clip(radius + 1.0 - dist, 0.0, 1.0)  # a disk with a soft one-pixel edge
    return k / k.sum()


def _line_kernel(length: float, angle: float) -> np.ndarray:
    size = max(1, math.ceil(length / 2))
    k = np.zeros((2 * size + 1, 2 * size + 1))
    for t in np.linspace(-length / 2, length / 2, max(2, int(4 * length))):
        px, py = size + t * math.cos(angle), size + t * math.sin(angle)
        x0, y0 = math.floor(px), math.floor(py)
        for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):  # bilinear splat
            xi, yi = x0 + dx, y0 + dy
            if 0 <= xi < k.shape[1] and 0 <= yi < k.shape[0]:
                k[yi, xi] += (1 - abs(px - xi)) * (1 - abs(py - yi))
    return k / k.sum()


def gaussian_noise(x: Any, c: float, seed: Any) -> Any:
    tf = _tf()
    return x + tf.random.stateless_normal(tf.shape(x), seed, stddev=c)


def shot_noise(x: Any, c: float, seed: Any) -> Any:
    tf = _tf()
    return tf.random.stateless_poisson(tf.shape(x), seed, lam=x * c, dtype=tf.float32) / c


def gaussian_blur(x: Any, c: float, seed: Any) -> Any:
    return _depthwise(x, _gaussian_kernel(c * _scale(x)))


def defocus_blur(x: Any, c: float, seed: Any) -> Any:
    return _depthwise(x, _disk_kernel(c * _scale(x)))


def motion_blur(x: Any, c: float, seed: Any) -> Any:
    tf = _tf()
    angle = float(tf.random.stateless_uniform([], seed, -math.pi / 4, math.pi / 4))
    return _depthwise(x, _line_kernel(c * _scale(x), angle))


def zoom_blur(x: Any, c: float, seed: Any) -> Any:
    tf = _tf()
    h, w = int(x.shape[1]), int(x.shape[2])
    n = tf.shape(x)[0]
    total, count = x, 1
    for zoom in np.arange(1.01, 1.0 + c + 1e-9, 0.01):
        half = 0.5 / zoom
        box = tf.tile(tf.constant([[0.5 - half, 0.5 - half, 0.5 + half, 0.5 + half]], tf.float32), [n, 1])
        total += tf.image.crop_and_resize(x, box, tf.range(n), [h, w])
        count += 1
    return total / count


def jpeg_compression(x: Any, c: int, seed: Any) -> Any:
    tf = _tf()
    u8 = tf.image.convert_image_dtype(x, tf.uint8, saturate=True)
    out = tf.map_fn(lambda im: tf.image.adjust_jpeg_quality(im, int(c)), u8, fn_output_signature=tf.uint8)
    return tf.image.convert_image_dtype(tf.reshape(out, tf.shape(x)), tf.float32)


def pixelate(x: Any, c: float, seed: Any) -> Any:
    tf = _tf()
    h, w = int(x.shape[1]), int(x.shape[2])
    small = tf.image.resize(x, [max(1, int(h * c)), max(1, int(w * c))], method="area")
    return tf.image.resize(small, [h, w], method="bilinear")


def contrast(x: Any, c: float, seed: Any) -> Any:
    tf = _tf()
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * c + mean


def brightness(x: Any, c: float, seed: Any) -> Any:
    tf = _tf()
    if int(x.shape[-1]) == 1:
        return x + c
    hsv = tf.image.rgb_to_hsv(tf.clip_by_value(x, 0.0, 1.0))
    hsv = tf.concat([hsv[..., :2], tf.clip_by_value(hsv[..., 2:] + c, 0.0, 1.0)], axis=-1)
    return tf.image.hsv_to_rgb(hsv)


def fog(x: Any, c: tuple[float, float], seed: Any) -> Any:
    """Haze: a smooth random field (octaves of up-sampled noise, each 1/decay of the last) added, then the range squeezed."""
    tf = _tf()
    strength, decay = c
    h, w = int(x.shape[1]), int(x.shape[2])
    n = tf.shape(x)[0]
    field, amp, total = tf.zeros([n, h, w, 1]), 1.0, 0.0
    for octave in range(5):
        g = 2**octave + 1
        noise = tf.random.stateless_uniform([n, g, g, 1], seed + tf.constant([0, 1000 + octave]))
        field += amp * tf.image.resize(noise, [h, w], method="bicubic")
        total += amp
        amp /= decay
    field = field / total
    field = field - tf.reduce_min(field, axis=[1, 2, 3], keepdims=True)
    field = field / (tf.reduce_max(field, axis=[1, 2, 3], keepdims=True) + 1e-6)
    top = tf.reduce_max(x, axis=[1, 2, 3], keepdims=True)
    return (x + strength * field) * top / (top + strength)


_FUNCTIONS: dict[str, Callable[[Any, Any, Any], Any]] = {
    "gaussian_noise": gaussian_noise, "shot_noise": shot_noise, "gaussian_blur": gaussian_blur,
    "defocus_blur": defocus_blur, "motion_blur": motion_blur, "zoom_blur": zoom_blur,
    "jpeg_compression": jpeg_compression, "pixelate": pixelate, "contrast": contrast,
    "brightness": brightness, "fog": fog,
}


def apply(x: Any, kind: str, severity: int, seed: int) -> Any:
    """``kind`` at ``severity`` on a float32 ``[0, 1]`` batch; the result clipped to ``[0, 1]``."""
    tf = _tf()
    out = _FUNCTIONS[kind](x, PARAMETERS[kind][severity - 1], _seed(seed, kind, severity))
    return tf.clip_by_value(tf.cast(out, tf.float32), 0.0, 1.0)
