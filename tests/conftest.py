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
