"""Same parameters, same events, on every CPU: the simulated datasets do not depend on the SIMD
code paths numpy and numba pick, and their checksum is pinned (a released sample's checksum)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from nucvn.sim.simulate import CHUNK_EVENTS, simulate_files

# numpy's other code paths, as on a CPU without AVX-512; numba compiles for a generic x86-64.
NO_AVX512 = {
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR X86_V4",
    "NUMBA_CPU_NAME": "generic",
}
GOLDEN_SHA256 = "20525e00b67e2e239675777eaef181341be23c3892b3ea18a9ba827e02dabe4c"
"""sha256 of :func:`datasets_sha256` of ``simulate_files(files=1, events=300, seed=2026)``. Changing the
simulation's physics or its random streams changes it: update it then, on purpose, and say why."""


def datasets_sha256(path: Path) -> str:
    """One sha256 over every dataset of an HDF5 file: name, dtype, shape and bytes, in name order
    (independent of HDF5's layout and library version, unlike the file's own bytes)."""
    h = hashlib.sha256()
    with h5py.File(path, "r") as f:
        names: list[str] = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        for name in sorted(names):
            arr = np.ascontiguousarray(f[name][()])
            h.update(f"{name}|{arr.dtype.str}|{arr.shape}|".encode())
            h.update(arr.tobytes())
    return h.hexdigest()


def _simulate(out: Path, env: dict[str, str], events: int) -> str:
    cmd = [sys.executable, "-m", "nucvn", "simulate", "--out", str(out), "--files", "1", "--events", str(events),
           "--seed", "1", "--no-progress"]
    done = subprocess.run(cmd, env=os.environ | env, check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return datasets_sha256(out / "neutrino1.h5")


def test_same_events_whatever_the_simd_code_paths(tmp_path: Path) -> None:
    """Before the portable functions, 2 of the first 1,000 events of seed 1 differed this way."""
    events = 2 * CHUNK_EVENTS
    plain = _simulate(tmp_path / "plain", {}, events)
    generic = _simulate(tmp_path / "generic", NO_AVX512, events)
    assert plain == generic


def test_golden_checksum_of_a_tiny_simulation(tmp_path: Path) -> None:
    (path,) = simulate_files(tmp_path, files=1, events=300, seed=2026, progress=False)
    assert datasets_sha256(path) == GOLDEN_SHA256, datasets_sha256(path)


def test_a_chunk_that_draws_differently_leaves_the_next_chunk_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should one platform ever draw one more random number in a chunk, the events of the following
    chunks stay the same: the generator restarts its stream every chunk (with one stream per file,
    as before, every later event would change)."""
    from nucvn.sim import simulate as sim
    from nucvn.sim.generator import Generator

    n = 2 * CHUNK_EVENTS
    base = sim.simulate_events(n, seed=5, file_index=1)
    original = Generator.generate
    calls = {"n": 0}

    def generate_drawing_once_more(self: Generator, n_events: int):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 1:
            self._rng.random()
        return original(self, n_events)

    monkeypatch.setattr(Generator, "generate", generate_drawing_once_more)
    changed = sim.simulate_events(n, seed=5, file_index=1)
    first, second = slice(0, CHUNK_EVENTS), slice(CHUNK_EVENTS, n)
    assert not np.array_equal(changed.images[first], base.images[first])
    assert np.array_equal(changed.images[second], base.images[second])
    assert np.array_equal(changed.meta["nuenergy"][second], base.meta["nuenergy"][second])
