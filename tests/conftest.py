"""Shared test fixtures: small event files made on the spot."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from nucvn.core.events import IMAGE_SHAPE, finalstate_code, flavour
from nucvn.data.h5write import write_events

pytest_plugins = ("httpserver",)  # the local HTTP server fixtures ``server`` and ``serve`` (tests/httpserver.py)

# The pipeline tests commit in temporary git repositories; a fresh CI machine has no git identity.
for _key, _value in {
    "GIT_AUTHOR_NAME": "nucvn tests",
    "GIT_AUTHOR_EMAIL": "tests@nucvn.invalid",
    "GIT_COMMITTER_NAME": "nucvn tests",
    "GIT_COMMITTER_EMAIL": "tests@nucvn.invalid",
    "DVC_NO_ANALYTICS": "1",
}.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """Tests use tiny models: one intra-op thread is as fast, and does not stall when the two CPU
    cores of CI are shared with subprocesses the tests start."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_events(n: int, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``n`` events with sparse random images and valid, mutually consistent metadata."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, *IMAGE_SHAPE), dtype=np.uint8)
    hits = rng.random(images.shape) < 0.02
    images[hits] = rng.integers(1, 256, size=int(hits.sum()), dtype=np.uint8)
    nu = rng.uniform(0.5, 20.0, n).astype(np.float32)
    lep = (nu * rng.uniform(0.0, 1.0, n)).astype(np.float32)
    interaction = rng.integers(0, 16, n).astype(np.uint32)
    fl = flavour(interaction)
    group = np.where(fl == 0, 0, np.where(fl == 1, 1, 2))
    fs = finalstate_code(group, rng.integers(0, 4, n), rng.integers(0, 4, n)).astype(np.uint32)
    fs[fl == 4] = 48
    fs[fl == -1] = 49
    meta: dict[str, np.ndarray] = {
        "nuenergy": nu,
        "lepenergy": lep,
        "interaction": interaction,
        "finalstate": fs,
        "finalstateprong": fs.copy(),
        "parent": rng.integers(0, 4, n).astype(np.uint32),
        "particles": rng.integers(0, 65536, n).astype(np.uint32),
        "vtxx": rng.uniform(-700, 700, n),
        "vtxy": rng.uniform(-700, 700, n),
        "vtxz": rng.uniform(0, 5900, n),
        "run": np.full(n, 1000 + seed, dtype=np.uint32),
        "subrun": np.zeros(n, dtype=np.uint32),
        "evt": np.arange(n, dtype=np.uint32),
        "cycle": np.zeros(n, dtype=np.int32),
        "subevt": np.ones(n, dtype=np.uint16),
    }
    return images, meta


@pytest.fixture
def make_event_file(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_event_file(name, n, seed)`` writes a valid random event file."""

    def _make(name: str = "neutrino1.h5", n: int = 50, seed: int = 0, directory: Path | None = None) -> Path:
        images, meta = random_events(n, seed)
        return write_events((directory or tmp_path) / name, images, meta)

    return _make
