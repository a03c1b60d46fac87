"""Every number of the detector response and the pixel-map window (docs/simulation.md), in one place.

The geometry itself (box, cell and plane pitch) lives in :mod:`nucvn.sim.geometry`; particle
masses and charges come from the ``particle`` package. Everything else the detector simulation
uses is a field of :class:`DetectorParams` with its default here, so a study can vary one number
without touching code, and :meth:`DetectorParams.scaled` makes a systematic variation (e.g. +5 %
calibration) by multiplying named fields. :meth:`DetectorParams.kernel_array` flattens the
scalars into the float array the numba kernels read (indices: the :data:`K` enum).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import IntEnum
from numbers import Real
from typing import Literal

import numpy as np
import numpy.typing as npt

from nucvn.core.errors import NucvnError
from nucvn.sim.geometry import CELL_LENGTH, PLANE_PITCH

__all__ = ["DetectorParams", "MUON_RANGE_T_MEV", "MUON_RANGE_CM", "KERNEL_FIELDS", "SCALABLE_FIELDS", "K"]

MUON_RANGE_T_MEV: tuple[float, ...] = (
    1.0, 1.585, 2.512, 3.981, 6.31, 10.0, 15.85, 25.12, 39.81, 63.1, 100.0, 158.5, 251.2,
    398.1, 631.0, 1000.0, 1585.0, 2512.0, 3981.0, 6310.0, 10000.0, 15850.0, 25120.0,
    39810.0, 63100.0, 100000.0,
)  # fmt: skip
"""Muon kinetic energies (MeV) of the CSDA range table."""
MUON_RANGE_CM: tuple[float, ...] = (
    0.01137, 0.02601, 0.05972, 0.1374, 0.3157, 0.7213, 1.629, 3.611, 7.775, 16.1, 31.77,
    59.57, 106.3, 181.5, 298.9, 479.6, 755.9, 1178.0, 1822.0, 2809.0, 4324.0, 6649.0,
    10220.0, 15680.0, 23980.0, 36450.0,
)  # fmt: skip
"""CSDA muon range (cm) at those energies: Bethe-Bloch (PDG RPP §34, with the density effect and
radiative losses b ≈ 3.5e-6 cm²/g) for the 63 % scintillator / 37 % PVC mix at 1.01 g/cm³
(<Z/A> = 0.528, I = 81 eV), scaled by 1/1.025 to the anchors 1 GeV → 4.8 m,
2 GeV → 9.5 m. Heavier charged particles use the same table scaled by mass:
``R_M(T) = (M/m_μ) R_μ(T m_μ/M)`` (same βγ, same dE/dx)."""


@dataclass(frozen=True)
class DetectorParams:
    """Parametric detector response and window (defaults: docs/simulation.md)."""

    # --- tracking -------------------------------------------------------------------------
    step_cm: float = 2.0
    """Shortest step of charged-track transport (cm), used near the end of the range."""
    step_max_cm: float = 5.0
    """Longest step (cm), used while the remaining range exceeds 20 steps of that length."""
    mip_dedx_mev_cm: float = 2.0
    """Minimum-ionising dE/dx of the average material (MeV/cm); light calibration reference."""
    landau_width: float = 0.12
    """Relative width of per-step ionisation fluctuations (Moyal/Landau shape, mean preserved)."""
    radiation_length_cm: float = 36.0
    """Radiation length X0 (cm), ≈ 0.2 X0 per plane; used by Highland and the shower profile."""
    highland_a_mev: float = 13.6
    """Highland formula constant (PDG RPP §34.3): θ0 = a/(βcp) √(x/X0) (1 + b ln(x/X0))."""
    highland_b: float = 0.038
    stop_kinetic_mev: float = 1.0
    """Charged tracks below this kinetic energy deposit the rest on the spot."""
    # --- hadrons --------------------------------------------------------------------------
    nuclear_interaction_length_cm: float = 80.0
    """Proton (nucleon) inelastic interaction length (cm)."""
    pion_interaction_length_cm: float = 110.0
    """Charged-pion (and kaon) inelastic interaction length (cm)."""
    hadron_interaction_min_mev: float = 40.0
    """Hadrons below this kinetic energy only range out (no inelastic interaction)."""
    pion_absorption_fraction: float = 0.25
    """Fraction of pion interactions that absorb the pion (energy to nucleons)."""
    pion_charge_exchange_fraction: float = 0.12
    """Fraction of pion interactions that turn it into a π0 (→ γγ)."""
    pion_capture_proton_mev: float = 25.0
    """Mean proton kinetic energy released when a stopped π⁻ is captured by a nucleus."""
    nucleon_binding_mev: float = 25.0
    """Energy lost per nucleon knocked out in a hadronic interaction (invisible)."""
    neutron_scatter_length_cm: float = 100.0
    """Mean free path of a neutron between (visible) n-p scatters (cm)."""
    neutron_hydrogen_fraction: float = 0.4
    """Share of neutron scatters that are elastic on hydrogen (recoil proton T_p = T cos²θ); the
    rest are on carbon, where only ``neutron_carbon_visible`` of the energy lost shows up as a
    proton (the remainder goes to binding, nuclear fragments and escaping photons)."""
    neutron_carbon_visible: float = 0.4
    neutron_max_scatters: int = 3
    """Neutron scatters followed before the neutron is considered lost (captured/escaped)."""
    neutron_min_mev: float = 20.0
    """Neutrons below this kinetic energy are no longer followed."""
    # --- muons ----------------------------------------------------------------------------
    michel_probability_mu_minus: float = 0.92
    """Stopping μ⁻ that decay (the rest are captured on carbon, ≈ 8 %)."""
    michel_probability_mu_plus: float = 1.0
    # --- electromagnetic showers ----------------------------------------------------------
    moliere_radius_cm: float = 10.0
    """Molière radius R_M (cm), ≈ 2.5 cells."""
    critical_energy_mev: float = 83.0
    """Critical energy E_c (MeV) for t_max = ln(E/E_c) + C."""
    shower_tmax_offset_electron: float = -0.5
    """C for electron-initiated showers (PDG RPP §34.5); photons use it from the conversion point."""
    shower_tmax_offset_photon: float = 0.5
    """C for photon-initiated showers measured from the photon's origin (validation reference)."""
    shower_b: float = 0.5
    """Gamma-profile slope b (per X0): dE/dt ∝ (bt)^(a-1) e^(-bt), t_max = (a-1)/b."""
    shower_tmax_sigma: float = 0.25
    """Shower-to-shower Gaussian fluctuation of t_max (X0)."""
    shower_spot_mev: float = 5.0
    """Energy per discrete deposition spot; sets the sampling fluctuation (≈ √(spot/E))."""
    shower_max_spots: int = 600
    """At most this many spots per shower (larger spots above 3 GeV; fluctuations stay < 5 %)."""
    shower_core_fraction: float = 0.85
    """Fraction of shower energy in the core (rest in the halo)."""
    shower_core_radius_rm: float = 0.25
    """Core radius parameter in units of R_M (f(r) ∝ r R²/(r²+R²)², Grindhammer-style)."""
    shower_halo_radius_rm: float = 1.0
    """Halo radius parameter in units of R_M."""
    shower_max_radius_rm: float = 5.0
    """Spots further out than this are resampled."""
    em_track_below_mev: float = 100.0
    """Electrons below this energy (≈ E_c) are transported as short MIP-like tracks, not showers."""
    shower_head_x0: float = 1.0
    """A shower starts as 1 (electron) or 2 (converted photon) MIP tracks along its axis over this
    depth (X0) before the spots take over: the dE/dx that separates e from γ in real data. The
    head's energy is taken from the earliest spots, so the mean profile stays the Γ-profile."""
    shower_head_max_fraction: float = 0.3
    """At most this fraction of the shower energy goes into the head tracks."""
    conversion_length_x0: float = 9.0 / 7.0
    """Mean photon conversion distance in X0 (pair production, PDG RPP §34.4.2)."""
    # --- light and readout ----------------------------------------------------------------
    birks_kb_cm_mev: float = 0.01
    """Birks constant kB (cm/MeV): light ∝ dE/(1 + kB dE/dx)."""
    pe_per_mip_far: float = 25.0
    """Photo-electrons from a MIP crossing one cell at normal incidence at the far end."""
    attenuation_length_cm: float = 1200.0
    """Effective fibre attenuation length (cm); far/near light ratio = exp(-15.5 m / λ)."""
    noise_pe: float = 2.5
    """Gaussian electronics noise (PE), S/N ≈ 10 at the far end."""
    threshold_pe: float = 7.5
    """Zero-suppression threshold (PE, 3 σ of the noise)."""
    gain_counts_per_pe: float = 0.55
    """Digitiser counts per PE: a MIP at mid-cell ≈ 26 counts, 8-bit saturation at 255."""
    saturation_counts: int = 255
    noise_hits_per_view: float = 3.0
    """Mean number of random noise hits per view image (Poisson)."""
    noise_hit_mean_pe: float = 12.0
    """Mean PE of a noise hit (exponential above the threshold)."""
    # --- truth counting and window ----------------------------------------------------------
    min_visible_mev: float = 10.0
    """A track/shower counts in ``finalstate`` when it deposits at least this visible energy."""
    prong_min_cells: int = 3
    """A prong counts in ``finalstateprong`` when it also lights this many cells of the window."""
    hit_cell_min_mev: float = 0.5
    """Minimum visible energy of a deposit for its cell to count as hit (window, prong cells)."""
    plane_stride: Literal[1, 2] = 2
    """Window rows step this many detector planes: 2 → row k of view v is plane first+2k+v."""

    def __post_init__(self) -> None:
        if self.plane_stride not in (1, 2):
            raise NucvnError(f"DetectorParams.plane_stride must be 1 or 2, got {self.plane_stride!r}")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("shower_tmax_offset"):
                continue
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise NucvnError(f"DetectorParams.{f.name} must be a finite number >= 0, got {value!r}")
        for name in ("step_cm", "radiation_length_cm", "moliere_radius_cm", "critical_energy_mev",
                     "shower_spot_mev", "attenuation_length_cm", "gain_counts_per_pe", "shower_b"):  # fmt: skip
            if getattr(self, name) <= 0:
                raise NucvnError(f"DetectorParams.{name} must be positive, got {getattr(self, name)!r}")

    @property
    def pe_per_mev(self) -> float:
        """PE per MeV of quenched visible energy at the readout end (no attenuation), fixed so that
        a MIP crossing a cell (one plane pitch) at the far end gives :attr:`pe_per_mip_far`."""
        mip_vis = self.mip_dedx_mev_cm * PLANE_PITCH / (1 + self.birks_kb_cm_mev * self.mip_dedx_mev_cm)
        return self.pe_per_mip_far / (mip_vis * math.exp(-CELL_LENGTH / self.attenuation_length_cm))

    def scaled(self, factors: Mapping[str, float]) -> DetectorParams:
        """A copy with each named field multiplied by its factor, e.g. ``{"gain_counts_per_pe": 1.05}``
        for a +5 % calibration systematic.

        Only float fields can be scaled: an integer field (a count such as ``saturation_counts`` or
        ``shower_max_spots``, or ``plane_stride``) is refused, since a scaled count would need a
        rounding rule that silently changes the requested factor; set it with
        :func:`dataclasses.replace` instead. An unknown or integer field, or a factor that is not a
        finite number > 0, raises :class:`NucvnError` naming the field; the copy is validated
        like any instance.
        """
        changes: dict[str, float] = {}
        for name, factor in factors.items():
            if name not in SCALABLE_FIELDS:
                kind = "is an integer field and cannot be scaled (set it with dataclasses.replace)" \
                    if name in _FIELD_NAMES else "is not a DetectorParams field"
                raise NucvnError(f"DetectorParams.scaled: {name!r} {kind}; scalable fields: "
                                 f"{', '.join(SCALABLE_FIELDS)}")
            if isinstance(factor, bool) or not isinstance(factor, Real) or not math.isfinite(factor) or factor <= 0:
                raise NucvnError(f"DetectorParams.scaled: the factor for {name!r} must be a finite number > 0, got "
                                 f"{factor!r}")
            changes[name] = float(getattr(self, name)) * float(factor)
        return dataclasses.replace(self, **changes)

    def kernel_array(self) -> npt.NDArray[np.float64]:
        """The scalars in :data:`KERNEL_FIELDS` order (plus derived ``pe_per_mev``) as float64."""
        values = [float(getattr(self, name)) for name in KERNEL_FIELDS[:-1]]
        return np.array([*values, self.pe_per_mev], dtype=np.float64)


_FIELD_NAMES: frozenset[str] = frozenset(f.name for f in fields(DetectorParams))
SCALABLE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(DetectorParams) if f.type in ("float", float))
"""The fields :meth:`DetectorParams.scaled` accepts: every float field (not the integer counts)."""

KERNEL_FIELDS: tuple[str, ...] = (
    "step_cm", "step_max_cm", "mip_dedx_mev_cm", "landau_width", "radiation_length_cm", "highland_a_mev",
    "highland_b", "stop_kinetic_mev", "nuclear_interaction_length_cm", "pion_interaction_length_cm",
    "hadron_interaction_min_mev", "pion_absorption_fraction", "pion_charge_exchange_fraction",
    "pion_capture_proton_mev", "nucleon_binding_mev", "neutron_scatter_length_cm",
    "neutron_hydrogen_fraction", "neutron_carbon_visible", "neutron_max_scatters", "neutron_min_mev",
    "michel_probability_mu_minus",
    "michel_probability_mu_plus", "moliere_radius_cm", "critical_energy_mev",
    "shower_tmax_offset_electron", "shower_b", "shower_tmax_sigma", "shower_spot_mev", "shower_max_spots",
    "shower_core_fraction", "shower_core_radius_rm", "shower_halo_radius_rm",
    "shower_max_radius_rm", "shower_head_x0", "shower_head_max_fraction", "em_track_below_mev", "conversion_length_x0",
    "birks_kb_cm_mev",
    "attenuation_length_cm", "noise_pe", "threshold_pe", "gain_counts_per_pe",
    "saturation_counts", "noise_hits_per_view", "noise_hit_mean_pe", "hit_cell_min_mev",
    "plane_stride", "pe_per_mev",
)  # fmt: skip
"""Order of :meth:`DetectorParams.kernel_array`; the kernels index it with the ``K_*`` constants."""

K = IntEnum("K", {name.upper(): i for i, name in enumerate(KERNEL_FIELDS)})
"""Index of each kernel scalar, e.g. ``P[K.STEP_CM]`` (numba treats IntEnum members as constants)."""
