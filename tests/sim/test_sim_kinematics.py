"""Tests of the vectorised kinematics helpers (four-momentum conservation, Q² limits, shapes)."""

from __future__ import annotations

import numpy as np

from nucvn.sim.flux import energy_pdf, sample_energy
from nucvn.sim.generator_params import GeneratorParams
from nucvn.sim.kinematics import fermi_nucleons, llewellyn_smith, neutrino_beam, q2_limits, sample_q2_qe, scatter
from nucvn.sim.lorentz import boost, boost_to_rest, mass2, nbody_decay
from nucvn.sim.masses import M_MUON, M_NEUTRON, M_PROTON, mass


def test_masses_come_from_the_pdg_table() -> None:
    assert abs(M_PROTON - 0.93827) < 1e-4 and abs(M_MUON - 0.10566) < 1e-4
    assert mass(22) == 0.0


def test_boost_round_trip_and_invariance() -> None:
    rng = np.random.default_rng(0)
    p = np.column_stack([rng.normal(size=(50, 3)), np.zeros(50)])
    p[:, 3] = np.sqrt((p[:, :3] ** 2).sum(1) + 0.5)
    beta = rng.uniform(-0.5, 0.5, (50, 3))
    q = boost(p, beta)
    np.testing.assert_allclose(mass2(q), 0.5, rtol=1e-10)
    np.testing.assert_allclose(boost(q, -beta), p, atol=1e-12)
    rest = boost_to_rest(p, p)
    np.testing.assert_allclose(rest[:, :3], 0.0, atol=1e-12)


def test_nbody_conserves_four_momentum() -> None:
    rng = np.random.default_rng(1)
    parent = np.tile([0.3, -0.2, 4.0, 0.0], (200, 1))
    parent[:, 3] = np.sqrt(0.09 + 0.04 + 16.0 + 1.777**2)
    masses = [0.1396, 0.135, 0.135, 0.0]
    daughters = nbody_decay(rng, parent, masses)
    np.testing.assert_allclose(sum(daughters), parent, atol=1e-10)
    for d, m in zip(daughters, masses, strict=True):
        np.testing.assert_allclose(np.sqrt(np.clip(mass2(d), 0, None)), m, atol=1e-6)


def test_scatter_reaches_requested_q2_and_w() -> None:
    rng = np.random.default_rng(2)
    params = GeneratorParams()
    n = 500
    e = rng.uniform(1.0, 5.0, n)
    nu = neutrino_beam(e)
    target = fermi_nucleons(rng, n, params, M_NEUTRON)
    s, mt2 = mass2(nu + target), mass2(target)
    w = np.full(n, M_PROTON)
    m_lep = np.full(n, M_MUON)
    lo, hi = q2_limits(s, mt2, m_lep, w)
    e_rest = (s - mt2) / (2 * np.sqrt(mt2))
    q2 = sample_q2_qe(rng, lo, hi, e_rest, m_lep, params)
    assert np.all((q2 >= lo) & (q2 <= hi))
    lep, had = scatter(rng, nu, target, m_lep, w, q2)
    np.testing.assert_allclose(-mass2(nu - lep), q2, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(np.sqrt(mass2(had)), M_PROTON, rtol=1e-9)
    np.testing.assert_allclose(np.sqrt(mass2(lep)), M_MUON, rtol=1e-6)
    # Dipole axial form factor: QE Q² is soft; at a few GeV the mean lies near 0.4-0.6 GeV².
    assert 0.25 < q2.mean() < 0.75


def test_llewellyn_smith_falls_with_q2_and_axial_mass() -> None:
    q2 = np.array([0.1, 0.5, 1.0, 2.0])
    params = GeneratorParams()
    low_ma = GeneratorParams(axial_mass_gev=0.7)
    x = llewellyn_smith(q2, np.full(4, 3.0), np.full(4, M_MUON), params)
    assert np.all(np.diff(x) < 0)
    assert np.all(llewellyn_smith(q2[1:], np.full(3, 3.0), np.full(3, M_MUON), low_ma) < x[1:])


def test_energy_pdf_matches_samples() -> None:
    params = GeneratorParams()
    e = sample_energy(np.random.default_rng(3), 100000, params)
    edges = np.array([0.3, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 80.0])
    counts, _ = np.histogram(e, edges)
    grid = np.linspace(0.3, 80.0, 400001)
    cdf = np.concatenate([[0.0], np.cumsum(energy_pdf(grid, params)[1:] * np.diff(grid))])
    expected = np.diff(np.interp(edges, grid, cdf)) * len(e)
    assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected) + 5)
