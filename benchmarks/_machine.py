"""The machine a benchmark figure was measured on, in one line (shared by every script).

float32 speed and even the last digits of results depend on the CPU's vector units
(AVX2, AVX-512, AVX512-BF16, AMX) and on the precision, so every benchmark prints
:func:`describe` in its header and :func:`tag` beside each result row.

Import it from a script in this folder (``sys.path`` holds the script's folder)::

    from _machine import describe, tag
    print(describe())                                   # header
    print(f"... {wall:.1f} s  {tag('mixed_bfloat16')}")  # a result row
"""

from __future__ import annotations

import functools
import os

#: The CPU flags that decide float32/bfloat16 speed, in the order shown.
FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


@functools.cache
def _cpu() -> tuple[str, tuple[str, ...]]:
    """(model name, the FLAGS present) read from ``/proc/cpuinfo``, through ``visionkit.device.info()``."""
    from visionkit import device

    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), model)
    except OSError:
        pass
    present = set(device.info()["cpu_features"])
    return model, tuple(f for f in FLAGS if f in present)


def tag(precision: str | None = None) -> str:
    """A short label for a result row: ``[cpu avx2+avx512f+avx512_bf16, mixed_bfloat16]``.

    ``precision`` defaults to the global Keras dtype policy. A ``ONEDNN_MAX_CPU_ISA``
    cap (an emulated smaller CPU) is shown too.
    """
    import keras

    _, flags = _cpu()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    cap = f" capped {isa}" if isa else ""
    return f"[cpu {'+'.join(flags) or 'no avx2'}{cap}, {precision or keras.config.dtype_policy().name}]"


def describe(precision: str | None = None) -> str:
    """One header line: CPU model, cores, vector flags, precision, auto precision, TF/Keras."""
    import keras
    import tensorflow as tf

    from visionkit import device

    model, flags = _cpu()
    shown = ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in FLAGS)
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return (f"machine: {model}, {os.cpu_count()} cores; {shown}"
            f"{f'; ONEDNN_MAX_CPU_ISA={isa}' if isa else ''}; precision {precision or keras.config.dtype_policy().name}"
            f" (auto here: {device.auto_precision()}); TensorFlow {tf.__version__}, Keras {keras.__version__}")
