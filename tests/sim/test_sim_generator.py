"""Physics tests of the event generator (docs/simulation.md): no detector involved."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nucvn.core.errors import NucvnError
from nucvn.data.h5io import META_DTYPES
from nucvn.sim.generator import NON_FILE_KEYS, Generator
from nucvn.sim.generator_params import COMPOSITION_CLASSES, DEFAULT_COMPOSITION, GeneratorParams, parse_composition
from nucvn.sim.geometry import HALF_WIDTH, LENGTH
from nucvn.sim.hadronise import Hadroniser
from nucvn.sim.masses import M_ELECTRON, M_NUCLEON, baryon_number, charge, charges
from nucvn.sim.particles import FS_GROUP_KEY, GeneratedBatch
from nucvn.sim.xsec import GenMode

FILE_KEYS = {
    "interaction", "nuenergy", "lepenergy", "pdg", "iscc", "mode", "hadenergy", "inelasticity",
    "nproton", "npion", "npizero", "nneutron", "parent", "vtxx", "vtxy", "vtxz",
}


def only(cls: str, **kw: float) -> GeneratorParams:
    return GeneratorParams(composition={cls: 1.0}, **kw)


@pytest.fixture(scope="module")
def default_batch() -> GeneratedBatch:
    return Generator(GeneratorParams(), seed=11).generate(20000)


@pytest.fixture(scope="module")
def numu_batch() -> GeneratedBatch:
    return Generator(only("numu_cc"), seed=5).generate(20000)


def per_event(batch: GeneratedBatch, values: np.ndarray) -> np.ndarray:
    return np.bincount(batch.particles["event"], weights=values, minlength=batch.n_events)


def test_default_composition_sums_to_one_and_is_drawn(default_batch: GeneratedBatch) -> None:
    assert math.isclose(sum(DEFAULT_COMPOSITION.values()), 1.0, abs_tol=1e-12)
    inter = default_batch.truth["interaction"].astype(int)
    n = default_batch.n_events
    observed = {
        "numu_cc": np.isin(inter, [0, 1, 2, 3]).mean(),
        "nue_cc": np.isin(inter, [4, 5, 6, 7]).mean(),
        "nutau_cc": np.isin(inter, [8, 9, 10, 11]).mean(),
        "nc": (inter == 13).mean(),
        "nue_elastic": (inter == 12).mean(),
        "cosmic": (inter == 14).mean(),
    }
    for name, frac in DEFAULT_COMPOSITION.items():
        sigma = math.sqrt(frac * (1 - frac) / n)
        assert abs(observed[name] - frac) < 3 * sigma + 1e-4, (name, observed[name], frac)
    assert not np.any(inter >= 15)


def test_custom_composition_is_followed() -> None:
    comp = parse_composition("numu_cc=0.5, nc=0.3, cosmic=0.2")
    t = Generator(GeneratorParams(composition=comp), seed=2).generate(8000).truth
    for code, frac in ((13, 0.3), (14, 0.2)):
        got = (t["interaction"] == code).mean()
        assert abs(got - frac) < 3 * math.sqrt(frac * (1 - frac) / 8000)
    assert not np.any(np.isin(t["interaction"], [4, 5, 6, 7, 8, 9, 10, 11, 12]))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("numu_cc=0.5,nc=0.4", "sum"),
        ("numu_cc=0.9,numu_nc=0.1", "numu_nc"),
        ("numu_cc=1.1,nc=-0.1", "nc"),
        ("numu_cc=abc,nc=1", "numu_cc"),
        ("numu_cc", "numu_cc"),
        ("", "names no class"),
    ],
)
def test_composition_errors_name_the_item(text: str, needle: str) -> None:
    with pytest.raises(NucvnError, match=needle):
        parse_composition(text)


def test_unknown_class_lists_known_ones() -> None:
    with pytest.raises(NucvnError) as err:
        GeneratorParams(composition={"muon": 1.0})
    assert all(name in str(err.value) for name in COMPOSITION_CLASSES)


def test_truth_keys_dtypes_and_bounds(default_batch: GeneratedBatch) -> None:
    t = default_batch.truth
    assert set(t) == FILE_KEYS | set(NON_FILE_KEYS)
    for key in FILE_KEYS:
        assert t[key].dtype == META_DTYPES[key], key
        assert len(t[key]) == default_batch.n_events
    assert np.all(t["lepenergy"] <= t["nuenergy"])
    nu = t["interaction"] < 14
    np.testing.assert_allclose(t["inelasticity"][nu], 1 - t["lepenergy"][nu] / t["nuenergy"][nu], atol=2e-6)
    assert np.all(np.abs(t["vtxx"]) <= HALF_WIDTH) and np.all(np.abs(t["vtxy"]) <= HALF_WIDTH)
    assert np.all((t["vtxz"] >= 0) & (t["vtxz"] <= LENGTH))
    assert set(np.unique(t["pdg"][nu])) <= {12, 14, 16}
    cc = t["interaction"] <= 11
    assert np.all(t["iscc"][cc] == 1) and np.all(t["iscc"][~cc] == 0)
    assert np.all(t["hadenergy"] >= 0) and np.all(t["hadenergy"] <= t["nuenergy"] + 0.1)


def test_particles_sorted_lepton_first(numu_batch: GeneratedBatch) -> None:
    p = numu_batch.particles
    assert np.all(np.diff(p["event"]) >= 0)
    first = np.searchsorted(p["event"], np.arange(numu_batch.n_events))
    assert np.all(p["pdg"][first] == 13)
    vtx = np.column_stack([numu_batch.truth[k] for k in ("vtxx", "vtxy", "vtxz")])
    np.testing.assert_array_equal(np.column_stack([p["x"], p["y"], p["z"]]), vtx[p["event"]])


def test_energy_spectrum_peak_and_tail(numu_batch: GeneratedBatch) -> None:
    e = numu_batch.truth["nuenergy"]
    assert abs((e > 10).mean() - 0.20) < 0.03
    counts, edges = np.histogram(e, bins=np.arange(0.0, 10.0, 0.25))
    assert 1.5 <= edges[np.argmax(counts)] <= 2.25
    assert e.max() <= 80.0 and e.max() > 50.0


def test_mode_fractions_vs_energy(numu_batch: GeneratedBatch) -> None:
    t = numu_batch.truth
    e, mode = t["nuenergy"], t["mode"]
    band = (e > 1.8) & (e < 2.2)
    frac = {m: (mode[band] == m).mean() for m in GenMode}
    assert band.sum() > 1500
    assert 0.28 <= frac[GenMode.QE] <= 0.38
    assert 0.28 <= frac[GenMode.RES] <= 0.38
    assert 0.17 <= frac[GenMode.DIS] <= 0.28
    assert 0.06 <= frac[GenMode.MEC] <= 0.14
    assert 0.003 <= frac[GenMode.COH] <= 0.03
    assert (mode[e > 5] == GenMode.DIS).mean() > 0.6
    assert (mode[e < 1] == GenMode.QE).mean() > 0.45
    code = t["interaction"].astype(int)
    expected = np.select([mode == 0, mode == 1, mode == 2], [0, 1, 2], 3)
    np.testing.assert_array_equal(code, expected)


def test_energy_conservation(default_batch: GeneratedBatch) -> None:
    """Σ E_final = E_ν + Σ bound-nucleon energies: within binding and Fermi motion per nucleon."""
    b, t = default_batch, default_batch.truth
    p = GeneratorParams()
    pdg = b.particles["pdg"]
    baryons = per_event(b, np.array([baryon_number(int(c)) for c in pdg], dtype=float))
    dev = per_event(b, b.particles["e"]) - t["nuenergy"].astype(float) - baryons * M_NUCLEON
    t_fermi = math.hypot(M_NUCLEON, p.fermi_momentum_gev) - M_NUCLEON
    nuclear = (t["interaction"] < 14) & (t["mode"] != GenMode.NUE_ELASTIC) & (t["mode"] != GenMode.COH)
    tol_f32 = 4e-7 * t["nuenergy"] + 1e-6
    assert np.all(dev[nuclear] >= -baryons[nuclear] * (p.binding_energy_gev + 0.001) - tol_f32[nuclear])
    assert np.all(dev[nuclear] <= baryons[nuclear] * (t_fermi - p.binding_energy_gev + 0.001) + tol_f32[nuclear])
    elastic = t["mode"] == GenMode.NUE_ELASTIC
    np.testing.assert_allclose(dev[elastic], M_ELECTRON, atol=1e-5)
    coh = (t["mode"] == GenMode.COH) & (t["interaction"] < 14)
    assert np.all(baryons[coh] == 0)
    assert np.all((dev[coh] <= 1e-5) & (dev[coh] > -0.15))  # the ¹²C recoil carries the rest
    assert np.median(dev[coh]) > -0.01


def test_charge_conservation_without_fsi() -> None:
    params = GeneratorParams(
        composition={"numu_cc": 0.6, "nc": 0.4}, fsi_pion_absorption=0.0, fsi_charge_exchange=0.0
    )
    b = Generator(params, seed=9).generate(4000)
    t = b.truth
    q = per_event(b, charges(b.particles["pdg"]))
    single = np.isin(t["target_pdg"], [2212, 2112])
    target_q = np.where(t["target_pdg"] == 2212, 1.0, 0.0)
    np.testing.assert_allclose(q[single], target_q[single], atol=1e-9)
    coh = t["mode"] == GenMode.COH
    np.testing.assert_allclose(q[coh], 0.0, atol=1e-9)


def test_charge_within_nucleon_range_with_fsi(default_batch: GeneratedBatch) -> None:
    b, t = default_batch, default_batch.truth
    q = per_event(b, charges(b.particles["pdg"]))
    baryons = per_event(b, np.array([baryon_number(int(c)) for c in b.particles["pdg"]], dtype=float))
    nuclear = (t["interaction"] < 12) & (t["mode"] <= GenMode.DIS)
    # Initial charge: the struck nucleon plus the FSI partners, each 0 or 1.
    qi = q[nuclear] - np.where(t["target_pdg"][nuclear] == 2212, 1, 0)
    assert np.all(qi >= -1e-9) and np.all(qi <= baryons[nuclear] - 1 + 1e-9)


def test_fsi_absorption_and_charge_exchange_rates(numu_batch: GeneratedBatch) -> None:
    """CC RES on protons gives only p π⁺; FSI removes the pion (20 %) or makes a π⁰ (10 %)."""
    t = numu_batch.truth
    sel = (t["mode"] == GenMode.RES) & (t["target_pdg"] == 2212)
    no_pion = ((t["npion"] + t["npizero"])[sel] == 0).mean()
    pizero = (t["npizero"][sel] == 1).mean()
    n = sel.sum()
    assert abs(no_pion - 0.20) < 3 * math.sqrt(0.16 / n) + 0.01
    assert abs(pizero - 0.10) < 3 * math.sqrt(0.09 / n) + 0.01


def test_mean_charged_multiplicity_follows_bubble_chamber_fit() -> None:
    """⟨n_ch⟩ of νp CC hadronic systems within 15 % of 0.40 + 1.42 ln W² (W = 2-10 GeV)."""
    had = Hadroniser(GeneratorParams(), seed=4)
    for w_val in (2.0, 3.5, 6.0, 10.0):
        n = 400
        w = np.full(n, w_val)
        system = np.column_stack([np.zeros((n, 3)), w])
        q = np.tile([0.0, 0.0, 1.0, 0.5], (n, 1))
        res = had.hadronise(w, np.full(n, 2), np.full(n, 2203), system, q)
        assert res.ok.all()
        np.testing.assert_allclose(np.bincount(res.system, weights=res.p4[:, 3], minlength=n), w_val, rtol=1e-9)
        n_ch = np.count_nonzero(charges(res.pdg))
        total_q = np.bincount(res.system, weights=charges(res.pdg), minlength=n)
        np.testing.assert_allclose(total_q, 2.0)
        expected = 0.40 + 1.42 * math.log(w_val**2)
        assert abs(n_ch / n / expected - 1) < 0.15, (w_val, n_ch / n, expected)


def test_tau_decays_and_threshold() -> None:
    b = Generator(only("nutau_cc"), seed=3).generate(4000)
    t = b.truth
    assert np.all(t["nuenergy"] >= 3.5)
    assert np.all(np.isin(t["interaction"], [8, 9, 10, 11]))
    group = t[FS_GROUP_KEY]
    for g, frac in ((0, 0.174), (1, 0.178), (2, 0.648)):
        assert abs((group == g).mean() - frac) < 3 * math.sqrt(frac * (1 - frac) / 4000)
    assert not np.any(b.particles["pdg"] == 15)
    mu_events = np.unique(b.particles["event"][b.particles["pdg"] == 13])
    np.testing.assert_array_equal(mu_events, np.flatnonzero(group == 0))


def test_nue_elastic_forward_electron() -> None:
    b = Generator(only("nue_elastic"), seed=1).generate(2000)
    p = b.particles[b.particles["pdg"] == 11]
    assert len(p) == 2000
    kin = p["e"] - M_ELECTRON
    theta2 = np.arctan2(np.hypot(p["px"], p["py"]), p["pz"]) ** 2
    big = kin > 0.05
    assert np.all(theta2[big] <= 2 * M_ELECTRON / kin[big] * 1.01)
    assert np.all(b.truth["interaction"] == 12) and np.all(b.truth[FS_GROUP_KEY] == 2)


def test_cosmics_enter_from_the_top() -> None:
    b = Generator(only("cosmic"), seed=8).generate(2000)
    t, p = b.truth, b.particles
    assert np.all(t["interaction"] == 14) and np.all(t[FS_GROUP_KEY] == 48) and np.all(t["pdg"] == 0)
    assert np.all(t["vtxy"] == HALF_WIDTH) and np.all(p["py"] < 0)
    steep = -p["py"] / np.sqrt(p["px"] ** 2 + p["py"] ** 2 + p["pz"] ** 2)
    assert np.median(steep) > 0.7
    muons = np.isin(p["pdg"], [13, -13]).mean()
    assert 0.9 < muons < 0.99
    np.testing.assert_allclose(t["nuenergy"], t["lepenergy"])


def test_counts_match_particle_table(numu_batch: GeneratedBatch) -> None:
    b, t = numu_batch, numu_batch.truth
    pdg = b.particles["pdg"]
    assert np.all(per_event(b, (pdg == 2212).astype(float)) == t["nproton"])
    assert np.all(per_event(b, (pdg == 111).astype(float)) == t["npizero"])
    assert np.all(per_event(b, (np.abs(pdg) == 211).astype(float)) == t["npion"])
    assert charge(111) == 0 and charge(-211) == -1


def test_determinism() -> None:
    a = Generator(GeneratorParams(), seed=21).generate(1500)
    b = Generator(GeneratorParams(), seed=21).generate(1500)
    c = Generator(GeneratorParams(), seed=22).generate(1500)
    np.testing.assert_array_equal(a.particles, b.particles)
    for key in a.truth:
        np.testing.assert_array_equal(a.truth[key], b.truth[key])
    assert not np.array_equal(a.truth["nuenergy"], c.truth["nuenergy"])
