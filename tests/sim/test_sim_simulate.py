"""End-to-end fast simulation: files, determinism across workers, event-level physics, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from nucvn.core.errors import NucvnError
from nucvn.core.events import FS_COSMIC, finalstate_group, n_showers, numu_cc
from nucvn.data.h5io import META_DTYPES, open_events
from nucvn.sim.detector_params import MUON_RANGE_CM, MUON_RANGE_T_MEV
from nucvn.sim.geometry import HALF_WIDTH, LENGTH, PLANE_PITCH
from nucvn.sim.simulate import GENERATOR_NAME, SimulatedEvents, simulate_events, simulate_files

FILE_KEYS = sorted(META_DTYPES)


@pytest.fixture(scope="module")
def files_1w(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("sim1")
    return simulate_files(out, files=2, events=120, seed=7, workers=1, progress=False)


@pytest.fixture(scope="module")
def numu_sample() -> SimulatedEvents:
    from nucvn.sim.generator_params import GeneratorParams

    return simulate_events(400, seed=21, generator_params=GeneratorParams(composition={"numu_cc": 1.0}))


def _read(path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with h5py.File(path, "r") as f:
        return f["cvnmap"][()], {k: f["neutrino"][k][()] for k in f["neutrino"]}


def test_files_read_back_with_every_key(files_1w: list[Path]) -> None:
    assert [p.name for p in files_1w] == ["neutrino1.h5", "neutrino2.h5"]
    reader = open_events(files_1w)
    assert reader.n_events == 240
    assert sorted(reader.common_keys()) == FILE_KEYS
    for info in reader.files:
        assert info.simulated
        assert info.attrs["generator"] == GENERATOR_NAME
        assert info.attrs["layout"] == "view,plane,cell"
        assert int(info.attrs["plane_stride"]) == 2 and int(info.attrs["seed"]) == 7
    meta = reader.read_metadata()
    ident = meta[["run", "subrun", "evt", "cycle", "subevt"]].astype(np.int64)
    assert not ident.duplicated().any()  # identity unique per event
    chunk = next(reader.iter_chunks(64))
    assert chunk.images is not None and chunk.images.shape == (64, 2, 100, 80)
    assert (chunk.images > 0).reshape(64, -1).sum(axis=1).min() > 0


def test_byte_identical_for_any_worker_count(files_1w: list[Path], tmp_path: Path) -> None:
    paths = simulate_files(tmp_path, files=2, events=120, seed=7, workers=2, progress=False)
    for a, b in zip(files_1w, paths, strict=True):
        img_a, meta_a = _read(a)
        img_b, meta_b = _read(b)
        assert np.array_equal(img_a, img_b)
        assert meta_a.keys() == meta_b.keys()
        for key in meta_a:
            assert np.array_equal(meta_a[key], meta_b[key]), key
    img_1, _ = _read(files_1w[0])
    img_2, _ = _read(files_1w[1])
    assert not np.array_equal(img_1, img_2)  # files get different seeds


def test_finalstate_codes_consistent_with_interaction(files_1w: list[Path]) -> None:
    meta = open_events(files_1w).read_metadata()
    code = meta["interaction"].to_numpy()
    fs = meta["finalstate"].to_numpy()
    fsp = meta["finalstateprong"].to_numpy()
    numu = numu_cc(code)
    assert np.all(finalstate_group(fs[numu]) == 0)
    assert np.all(fs[code == 14] == FS_COSMIC)
    assert np.all(finalstate_group(fs[code == 13]) == 2)
    # prong counts use a stricter rule than truth counts: never more tracks or showers
    ok = fs < FS_COSMIC
    assert np.all((fsp[ok] % 16) // 4 <= (fs[ok] % 16) // 4) and np.all(fsp[ok] % 4 <= fs[ok] % 4)
    assert np.mean(fsp[ok] != fs[ok]) > 0.0


def test_nue_cc_events_carry_a_shower() -> None:
    from nucvn.sim.generator_params import GeneratorParams

    sim = simulate_events(150, seed=3, generator_params=GeneratorParams(composition={"nue_cc": 1.0}))
    assert np.mean(n_showers(sim.meta["finalstate"]) >= 1) > 0.95


def _muon_z_extent(sim: SimulatedEvents) -> np.ndarray:
    """Per event, how far along z the leading muon travels before stopping or leaving the box."""
    out = np.zeros(len(sim))
    parts = sim.particles
    mu = np.flatnonzero(np.abs(parts["pdg"]) == 13)
    _, first = np.unique(parts["event"][mu], return_index=True)
    for j in mu[first]:
        p = np.array([parts["px"][j], parts["py"][j], parts["pz"][j]])
        d = p / np.linalg.norm(p)
        t_mev = (parts["e"][j] - 0.10566) * 1000.0
        rng = float(np.exp(np.interp(np.log(t_mev), np.log(MUON_RANGE_T_MEV), np.log(MUON_RANGE_CM))))
        pos = np.array([parts["x"][j], parts["y"][j], parts["z"][j]])
        lo, hi = np.array([-HALF_WIDTH, -HALF_WIDTH, 0.0]), np.array([HALF_WIDTH, HALF_WIDTH, LENGTH])
        with np.errstate(divide="ignore"):
            exits = np.where(d > 0, (hi - pos) / d, np.where(d < 0, (lo - pos) / d, np.inf))
        out[parts["event"][j]] = min(rng, exits.min()) * d[2]
    return out


def test_high_energy_numu_cc_shows_a_long_track(numu_sample: SimulatedEvents) -> None:
    sim = numu_sample
    rows = np.stack([(sim.images[:, v].max(axis=2) > 0).sum(axis=1) for v in (0, 1)], axis=1).max(axis=1)
    reach = _muon_z_extent(sim)
    sel = (sim.meta["nuenergy"] > 3.0) & (reach > 65 * PLANE_PITCH)  # room for 30+ planes per view
    assert sel.sum() > 30
    assert np.mean(rows[sel] >= 30) > 0.95
    short = reach < 20 * PLANE_PITCH  # muons that stop or leave early do not make 30 planes alone
    assert np.mean(rows[short] >= 30) < np.mean(rows[sel] >= 30)


def test_composition_spectrum_and_cosmics() -> None:
    from nucvn.sim.generator_params import GeneratorParams

    sim = simulate_events(600, seed=5,
                          generator_params=GeneratorParams(composition={"numu_cc": 0.5, "nc": 0.3, "cosmic": 0.2}))
    code = sim.meta["interaction"]
    for frac, sel in ((0.5, numu_cc(code)), (0.3, code == 13), (0.2, code == 14)):
        sigma = np.sqrt(frac * (1 - frac) / 600)
        assert abs(sel.mean() - frac) < 4 * sigma
    assert np.all(sim.meta["finalstate"][code == 14] == FS_COSMIC)
    # cosmic windows start high up: the muon enters from the top of the detector
    assert np.median(sim.meta["vtxy"][code == 14]) > 0.9 * HALF_WIDTH


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(NucvnError, match="events"):
        simulate_files(tmp_path, files=1, events=-3, seed=1, progress=False)
    with pytest.raises(NucvnError, match="workers"):
        simulate_files(tmp_path, files=1, events=3, seed=1, workers=0, progress=False)
    with pytest.raises(NucvnError, match="bogus"):
        simulate_files(tmp_path, files=1, events=3, seed=1, composition={"bogus": 1.0}, progress=False)
    assert not list(tmp_path.glob("*.h5"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nucvn", *args], check=False, capture_output=True, text=True,
                          timeout=300)


def test_cli_simulate_and_errors(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    ok = _cli("simulate", "--out", str(out), "--files", "1", "--events", "30", "--seed", "4",
              "--composition", "numu_cc=0.9,nc=0.1", "--no-progress")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    reader = open_events(out / "neutrino1.h5")
    assert reader.n_events == 30
    assert set(reader.read_metadata()["interaction"]) <= {0, 1, 2, 3, 13}
    bad = _cli("simulate", "--out", str(out), "--files", "1", "--events", "-5", "--seed", "4")
    assert bad.returncode == 2 and "--events" in bad.stderr
    bad = _cli("simulate", "--out", str(out), "--files", "1", "--events", "5", "--seed", "4", "--composition",
               "numu_cc=0.5,nc=0.2")
    assert bad.returncode == 2 and "--composition" in bad.stderr and "sum" in bad.stderr
