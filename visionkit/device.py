"""Devices, precision and distribution: the only module that touches global TF state.

Nothing here runs at import. [`configure`][visionkit.device.configure] changes global state (memory growth,
mixed precision, seeds, determinism) only when you call it; [`info`][visionkit.device.info] and
[`strategy`][visionkit.device.strategy] only read it.

Examples
--------
>>> from visionkit import device
>>> device.info()["tensorflow"]  # doctest: +ELLIPSIS
'2...'
>>> device.strategy("auto").num_replicas_in_sync  # one CPU: the default strategy
1
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from . import _validate as V

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

__all__ = [
    "PRECISIONS",
    "STRATEGIES",
    "auto_precision",
    "configure",
    "global_batch_size",
    "info",
    "precision_scope",
    "resolve_precision",
    "resolve_strategy",
    "strategy",
    "strategy_scope",
]

#: Values accepted by ``configure(precision=...)``.
PRECISIONS: tuple[str, ...] = ("float32", "mixed_float16", "mixed_bfloat16", "auto")

#: Values accepted by [`strategy`][visionkit.device.strategy].
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
        ``cpu_features``: the CPU's flags that matter for precision (AVX-512,
        AVX512-BF16, AMX); ``auto_precision``: what ``precision="auto"`` picks here;
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
        "cpu_features": sorted(_cpu_flags() & _PRECISION_FLAGS),
        "auto_precision": auto_precision(),
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
        The global Keras dtype policy. ``"auto"`` picks with [`auto_precision`][visionkit.device.auto_precision]. ``None`` leaves it as it is. The recipes keep their last layer in
        float32, so losses and outputs stay float32.
    seed : int, optional
        Seed Python, NumPy and TensorFlow (``keras.utils.set_random_seed``); in
        ``[0, 2**32 - 1]``.
    deterministic : bool, default False
        Ask TensorFlow for deterministic kernels (slower).

    Returns
    -------
    dict
        What was applied: ``{"memory_growth", "precision", "seed", "deterministic"}``.
    """
    V.one_of("precision", precision, (*PRECISIONS, None))
    seed = V.integer("seed", seed, minimum=0, maximum=2**32 - 1, allow_none=True)  # NumPy's seed range
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
        policy = auto_precision() if precision == "auto" else precision
        keras.config.set_dtype_policy(policy)
        applied["precision"] = policy
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return applied


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


# ----------------------------------------------------------------------------- the training spine


def resolve_strategy(strategy: str | tf.distribute.Strategy | None) -> tf.distribute.Strategy | None:
    """The strategy a training option names: ``None``, a name, or a strategy as it is.

    Every recipe resolves its ``strategy`` option here, once.

    Parameters
    ----------
    strategy : str, tf.distribute.Strategy or None
        ``None`` (no strategy: the default single device), a name from
        [`STRATEGIES`][visionkit.device.STRATEGIES] (see [`strategy`][visionkit.device.strategy]) or a ``tf.distribute.Strategy``.

    Returns
    -------
    tf.distribute.Strategy or None

    Examples
    --------
    >>> from visionkit import device
    >>> device.resolve_strategy(None) is None
    True
    >>> device.resolve_strategy("default").num_replicas_in_sync
    1
    """
    if strategy is None:
        return None
    if isinstance(strategy, str):
        V.one_of("strategy", strategy, STRATEGIES)
        return globals()["strategy"](strategy)
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.Strategy):
        raise V.fail("strategy", f"None, one of {list(STRATEGIES)} or a tf.distribute.Strategy", strategy)
    return strategy


def global_batch_size(batch_size: int, strategy: tf.distribute.Strategy | None) -> int:
    """The global batch for ``batch_size`` examples per replica.

    Parameters
    ----------
    batch_size : int
        Examples per replica (the ``batch_size`` training option), at least 1.
    strategy : tf.distribute.Strategy or None
        A resolved strategy (see [`resolve_strategy`][visionkit.device.resolve_strategy]); ``None`` counts as one
        replica.

    Returns
    -------
    int
        ``batch_size × strategy.num_replicas_in_sync``: the examples one optimizer
        step averages over.

    Examples
    --------
    >>> from visionkit import device
    >>> device.global_batch_size(32, None)
    32
    """
    batch_size = V.integer("batch_size", batch_size, minimum=1)
    return batch_size * (strategy.num_replicas_in_sync if strategy is not None else 1)


def strategy_scope(strategy: tf.distribute.Strategy | None) -> contextlib.AbstractContextManager[Any]:
    """``strategy.scope()``, or a no-op context for ``None``."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def auto_precision(*, cpu_flags: Iterable[str] | None = None, gpu_capabilities: Iterable[tuple[int, int]] | None = None,
                   tpu: bool | None = None) -> str:
    """The Keras dtype policy this machine trains fastest with.

    ``"mixed_bfloat16"`` on a TPU; ``"mixed_float16"`` on a CUDA GPU of compute
    capability 7.0 or more; ``"mixed_bfloat16"`` on a CPU with AVX512-BF16 or AMX
    (bfloat16 matrix units); ``"float32"`` otherwise.

    Parameters
    ----------
    cpu_flags : iterable of str, optional
        The CPU's feature flags (as in ``/proc/cpuinfo``); read from the machine when
        ``None``, less the ones a ``ONEDNN_MAX_CPU_ISA`` cap below AVX-512 BF16 (such
        as ``AVX2``, which emulates an AVX2-only CPU) keeps oneDNN from using.
    gpu_capabilities : iterable of (major, minor), optional
        Compute capabilities of the GPUs; asked of TensorFlow when ``None``.
    tpu : bool, optional
        Whether a TPU is attached; asked of TensorFlow when ``None``.

    Returns
    -------
    str
        A name from [`PRECISIONS`][visionkit.device.PRECISIONS] other than ``"auto"``.

    Examples
    --------
    >>> from visionkit import device
    >>> device.auto_precision(cpu_flags=["avx2", "avx512_bf16"], gpu_capabilities=[], tpu=False)
    'mixed_bfloat16'
    >>> device.auto_precision(cpu_flags=["avx2"], gpu_capabilities=[(8, 0)], tpu=False)
    'mixed_float16'
    >>> device.auto_precision(cpu_flags=["avx2"], gpu_capabilities=[(6, 1)], tpu=False)
    'float32'
    """
    if tpu is None or gpu_capabilities is None:
        import tensorflow as tf

        if tpu is None:
            tpu = bool(tf.config.list_logical_devices("TPU"))
        if gpu_capabilities is None:
            gpu_capabilities = [c for c in (_capability(g) for g in tf.config.list_physical_devices("GPU")) if c]
    if tpu:
        return "mixed_bfloat16"
    if any(tuple(c) >= (7, 0) for c in gpu_capabilities):
        return "mixed_float16"
    flags = set(_cpu_flags() if cpu_flags is None else cpu_flags)
    if flags & {"avx512_bf16", "amx_bf16"}:
        return "mixed_bfloat16"
    return "float32"


def _capability(gpu: Any) -> tuple[int, int] | None:
    import tensorflow as tf

    try:
        cc = tf.config.experimental.get_device_details(gpu).get("compute_capability")
    except (RuntimeError, ValueError):
        return None
    return tuple(cc) if cc else None  # type: ignore[return-value]


#: CPU flags that decide or explain the fastest precision (shown by ``info()``).
_PRECISION_FLAGS = frozenset({"avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_tile", "amx_int8"})


def _cpu_flags_from_machine() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _cpu_flags() -> set[str]:
    """The CPU's flags, less those a ``ONEDNN_MAX_CPU_ISA`` cap keeps oneDNN from using."""
    flags = _cpu_flags_from_machine()
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").upper()
    if not any(isa in cap for isa in ("BF16", "AMX", "AVX10", "ALL")):  # e.g. AVX2, AVX512_CORE_VNNI
        flags -= {"avx512_bf16", "amx_bf16", "amx_tile", "amx_int8", "avx512_fp16"}  # bfloat16 convs fail there
    if not cap.startswith(("AVX512", "AVX10", "ALL")):
        flags = {f for f in flags if not f.startswith("avx512")}
    return flags


def resolve_precision(precision: str | None) -> str | None:
    """Check a ``precision`` option; ``"auto"`` becomes [`auto_precision`][visionkit.device.auto_precision]'s choice."""
    V.one_of("precision", precision, (*PRECISIONS, None))
    return auto_precision() if precision == "auto" else precision


@contextlib.contextmanager
def precision_scope(precision: str | None) -> Iterator[str]:
    """Build models under a Keras dtype policy, then put the global policy back.

    Parameters
    ----------
    precision : {"float32", "mixed_float16", "mixed_bfloat16", "auto"} or None
        ``None`` leaves the policy as it is.

    Yields
    ------
    str
        The policy in force inside the block.

    Examples
    --------
    >>> import keras
    >>> from visionkit import device
    >>> with device.precision_scope("mixed_bfloat16") as policy:
    ...     layer = keras.layers.Dense(2)
    >>> policy, layer.dtype_policy.name, keras.config.dtype_policy().name
    ('mixed_bfloat16', 'mixed_bfloat16', 'float32')
    """
    import keras

    resolved = resolve_precision(precision)
    before = keras.config.dtype_policy()
    if resolved is None:
        yield before.name
        return
    keras.config.set_dtype_policy(resolved)
    try:
        yield resolved
    finally:
        keras.config.set_dtype_policy(before)
