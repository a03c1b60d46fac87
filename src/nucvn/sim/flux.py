"""Neutrino energy spectrum of interacting events (NuMI off-axis-like, docs/simulation.md).

The event rate (flux × cross section) at a NOvA-like off-axis far detector has a narrow peak
near 2 GeV and a long tail from the on-axis high-energy component and kaon-parent neutrinos.
It is modelled as a mixture: a log-normal core with its mode at ``flux_peak_gev`` (width
``flux_core_log_sigma`` in ln E) and, with weight ``flux_tail_fraction``, a power law
E^-``flux_tail_index`` from ``flux_tail_min_gev`` to ``flux_max_gev``. With the defaults about
20 % of events lie above 10 GeV and the maximum is 80 GeV. Both parts are sampled exactly
(inverse CDF for the power law, truncation of the core by redrawing).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from nucvn.sim import portable_math as pm
from nucvn.sim.generator_params import GeneratorParams

__all__ = ["sample_energy", "energy_pdf"]


def _core_mu(params: GeneratorParams) -> float:
    """ln-median of the log-normal core whose mode is ``flux_peak_gev``."""
    return float(pm.log(params.flux_peak_gev) + params.flux_core_log_sigma**2)


def _sample_tail(rng: np.random.Generator, n: int, lo: float, hi: float, index: float) -> npt.NDArray[np.float64]:
    """Inverse-CDF samples of E^-index on [lo, hi]."""
    u = rng.random(n)
    if abs(index - 1.0) < 1e-12:
        return lo * pm.power(hi / lo, u)
    a = 1.0 - index
    return pm.power(lo**a + u * (hi**a - lo**a), 1.0 / a)


def sample_energy(
    rng: np.random.Generator, n: int, params: GeneratorParams, min_gev: float | None = None
) -> npt.NDArray[np.float64]:
    """Draw ``n`` neutrino energies (GeV) from the spectrum, restricted to ``E >= min_gev``.

    ``min_gev`` (default ``flux_min_gev``) conditions the spectrum, e.g. on the ντ CC threshold.
    """
    lo = max(params.flux_min_gev, min_gev if min_gev is not None else params.flux_min_gev)
    hi = params.flux_max_gev
    out = np.empty(n, dtype=np.float64)
    todo = np.arange(n)
    mu, sigma = _core_mu(params), params.flux_core_log_sigma
    while todo.size:
        m = todo.size
        tail = rng.random(m) < params.flux_tail_fraction
        e = pm.exp(rng.normal(mu, sigma, m))
        n_tail = int(tail.sum())
        if n_tail:
            e[tail] = _sample_tail(rng, n_tail, params.flux_tail_min_gev, hi, params.flux_tail_index)
        ok = (e >= lo) & (e <= hi)
        out[todo[ok]] = e[ok]
        todo = todo[~ok]
    return out


def energy_pdf(energy: npt.ArrayLike, params: GeneratorParams) -> npt.NDArray[np.float64]:
    """Probability density (per GeV) of the untruncated-core mixture, for validation plots.

    The density of the core outside ``[flux_min_gev, flux_max_gev]`` is renormalised onto that
    range, so the curve integrates to 1 over it, as the sampled spectrum does.
    """
    from scipy.stats import lognorm

    e = np.asarray(energy, dtype=np.float64)
    lo, hi = params.flux_min_gev, params.flux_max_gev
    core = lognorm(s=params.flux_core_log_sigma, scale=np.exp(_core_mu(params)))
    core_pdf = core.pdf(e) / (core.cdf(hi) - core.cdf(lo))
    t_lo, k = params.flux_tail_min_gev, params.flux_tail_index
    if abs(k - 1.0) < 1e-12:
        norm = np.log(hi / t_lo)
    else:
        norm = (hi ** (1 - k) - t_lo ** (1 - k)) / (1 - k)
    tail_pdf = np.where((e >= t_lo) & (e <= hi), e ** (-k) / norm, 0.0)
    f = params.flux_tail_fraction
    inside = (e >= lo) & (e <= hi)
    # The truncation redraws whole mixture samples, so both parts are scaled by the kept mass.
    kept = (1 - f) * (core.cdf(hi) - core.cdf(lo)) + f
    return np.where(inside, ((1 - f) * core_pdf * (core.cdf(hi) - core.cdf(lo)) + f * tail_pdf) / kept, 0.0)
