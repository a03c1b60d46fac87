"""Physics of the detector half of the fast simulation, with particle guns (docs/simulation.md)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from particle import Particle

from nucvn.sim.checks import GUN_Z0 as Z0
from nucvn.sim.checks import hit_planes
from nucvn.sim.checks import particle_gun as gun
from nucvn.sim.detector import Detector, particle_kind
from nucvn.sim.detector_params import MUON_RANGE_CM, MUON_RANGE_T_MEV, DetectorParams
from nucvn.sim.geometry import PLANE_PITCH
from nucvn.sim.particles import PARTICLE_DTYPE, GeneratedBatch
from nucvn.sim.propagate import CAT_SHOWER, CAT_TRACK, KIND_MUON, KIND_NEUTRON, KIND_PI0
from nucvn.sim.readout import mip_counts
from nucvn.sim.tracks import kinetic_from_range, range_cm


@pytest.fixture(scope="module")
def quiet() -> Detector:
    """Detector without random noise hits (so hit extents measure the particle)."""
    return Detector(DetectorParams(noise_hits_per_view=0.0))


@pytest.fixture(scope="module")
def default() -> Detector:
    return Detector()


def test_range_table_anchors() -> None:
    """docs/simulation.md: muon 1 GeV → 4.8 m, 2 GeV → 9.5 m; proton 0.1 GeV → 8 cm, 0.5 GeV → 1.2 m."""
    lt = np.log(np.array(MUON_RANGE_T_MEV))
    lr = np.log(np.array(MUON_RANGE_CM))
    mmu = float(Particle.from_pdgid(13).mass)
    mp = float(Particle.from_pdgid(2212).mass)
    assert range_cm(1000.0, mmu, mmu, lt, lr) == pytest.approx(480.0, rel=0.03)
    assert range_cm(2000.0, mmu, mmu, lt, lr) == pytest.approx(950.0, rel=0.03)
    assert range_cm(100.0, mp, mmu, lt, lr) == pytest.approx(8.0, rel=0.15)
    assert range_cm(500.0, mp, mmu, lt, lr) == pytest.approx(120.0, rel=0.1)
    assert kinetic_from_range(range_cm(345.0, mp, mmu, lt, lr), mp, mmu, lt, lr) == pytest.approx(345.0, rel=1e-9)


def test_particle_kinds_from_particle_package() -> None:
    assert particle_kind(13)[0] == KIND_MUON and particle_kind(13)[2] == pytest.approx(105.658, rel=1e-4)
    assert particle_kind(-13)[1] == 1 and particle_kind(13)[1] == -1
    assert particle_kind(2112)[0] == KIND_NEUTRON
    assert particle_kind(111)[0] == KIND_PI0
    assert particle_kind(211)[3] == CAT_TRACK and particle_kind(22)[3] == CAT_SHOWER
    assert particle_kind(321)[3] != CAT_TRACK  # a kaon is transported but is not a counted track
    assert particle_kind(14)[0] == 0 and particle_kind(1000060120)[0] == 0


@pytest.mark.parametrize(("energy_gev", "range_m"), [(1.0, 4.8), (2.0, 9.5)])
def test_contained_muon_track_length_matches_csda_range(quiet: Detector, energy_gev: float, range_m: float) -> None:
    res = quiet.simulate(gun(13, energy_gev, 200), seed=11)
    ends = np.array([(p.max() + 0.5) * PLANE_PITCH for p in hit_planes(res)])
    length = ends - Z0
    assert np.median(length) == pytest.approx(range_m * 100.0, rel=0.10)
    assert np.mean(length) == pytest.approx(range_m * 100.0, rel=0.10)


def test_mean_photon_conversion_distance(quiet: Detector) -> None:
    res = quiet.simulate(gun(22, 1.0, 3000), seed=5)
    first = np.array([(p.min() + 0.5) * PLANE_PITCH for p in hit_planes(res) if p.size])
    expected = 9.0 / 7.0 * quiet.params.radiation_length_cm
    assert np.mean(first - Z0) == pytest.approx(expected, rel=0.10)
    electrons = quiet.simulate(gun(11, 1.0, 500), seed=5)
    e_first = np.array([(p.min() + 0.5) * PLANE_PITCH for p in hit_planes(electrons)])
    assert np.mean(e_first - Z0) < 0.25 * expected  # electrons start showering at once: no gap


def test_pixel_sum_linear_in_visible_energy(default: Detector) -> None:
    energies = np.array([0.2, 0.5, 1.0, 1.5, 2.0])
    sums = []
    for k, e in enumerate(energies):
        res = default.simulate(gun(11, e, 250, direction=(0.1, 0.05, 1.0)), seed=100 + k)
        sums.append(res.images.reshape(250, -1).sum(axis=1, dtype=np.int64).mean())
    sums = np.array(sums)
    slope, intercept = np.polyfit(energies, sums, 1)
    resid = sums - (slope * energies + intercept)
    assert np.max(np.abs(resid) / sums) < 0.05
    assert abs(intercept) < 0.1 * slope  # proportional: pixel sum ∝ visible energy
    assert 1000.0 < slope < 4000.0  # ≈ 2 counts per visible MeV


def test_single_mip_pixel_values(default: Detector) -> None:
    mid = mip_counts(np.full(5000, 775.0), default._P, seed=1)
    assert 20.0 <= np.median(mid) <= 30.0
    far = mip_counts(np.full(5000, 1550.0), default._P, seed=2)
    near = mip_counts(np.zeros(5000), default._P, seed=3)
    assert np.median(far) < np.median(mid) < np.median(near)  # fibre attenuation
    assert np.mean(far > 0) > 0.97  # S/N ≈ 10 at the far end: MIPs are not lost
    res = default.simulate(gun(13, 1.0, 100, direction=(0.0, 0.0, 1.0)), seed=3)
    values = res.images[res.images > 0]
    assert 15.0 <= np.median(values) <= 35.0


def test_saturation_at_255(default: Detector) -> None:
    res = default.simulate(gun(11, 20.0, 20), seed=4)
    assert res.images.max() == 255


def test_proton_bragg_peak(quiet: Detector) -> None:
    res = quiet.simulate(gun(2212, 0.3, 300, direction=(0.0, 0.0, 1.0)), seed=8)
    first, last = [], []
    for i in range(300):
        v, row, col = np.nonzero(res.images[i])
        if row.size < 4 or res.prong_evis_mev[i] < 250:  # keep protons that did not interact
            continue
        planes = 2 * row + v
        vals = res.images[i][v, row, col]
        first.append(vals[planes == planes.min()].mean())
        last.append(vals[planes == planes.max()].mean())
    assert len(first) > 50
    assert np.mean(last) > 1.5 * np.mean(first)


def test_pi0_gives_two_showers_and_neutron_is_sparse(quiet: Detector) -> None:
    res = quiet.simulate(gun(111, 1.0, 300), seed=9)
    _, showers = res.counts(300, min_visible_mev=10.0)
    assert np.mean(showers == 2) > 0.8
    n = quiet.simulate(gun(2112, 0.5, 300), seed=10)
    assert 0.2 * 500.0 < np.mean(n.prong_evis_mev) < 0.7 * 500.0
    first = np.array([(p.min() + 0.5) * PLANE_PITCH for p in hit_planes(n) if p.size])
    assert np.median(first - Z0) > 40.0  # invisible until it scatters (≈ 1 m mean free path)


def test_window_origin_and_centring(quiet: Detector) -> None:
    res = quiet.simulate(gun(13, 1.0, 100, direction=(0.3, -0.2, 1.0)), seed=12)
    assert np.all(res.firstplane % 2 == 0)
    planes = hit_planes(res)
    assert all(p.min() - res.firstplane[i] in (1, 2) for i, p in enumerate(planes))
    for view in (0, 1):
        cols = [np.nonzero(res.images[i, view])[1] for i in range(100)]
        centre = np.mean([c.mean() for c in cols])
        assert 30.0 < centre < 50.0


def test_plane_stride_one_fills_alternate_rows() -> None:
    det = Detector(DetectorParams(plane_stride=1, noise_hits_per_view=0.0))
    res = det.simulate(gun(13, 2.0, 20), seed=1)
    rows0 = np.nonzero(res.images[:, 0].sum(axis=2).sum(axis=0))[0]
    rows1 = np.nonzero(res.images[:, 1].sum(axis=2).sum(axis=0))[0]
    assert np.all(rows0 % 2 == 0) and np.all(rows1 % 2 == 1)
    assert rows0.max() == 98  # a 2 GeV muon (9.5 m) crosses the whole 6.7 m window


def test_same_seed_same_images(default: Detector) -> None:
    batch = gun(211, np.linspace(0.2, 3.0, 50), 50, direction=(0.2, 0.1, 1.0))
    a = default.simulate(batch, seed=77)
    b = default.simulate(batch, seed=77)
    c = default.simulate(batch, seed=78)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.prong_cells, b.prong_cells)
    assert not np.array_equal(a.images, c.images)


def test_noise_hits_present(default: Detector) -> None:
    empty = GeneratedBatch(n_events=200, particles=np.zeros(0, PARTICLE_DTYPE), truth={})
    res = default.simulate(empty, seed=3)
    per_event = (res.images > 0).reshape(200, -1).sum(axis=1)
    assert per_event.mean() == pytest.approx(2 * default.params.noise_hits_per_view, rel=0.2)


def test_params_are_validated() -> None:
    from nucvn.core.errors import NucvnError

    with pytest.raises(NucvnError, match="plane_stride"):
        DetectorParams(plane_stride=3)  # type: ignore[arg-type]
    with pytest.raises(NucvnError, match="radiation_length_cm"):
        dataclasses.replace(DetectorParams(), radiation_length_cm=0.0)
