"""Detector systematics: a varied detector response re-simulates the same events and transport.

A variation (e.g. +5 % calibration) must differ from the nominal sample only by the response, so
that the shift of a selection efficiency is not drowned by new generator or transport statistics.
The detector reseeds numba's generator per event and per stream (transport, readout) from a
portable hash; these tests would fail with one shared stream, where a readout parameter changes
how many random numbers each event draws and so every later event's transport.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nucvn.core.errors import NucvnError
from nucvn.sim.checks import particle_gun as gun
from nucvn.sim.detector import STREAM_READOUT, STREAM_TRANSPORT, Detector, DetectorResult, event_seed
from nucvn.sim.detector_params import SCALABLE_FIELDS, DetectorParams
from nucvn.sim.generator import Generator
from nucvn.sim.generator_params import GeneratorParams
from nucvn.sim.particles import GeneratedBatch
from nucvn.sim.simulate import CHUNK_EVENTS, SimulatedEvents, simulate_events
from nucvn.stage_params import DetectorResponseParams

N_EVENTS = 600  # more than one chunk, so the second chunk's streams are covered too
_M64 = (1 << 64) - 1


def _splitmix64(z: int) -> int:
    """Reference splitmix64 in Python integers (Steele, Lea & Flood 2014)."""
    z = (z + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _sums(images: np.ndarray) -> np.ndarray:
    return images.reshape(images.shape[0], -1).sum(axis=1, dtype=np.int64)


@pytest.fixture(scope="module")
def nominal() -> SimulatedEvents:
    return simulate_events(N_EVENTS, seed=13)


@pytest.fixture(scope="module")
def gain_up() -> SimulatedEvents:
    return simulate_events(N_EVENTS, seed=13, detector_params=DetectorParams().scaled({"gain_counts_per_pe": 1.05}))


@pytest.fixture(scope="module")
def batch() -> GeneratedBatch:
    return Generator(GeneratorParams(), 5).generate(300)


def test_event_seed_is_a_portable_splitmix64_hash() -> None:
    """The per-event seeds are fixed integers (same on every machine): splitmix64 chained over
    (batch seed, event, stream), low 32 bits."""
    assert _splitmix64(0) == 0xE220A8397B1DCDAF  # the published first splitmix64 output
    for seed, ev, stream in [(0, 0, 0), (1, 0, 1), (2**32 - 1, CHUNK_EVENTS - 1, 1), (123456789, 17, 0)]:
        expected = _splitmix64(_splitmix64(_splitmix64(seed) ^ ev) ^ stream) & 0xFFFFFFFF
        assert event_seed(seed, ev, stream) == expected
    assert event_seed(0, 0, 0) == 956087953
    seeds = {event_seed(7, ev, s) for ev in range(CHUNK_EVENTS) for s in (STREAM_TRANSPORT, STREAM_READOUT)}
    assert len(seeds) == 2 * CHUNK_EVENTS  # every event and stream gets its own seed


def test_gain_variation_keeps_events_and_scales_pixel_sums(nominal: SimulatedEvents, gain_up: SimulatedEvents) -> None:
    """+5 % calibration, same seed: identical generator truth and particles, identical hit pixels
    (the zero-suppression threshold is in photo-electrons, before the gain), and the pixel sum of
    non-saturated events rises by 5 % in total and event by event."""
    assert nominal.truth.keys() == gain_up.truth.keys()
    for key in nominal.truth:
        np.testing.assert_array_equal(nominal.truth[key], gain_up.truth[key], err_msg=key)
    np.testing.assert_array_equal(nominal.particles, gain_up.particles)
    for key in ("finalstate", "finalstateprong", "firstplane", "firstcellx", "firstcelly"):
        np.testing.assert_array_equal(nominal.meta[key], gain_up.meta[key], err_msg=key)  # transport-only
    assert np.array_equal(nominal.images > 0, gain_up.images > 0)
    flat_n = nominal.images.reshape(N_EVENTS, -1)
    flat_g = gain_up.images.reshape(N_EVENTS, -1)
    ok = (flat_n.max(axis=1) < 255) & (flat_g.max(axis=1) < 255)
    assert ok.sum() > N_EVENTS // 2
    s_n, s_g = _sums(nominal.images), _sums(gain_up.images)
    assert s_g[ok].sum() / s_n[ok].sum() == pytest.approx(1.05, abs=0.01)
    big = ok & (s_n >= 200)
    assert big.sum() > 100
    assert np.all(np.abs(s_g[big] / s_n[big] - 1.05) < 0.02)  # per event: same deposits, only rounding differs


@pytest.mark.parametrize("factors",
                         [{"noise_hits_per_view": 2.0}, {"pe_per_mip_far": 1.1}, {"attenuation_length_cm": 0.8}])
def test_readout_variation_leaves_transport_unchanged(batch: GeneratedBatch, factors: dict[str, float]) -> None:
    """More noise hits, more light or a shorter fibre attenuation length change the images (and
    how many random numbers each event's readout draws) but not one event's transport: visible
    energy and hit cells of every prong and the window origin stay identical. (A gain change draws
    no extra random numbers, so it is not a test of the streams; the gain test checks scaling.)"""
    n = batch.n_events
    a = Detector().simulate(batch, seed=9)
    b = Detector(DetectorParams().scaled(factors)).simulate(batch, seed=9)
    assert np.array_equal(a.prong_evis_mev, b.prong_evis_mev)
    assert np.array_equal(a.prong_cells, b.prong_cells)
    for key in ("firstplane", "firstcellx", "firstcelly"):
        assert np.array_equal(getattr(a, key), getattr(b, key)), key
    assert not np.array_equal(a.images, b.images)
    if "pe_per_mip_far" in factors:
        assert _sums(b.images).sum() / _sums(a.images).sum() == pytest.approx(1.1, abs=0.02)
    if "noise_hits_per_view" in factors:
        extra = (b.images > 0).sum() - (a.images > 0).sum()
        assert extra / (2 * n) == pytest.approx(DetectorParams().noise_hits_per_view, rel=0.25)


def _birks_ratio(pdg: int, kinetic_gev: float) -> tuple[float, DetectorResult, DetectorResult]:
    quiet = DetectorParams(noise_hits_per_view=0.0)
    shots = gun(pdg, kinetic_gev, 300)
    a = Detector(quiet).simulate(shots, seed=31)
    b = Detector(quiet.scaled({"birks_kb_cm_mev": 1.2})).simulate(shots, seed=31)
    return float(b.images.sum(dtype=np.int64) / a.images.sum(dtype=np.int64)), a, b


def test_birks_variation_quenches_protons_more_than_muons() -> None:
    """kB x1.2 with the light yield calibrated on MIPs: a minimum-ionising muon track keeps its
    pixel sum, a heavily ionising proton (Bragg peak) loses light; the transport is the same."""
    r_p, p_nom, p_var = _birks_ratio(2212, 0.3)
    r_mu, mu_nom, mu_var = _birks_ratio(13, 1.0)
    assert r_mu == pytest.approx(1.0, abs=0.003)
    assert r_p < 0.995 and r_p < r_mu - 0.008
    assert np.array_equal(p_nom.firstplane, p_var.firstplane) and np.array_equal(mu_nom.firstplane, mu_var.firstplane)
    assert np.all(p_var.prong_evis_mev <= p_nom.prong_evis_mev)  # less visible (quenched) energy, same deposits


def test_scaled_multiplies_named_fields_only() -> None:
    base = DetectorParams()
    varied = base.scaled({"gain_counts_per_pe": 1.05, "birks_kb_cm_mev": 1.2})
    assert varied.gain_counts_per_pe == pytest.approx(base.gain_counts_per_pe * 1.05, rel=1e-15)
    assert varied.birks_kb_cm_mev == pytest.approx(base.birks_kb_cm_mev * 1.2, rel=1e-15)
    assert dataclasses.replace(varied, gain_counts_per_pe=base.gain_counts_per_pe,
                               birks_kb_cm_mev=base.birks_kb_cm_mev) == base
    assert base.scaled({}) == base and base.gain_counts_per_pe == 0.55  # a copy; the original is unchanged
    assert "saturation_counts" not in SCALABLE_FIELDS and "gain_counts_per_pe" in SCALABLE_FIELDS


@pytest.mark.parametrize(("factors", "message"), [
    ({"gain": 1.05},
     r"DetectorParams\.scaled: 'gain' is not a DetectorParams field; scalable fields: .*gain_counts_per_pe"),
    ({"saturation_counts": 1.1}, r"'saturation_counts' is an integer field and cannot be scaled"),
    ({"shower_max_spots": 2.0}, r"'shower_max_spots' is an integer field"),
    ({"noise_pe": 0.0}, r"factor for 'noise_pe' must be a finite number > 0, got 0\.0"),
    ({"noise_pe": -1.0}, r"factor for 'noise_pe' must be a finite number > 0"),
    ({"noise_pe": float("inf")}, r"factor for 'noise_pe' must be a finite number > 0, got inf"),
    ({"noise_pe": float("nan")}, r"factor for 'noise_pe' must be a finite number > 0, got nan"),
])  # fmt: skip
def test_scaled_refuses_unknown_fields_integers_and_bad_factors(factors: dict[str, float], message: str) -> None:
    with pytest.raises(NucvnError, match=message) as info:
        DetectorParams().scaled(factors)
    assert "\n" not in str(info.value)


def test_pipeline_detector_params_repeat_the_detector_defaults() -> None:
    """fetch.sim.detector (stage_params) repeats the DetectorParams defaults, field for field."""
    response = dataclasses.asdict(DetectorResponseParams())
    assert len(response) == 6
    assert response == {name: getattr(DetectorParams(), name) for name in response}
    assert DetectorParams(**response) == DetectorParams()
