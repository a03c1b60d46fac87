"""Atomic writers: a failed write leaves the previous file intact and no temporary behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nucvn.core.atomic import atomic_write, write_csv, write_json


def test_failed_write_keeps_previous_content_and_leaves_no_temporary(tmp_path: Path) -> None:
    dest = write_json({"a": 1}, tmp_path / "m.json")

    def broken(p: Path) -> None:
        p.write_text('{"a": ')
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(dest, broken)
    assert json.loads(dest.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_json_is_strict_with_nan_numpy_and_paths(tmp_path: Path) -> None:
    out = write_json({"x": float("nan"), "y": np.float32(0.5), "n": np.int64(3), "p": Path("a/b"), "l": [np.inf, 1]},
                     tmp_path / "deep" / "m.json")
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"x": None, "y": 0.5, "n": 3, "p": "a/b", "l": [None, 1]}


def test_csv_round_trip(tmp_path: Path) -> None:
    table = pd.DataFrame({"threshold": [0.1, 0.123456789], "n": [1, 2]})
    got = pd.read_csv(write_csv(table, tmp_path / "t.csv"))
    assert got["n"].tolist() == [1, 2] and got["threshold"].iloc[1] == pytest.approx(0.123457)


def test_atomic_dir_replaces_whole_and_keeps_old_on_error(tmp_path: Path) -> None:
    from nucvn.core.atomic import atomic_dir

    out = tmp_path / "plots"
    atomic_dir(out, lambda d: [(d / "a.csv").write_text("1"), (d / "b.csv").write_text("2")])
    atomic_dir(out, lambda d: (d / "a.csv").write_text("3"))
    assert sorted(p.name for p in out.iterdir()) == ["a.csv"] and (out / "a.csv").read_text() == "3"

    def fail(d: Path) -> None:
        (d / "a.csv").write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_dir(out, fail)
    assert (out / "a.csv").read_text() == "3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plots"]
