"""Every physics number of the event generator, with its default (docs/simulation.md).

One frozen dataclass, :class:`GeneratorParams`, so a run is fully described by it and a seed.
Masses, widths and charges are not here: they come from the ``particle`` package
(:mod:`nucvn.sim.masses`). :func:`parse_composition` turns a command-line string such as
``"numu_cc=0.88,nc=0.075,nue_cc=0.035,nutau_cc=0.005,nue_elastic=0.002,cosmic=0.003"`` into a
validated mapping; bad input raises :class:`~nucvn.core.errors.NucvnError` naming the item.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from nucvn.core.errors import NucvnError

__all__ = [
    "COMPOSITION_CLASSES",
    "DEFAULT_COMPOSITION",
    "GeneratorParams",
    "parse_composition",
    "validate_composition",
]

COMPOSITION_CLASSES: tuple[str, ...] = ("numu_cc", "nue_cc", "nutau_cc", "nc", "nue_elastic", "cosmic")
"""Event classes of the composition, in the order the generator draws them."""

_RAW_DEFAULT = {"numu_cc": 0.88, "nue_cc": 0.035, "nutau_cc": 0.005, "nc": 0.075, "nue_elastic": 0.002, "cosmic": 0.003}
_TOTAL = math.fsum(_RAW_DEFAULT.values())
DEFAULT_COMPOSITION: Mapping[str, float] = MappingProxyType({k: v / _TOTAL for k, v in _RAW_DEFAULT.items()})
"""Fractions of the real sample (docs/simulation.md), renormalised to sum to exactly 1."""

_SUM_TOL = 1e-6


def validate_composition(composition: Mapping[str, float], where: str = "composition") -> dict[str, float]:
    """Check class names, signs and the sum; return a full dict (missing classes get 0).

    Raises :class:`NucvnError` naming the unknown class, the negative fraction or the sum.
    """
    out = dict.fromkeys(COMPOSITION_CLASSES, 0.0)
    for name, value in composition.items():
        if name not in out:
            raise NucvnError(
                f"{where}: unknown event class {name!r}; known classes are {', '.join(COMPOSITION_CLASSES)}"
            )
        try:
            frac = float(value)
        except (TypeError, ValueError):
            raise NucvnError(f"{where}: fraction of {name!r} is {value!r}, not a number") from None
        if not math.isfinite(frac):
            raise NucvnError(f"{where}: fraction of {name!r} is {value!r}, not a finite number")
        if frac < 0:
            raise NucvnError(f"{where}: fraction of {name!r} is negative ({frac}); use a value in [0, 1]")
        out[name] = frac
    total = math.fsum(out.values())
    if abs(total - 1.0) > _SUM_TOL:
        raise NucvnError(
            f"{where}: fractions sum to {total:.9g}, not 1 (tolerance {_SUM_TOL:g}); "
            "adjust them so they add up to 1"
        )
    return out


def parse_composition(text: str) -> dict[str, float]:
    """Parse ``"class=fraction,class=fraction,..."`` and validate it (:func:`validate_composition`).

    Classes not named get fraction 0; the named fractions must sum to 1.
    """
    items: dict[str, float] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise NucvnError(f"composition item {item!r} is not of the form class=fraction (e.g. nc=0.075)")
        if name in items:
            raise NucvnError(f"composition: class {name!r} is given twice")
        try:
            items[name] = float(value)
        except ValueError:
            raise NucvnError(f"composition: fraction of {name!r} is {value.strip()!r}, not a number") from None
    if not items:
        raise NucvnError(f"composition {text!r} names no class; write e.g. numu_cc=0.9,nc=0.1")
    return validate_composition(items)


@dataclass(frozen=True)
class GeneratorParams:
    """Physics parameters of the event generator (energies GeV, momenta GeV/c, lengths cm).

    Groups: composition; energy spectrum (:mod:`nucvn.sim.flux`); mode shapes vs energy
    (:mod:`nucvn.sim.xsec`); nuclear model (Fermi gas); QE (Llewellyn Smith); RES (Δ(1232)
    Breit-Wigner, width from the PDG table); DIS (parton-model x, y; Pythia 8 string); COH; MEC;
    ντ decays; FSI; cosmic rays; beam parent.
    """

    composition: Mapping[str, float] = field(default_factory=lambda: DEFAULT_COMPOSITION)

    # Energy spectrum: log-normal core (mode flux_peak_gev) plus an E^-index tail (flux.py).
    flux_peak_gev: float = 2.0
    flux_core_log_sigma: float = 0.40
    flux_tail_fraction: float = 0.38
    flux_tail_min_gev: float = 4.0
    flux_tail_index: float = 1.5
    flux_min_gev: float = 0.3
    flux_max_gev: float = 80.0
    nutau_threshold_gev: float = 3.5

    # Relative CC/NC mode weights vs E (xsec.py): norm * (1 - exp(-(E - thr)/scale)); DIS linear.
    qe_norm: float = 0.33
    qe_scale_gev: float = 0.25
    mec_norm: float = 0.102
    mec_scale_gev: float = 0.5
    res_norm: float = 0.362
    res_threshold_gev: float = 0.3
    res_scale_gev: float = 0.7
    coh_norm: float = 0.018
    coh_threshold_gev: float = 0.2
    coh_scale_gev: float = 1.0
    dis_slope_per_gev: float = 0.375
    dis_threshold_gev: float = 1.4

    # Nuclear model: relativistic Fermi gas of carbon.
    fermi_momentum_gev: float = 0.25
    binding_energy_gev: float = 0.025

    # QE: Llewellyn Smith with dipole vector (BBBA-like) and axial form factors.
    axial_mass_gev: float = 0.99
    vector_mass_gev: float = 0.84
    axial_coupling: float = 1.267
    anomalous_moment_diff: float = 3.706

    # RES: Δ(1232) plus a flat higher-W continuum up to w_cut; Q² dipole with res_axial_mass.
    res_axial_mass_gev: float = 1.12
    res_higher_w_fraction: float = 0.25
    w_cut_gev: float = 1.7
    res_cc_proton_fraction: float = 0.7

    # DIS: x ~ Beta(a, b) (valence x·q(x)); y flat for quarks, (1-y)^2 for the sea antiquarks.
    dis_x_alpha: float = 1.5
    dis_x_beta: float = 4.0
    dis_antiquark_fraction: float = 0.15
    pythia_alund: float = 1.2
    pythia_blund: float = 0.7

    # COH: Q² dipole scale, |t| slope for carbon (exp(-b|t|)).
    coh_q2_scale_gev: float = 1.0
    coh_t_slope_per_gev2: float = 40.0

    # MEC (2p2h): Q² dipole scale, energy transfer above the QE line, np-pair fraction.
    mec_q2_scale_gev: float = 1.0
    mec_excess_mean_gev: float = 0.12
    mec_np_fraction: float = 0.85

    # ν-e elastic scattering (νμ e): weak mixing angle.
    sin2_theta_w: float = 0.2312

    # τ⁻ decay branching ratios (rest: multi-pion); one-prong shares of the a1 and multi-pion modes.
    tau_br_e: float = 0.178
    tau_br_mu: float = 0.174
    tau_br_pi: float = 0.108
    tau_br_rho: float = 0.236
    tau_br_a1: float = 0.128
    tau_a1_one_prong: float = 0.5
    tau_rest_one_prong: float = 0.51

    # Final-state interactions of pions in carbon.
    fsi_pion_absorption: float = 0.20
    fsi_charge_exchange: float = 0.10

    # Cosmic rays at the surface: muon E^-index spectrum, cos^n zenith, mu+/mu- ratio, EM share.
    cosmic_min_gev: float = 1.0
    cosmic_max_gev: float = 100.0
    cosmic_index: float = 2.0
    cosmic_zenith_power: float = 2.0
    cosmic_mu_plus_fraction: float = 0.56
    cosmic_shower_fraction: float = 0.05
    cosmic_shower_max_gev: float = 10.0

    # Beam parent: kaon share rises as a logistic in E (pion below); νe from muon decay at low E.
    parent_kaon_half_gev: float = 9.0
    parent_kaon_width_gev: float = 2.5
    parent_nue_kaon_half_gev: float = 4.0
    parent_nue_kaon_width_gev: float = 1.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "composition", MappingProxyType(validate_composition(self.composition)))
        for name in ("fsi_pion_absorption", "fsi_charge_exchange", "cosmic_shower_fraction", "flux_tail_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise NucvnError(f"generator parameter {name} = {value} must lie in [0, 1]")
        if self.fsi_pion_absorption + self.fsi_charge_exchange > 1.0:
            raise NucvnError("generator parameters fsi_pion_absorption + fsi_charge_exchange exceed 1")
        if not 0 < self.flux_min_gev < self.flux_peak_gev < self.flux_max_gev:
            raise NucvnError("generator parameters need 0 < flux_min_gev < flux_peak_gev < flux_max_gev")
        tau = self.tau_br_e + self.tau_br_mu + self.tau_br_pi + self.tau_br_rho + self.tau_br_a1
        if tau > 1.0:
            raise NucvnError(f"generator τ branching ratios sum to {tau} > 1; lower them")
