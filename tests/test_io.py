from __future__ import annotations

import json

import numpy as np
import pytest

from visionkit._io import atomic_path, write_json


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("first")
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half-written")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "first"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_write_json_numpy(tmp_path):
    path = write_json(tmp_path / "m.json", {"acc": np.float32(0.5), "n": np.int64(3), "v": np.arange(2)})
    assert json.loads(path.read_text()) == {"acc": 0.5, "n": 3, "v": [0, 1]}
