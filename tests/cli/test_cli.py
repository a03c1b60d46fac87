"""The command line as a person runs it: a subprocess, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.image import imread


def _nucvn(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nucvn", *args], capture_output=True, text=True, cwd=cwd, timeout=120,
                          check=False)


def test_inspect_summary(make_event_file: Callable[..., Path]) -> None:
    a = make_event_file("neutrino1.h5", n=40, seed=1)
    b = make_event_file("neutrino2.h5", n=60, seed=2)
    res = _nucvn("inspect", str(a), str(b), "--json")
    assert res.returncode == 0, res.stderr
    s = json.loads(res.stdout)
    assert s["n_events"] == 100
    assert sum(s["interaction"].values()) == 100
    assert sum(s["flavour"].values()) == 100
    text = _nucvn("inspect", str(a.parent / "neutrino*.h5"))
    assert text.returncode == 0 and "events: 100" in text.stdout and "numu CC fraction" in text.stdout


def test_inspect_display_draws_event(tmp_path: Path, make_event_file: Callable[..., Path]) -> None:
    path = make_event_file(n=5)
    out = tmp_path / "ev.png"
    res = _nucvn("inspect", str(path), "--display", "3", "--out", str(out))
    assert res.returncode == 0, res.stderr
    img = imread(out)
    assert img.shape[1] > img.shape[0] > 200
    assert np.std(img[..., :3]) > 0.05


def test_inspect_bad_input_is_one_clear_line(tmp_path: Path, make_event_file: Callable[..., Path]) -> None:
    missing = _nucvn("inspect", str(tmp_path / "neutrino9.h5"))
    assert missing.returncode == 2
    assert "neutrino9.h5: file does not exist" in missing.stderr and "Traceback" not in missing.stderr
    path = make_event_file(n=5)
    beyond = _nucvn("inspect", str(path), "--display", "5")
    assert beyond.returncode == 2 and "events 0..4" in beyond.stderr


def test_output_piped_into_head_ends_without_traceback(make_event_file: Callable[..., Path]) -> None:
    """``nucvn inspect --json | head``: the reader closes the pipe before (``true``) or while
    (``head -c 1``) nucvn writes; neither may end in a BrokenPipeError traceback."""
    path = make_event_file(n=40)
    for reader, expected in (("true", ""), ("head -c 1", "{")):
        cmd = f"'{sys.executable}' -m nucvn inspect '{path}' --json | {reader}"
        res = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=120,
                             check=False)
        assert res.stdout == expected
        assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
        assert res.returncode in (0, 141)
