"""Devices, precision and distribution: the only module that touches global TF state.

Nothing here runs at import. :func:`configure` changes global state (memory growth,
mixed precision, seeds, determinism) only when you call it; :func:`info` and
:func:`strategy` only read it.

Examples
--------
>>> from visionkit import device
>>> device.info()["tensorflow"]  # doctest: +SKIP
'2.21.0'
>>> strat = device.strategy("auto")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import platform
import warnings
from typing import TYPE_CHECKING, Any

from . import _validate as V

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

__all__ = ["PRECISIONS", "STRATEGIES", "configure", "info", "strategy"]

#: Values accepted by ``configure(precision=...)``.
PRECISIONS: tuple[str, ...] = ("float32", "mixed_float16", "mixed_bfloat16", "auto")

#: Values accepted by :func:`strategy`.
STRATEGIES: tuple[str, ...] = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")


def info() -> dict[str, Any]:
    """Describe the software and devices visionkit runs on.

    Returns
    -------
    dict
        ``visionkit``, ``python``, ``platform``, ``tensorflow`` and ``keras`` versions;
        ``devices``: a list of ``{"name", "type"}`` (GPUs add ``"gpu_name"``,
        ``"compute_capability"`` and ``"memory_mb"`` when TensorFlow reports them);
        ``gpus``: the number of GPUs; ``precision``: the global Keras dtype policy;
        ``strategy``: the class name of the distribution strategy in scope;
        ``tf_config``: the cluster named by ``TF_CONFIG``, if any.
    """
    import keras
    import tensorflow as tf

    from . import __version__

    devices: list[dict[str, Any]] = []
    for dev in tf.config.list_physical_devices():
        entry: dict[str, Any] = {"name": dev.name, "type": dev.device_type}
        if dev.device_type == "GPU":
            try:
                details = tf.config.experimental.get_device_details(dev)
                entry["gpu_name"] = details.get("device_name")
                cc = details.get("compute_capability")
                entry["compute_capability"] = ".".join(map(str, cc)) if cc else None
            except (RuntimeError, ValueError):
                pass
            try:
                mem = tf.config.experimental.get_memory_info(dev.name.replace("physical_device:", ""))
                entry["memory_in_use_mb"] = round(mem["current"] / 2**20, 1)
            except (RuntimeError, ValueError):
                pass
        devices.append(entry)
    tf_config = _tf_config()
    return {
        "visionkit": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "devices": devices,
        "gpus": sum(d["type"] == "GPU" for d in devices),
        "precision": keras.config.dtype_policy().name,
        "strategy": type(tf.distribute.get_strategy()).__name__,
        "tf_config": tf_config.get("cluster") if tf_config else None,
    }


def configure(
    *,
    memory_growth: bool = True,
    precision: str | None = None,
    seed: int | None = None,
    deterministic: bool = False,
) -> dict[str, Any]:
    """Set global TensorFlow/Keras state, explicitly.

    visionkit never changes global state on its own; call this once at the start of a
    program (before any model is built) to opt in.

    Parameters
    ----------
    memory_growth : bool, default True
        Let every GPU allocate memory as needed instead of all at once. Must run
        before the GPUs are first used; a warning says so otherwise.
    precision : {"float32", "mixed_float16", "mixed_bfloat16", "auto"}, optional
        The global Keras dtype policy. ``"auto"`` picks ``mixed_float16`` on GPUs of
        compute capability 7.0 or more, ``mixed_bfloat16`` on TPUs, ``float32``
        otherwise. ``None`` leaves it as it is. The recipes keep their last layer in
        float32, so losses and outputs stay float32.
    seed : int, optional
        Seed Python, NumPy and TensorFlow (``keras.utils.set_random_seed``).
    deterministic : bool, default False
        Ask TensorFlow for deterministic kernels (slower).

    Returns
    -------
    dict
        What was applied: ``{"memory_growth", "precision", "seed", "deterministic"}``.
    """
    V.one_of("precision", precision, (*PRECISIONS, None))
    seed = V.integer("seed", seed, minimum=0, allow_none=True)
    import keras
    import tensorflow as tf

    applied: dict[str, Any] = {"memory_growth": None, "precision": None, "seed": seed, "deterministic": deterministic}
    if memory_growth:
        gpus = tf.config.list_physical_devices("GPU")
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError as exc:
                warnings.warn(f"Could not enable memory growth on {gpu.name}: {exc}", RuntimeWarning, stacklevel=2)
        applied["memory_growth"] = bool(gpus)
    if precision is not None:
        policy = _auto_precision() if precision == "auto" else precision
        keras.config.set_dtype_policy(policy)
        applied["precision"] = policy
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return applied


def _auto_precision() -> str:
    import tensorflow as tf

    if tf.config.list_logical_devices("TPU"):
        return "mixed_bfloat16"
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            cc = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        except (RuntimeError, ValueError):
            cc = None
        if cc and cc >= (7, 0):
            return "mixed_float16"
    return "float32"


def _tf_config() -> dict[str, Any] | None:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise V.fail("TF_CONFIG", "valid JSON with a 'cluster' and a 'task'", raw) from exc
    return cfg if isinstance(cfg, dict) else None


def _cluster_size(cfg: dict[str, Any] | None) -> int:
    if not cfg:
        return 0
    cluster = cfg.get("cluster") or {}
    return sum(len(v) for k, v in cluster.items() if k in ("worker", "chief"))


def strategy(kind: str = "auto") -> tf.distribute.Strategy:
    """Return a ``tf.distribute.Strategy`` for the hardware at hand.

    Parameters
    ----------
    kind : {"auto", "default", "one_device", "mirrored", "multi_worker", "tpu"}
        ``"auto"`` picks, in order: ``TPUStrategy`` when a TPU is reachable;
        ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` names a cluster of two or
        more workers; ``MirroredStrategy`` on two or more GPUs; otherwise the default
        (single-device) strategy. The other kinds force that choice.

    Returns
    -------
    tf.distribute.Strategy
        Build and compile models under ``with strategy.scope():``.
        ``strategy.num_replicas_in_sync`` is the number of replicas that share each
        global batch.

    Raises
    ------
    InvalidArgumentError
        Unknown ``kind``, ``"tpu"`` without a TPU, or ``"multi_worker"`` without a
        ``TF_CONFIG`` cluster.
    """
    V.one_of("kind", kind, STRATEGIES)
    import tensorflow as tf

    if kind in ("tpu", "auto"):
        tpu = _tpu_strategy(required=kind == "tpu")
        if tpu is not None:
            return tpu
    cfg = _tf_config()
    if kind == "multi_worker" or (kind == "auto" and _cluster_size(cfg) >= 2):
        if cfg is None:
            raise V.fail("kind", "'multi_worker' only with TF_CONFIG naming a cluster ('cluster' and 'task')", kind)
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if kind == "mirrored" or (kind == "auto" and len(gpus) >= 2):
        if not gpus:
            cpus = tf.config.list_logical_devices("CPU")
            return tf.distribute.MirroredStrategy([d.name for d in cpus])
        return tf.distribute.MirroredStrategy()
    if kind == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    return tf.distribute.get_strategy()


def _tpu_strategy(*, required: bool) -> tf.distribute.Strategy | None:
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as exc:
        if required:
            raise V.fail("kind", "'tpu' only where a TPU is reachable", f"tpu ({exc})") from None
        return None
