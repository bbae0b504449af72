"""Shared pytest configuration: quiet TensorFlow, a private cache, data fixtures."""

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
