"""Shared pytest configuration: quiet TensorFlow, a private cache, data fixtures.

Float tolerances (the one rule for every test; CI must pass on every x86-64 CPU)
-------------------------------------------------------------------------------
oneDNN picks other kernels, and so other summation orders, on AVX2, AVX-512,
AVX-512 BF16/AMX CPUs and for other batch sizes, so a float32 conv/matmul output
is not bit-stable across machines. Compare by dtype and operation:

* exact (``assert_array_equal``): copies, flips, slicing, uint8 images, integer
  counts, and the *same* computation repeated on the same input, shapes and batch;
* float32 conv/matmul/gradient results reached two different ways (another batch
  size, a hand-written reference, another graph, tiles, a flipped input):
  ``rtol=1e-4`` plus ``atol=1e-4 * np.abs(expected).max()`` (the error of a sum of
  many products scales with the summands, not with the element); maps normalised
  to [0, 1]: ``atol=1e-4`` (2e-4 after a long chain such as Score-CAM);
* short float32 sums (a few terms) and elementwise maths: ``rtol=1e-5``/``atol=1e-6``;
* bfloat16/float16 outputs: ``rtol`` of 1e-2 or more; prefer float32 in unit tests.

Doctests print shapes, dtypes, booleans or exact values, never conv-derived floats.
Check a change on a machine without AVX-512 by emulating one:
``ONEDNN_MAX_CPU_ISA=AVX2 python -m pytest tests`` (``ONEDNN_VERBOSE=1`` shows the ISA).
There, tests that train in bfloat16 skip (fixture ``bfloat16_kernels``): TensorFlow still
sends them to oneDNN, which the cap stops; a real AVX2 CPU runs them in Eigen.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep visionkit's dataset cache out of the user's home during tests."""
    if "VISIONKIT_TEST_CACHE" in os.environ:
        os.environ["VISIONKIT_CACHE"] = os.environ["VISIONKIT_TEST_CACHE"]
    else:
        os.environ["VISIONKIT_CACHE"] = str(tmp_path_factory.mktemp("visionkit-cache"))


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The folder of real datasets named by VISIONKIT_DATA; skip the test without it."""
    value = os.environ.get("VISIONKIT_DATA")
    if not value or not Path(value).is_dir():
        pytest.skip("VISIONKIT_DATA is not set to a folder of real datasets")
    return Path(value)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture
def bfloat16_kernels() -> None:
    """Skip a test that trains in bfloat16 when ``ONEDNN_MAX_CPU_ISA`` caps oneDNN below it.

    TensorFlow sends bfloat16 convolutions to oneDNN when the CPU has AVX-512 (and to
    Eigen on an AVX2-only CPU), so an emulated AVX2 CPU (``ONEDNN_MAX_CPU_ISA=AVX2`` on
    an AVX-512 machine) fails them with "could not create a primitive descriptor"; a
    real AVX2 CPU does not.
    """
    cap = (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA") or "ALL").upper()
    if not any(isa in cap for isa in ("BF16", "AMX", "AVX10", "ALL")) and os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0":
        pytest.skip(f"ONEDNN_MAX_CPU_ISA={cap} emulates a CPU whose bfloat16 convolutions TensorFlow would run in Eigen")
