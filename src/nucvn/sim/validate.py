"""``nucvn validate-sim --out DIR [--events N] [--seed S]``: plots a physicist checks in a minute.

Simulates what it needs (particle guns and a generated sample) and writes, under ``DIR``, the
plots of docs/simulation.md — event displays of each class (z horizontal), muon track length vs
energy against the CSDA range, mean EM shower profile vs the Γ-profile, single-MIP pixel values,
energy and composition spectra, ⟨n_ch⟩ vs W — and ``summary.json`` with the same numbers.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from nucvn.core.atomic import write_json
from nucvn.core.errors import NucvnError
from nucvn.core.events import Interaction, numu_cc
from nucvn.report.display import draw_views
from nucvn.report.plots import save_figure
from nucvn.sim import checks
from nucvn.sim.detector import Detector
from nucvn.sim.detector_params import DetectorParams
from nucvn.sim.generator_params import DEFAULT_COMPOSITION, GeneratorParams
from nucvn.sim.readout import mip_counts
from nucvn.sim.simulate import SimulatedEvents, simulate_events

__all__ = ["add_arguments", "run", "validate"]

_DISPLAY_MIX = {"numu_cc": 0.45, "nue_cc": 0.15, "nutau_cc": 0.1, "nc": 0.15, "nue_elastic": 0.05, "cosmic": 0.1}
_DISPLAY_CLASSES = {
    "numu_cc_qe": (0,), "numu_cc_res": (1,), "numu_cc_dis": (2,), "numu_cc_other": (3,),
    "nue_cc": (4, 5, 6, 7), "nutau_cc": (8, 9, 10, 11), "nue_elastic": (12,), "nc": (13,), "cosmic": (14,),
}  # fmt: skip


def _displays(sample: SimulatedEvents, out: Path) -> dict[str, int]:
    code = sample.meta["interaction"].astype(int)
    energy = sample.meta["nuenergy"]
    chosen: dict[str, int] = {}
    for name, codes in _DISPLAY_CLASSES.items():
        idx = np.flatnonzero(np.isin(code, codes) & (energy > 1.0) & (energy < 12.0))
        if idx.size == 0:
            idx = np.flatnonzero(np.isin(code, codes))
        if idx.size == 0:
            continue
        i = int(idx[0])
        chosen[name] = i
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
        artist = draw_views(axes, sample.images[i])
        fig.colorbar(artist, ax=list(axes), label="pixel value (8-bit counts)")
        fig.suptitle(f"{name}: {Interaction(code[i]).name}, E_nu = {energy[i]:.2f} GeV, "
                     f"E_lep = {sample.meta['lepenergy'][i]:.2f} GeV, "
                     f"finalstate {int(sample.meta['finalstate'][i])}")
        save_figure(fig, out / f"event_{name}.png")
    return chosen


def _muon_range(det: Detector, n: int, seed: int, out: Path) -> dict[str, object]:
    mr = checks.measure_muon_range(det, n, seed=seed)
    ok = np.isfinite(mr.length_cm)
    bins = [(0.2, 0.7), (0.7, 1.3), (1.3, 2.0), (2.0, 3.0)]
    per_bin = {}
    for lo, hi in bins:
        sel = ok & (mr.kinetic_gev >= lo) & (mr.kinetic_gev < hi)
        per_bin[f"{lo}-{hi} GeV"] = float(np.median(mr.ratio[sel])) if sel.any() else None
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    ax.scatter(mr.kinetic_gev[ok], mr.length_cm[ok] / 100, s=4, alpha=0.5, label="simulated (vertex → last hit)")
    e = np.linspace(0.15, 3.1, 200)
    ax.plot(e, checks.csda_range_cm(e * 1000) / 100, "r-", label="CSDA range table")
    ax.plot([1.0, 2.0], [4.8, 9.5], "k*", ms=12, label="range-table anchors")
    ax.set_xlabel("muon kinetic energy (GeV)")
    ax.set_ylabel("track length (m)")
    ax.set_title("Contained muons: length vs energy")
    ax.legend()
    save_figure(fig, out / "muon_range.png")
    return {
        "median_length_over_csda": float(np.median(mr.ratio[ok])),
        "fraction_within_10pct": float(np.mean(np.abs(mr.ratio[ok] - 1) < 0.1)),
        "median_ratio_by_energy": per_bin,
        "n": int(ok.sum()),
    }


def _showers(det: Detector, n: int, seed: int, out: Path) -> dict[str, object]:
    p = det.params
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), constrained_layout=True)
    result: dict[str, object] = {}
    for ax, (pdg, label, offset) in zip(axes,
                                        ((11, "electron", p.shower_tmax_offset_electron),
                                               (22, "photon", p.shower_tmax_offset_photon)), strict=True):
        for k, e in enumerate((1.0, 3.0)):
            prof = checks.measure_shower_profile(det, pdg, e, n, seed=seed + k)
            ref = checks.gamma_profile(prof.t_x0, prof.energy_mev, p.critical_energy_mev, offset, p.shower_b)
            ref_mean = float(np.sum(ref * prof.t_x0) / np.sum(ref))
            colour = f"C{k}"
            ax.step(prof.t_x0, prof.profile, where="mid", color=colour, label=f"{label} {e:g} GeV simulated")
            ax.plot(prof.t_x0, ref, "--", color=colour, label=f"Γ-profile, t_max = ln(E/E_c) {offset:+.1f}")
            result[f"{label}_{e:g}GeV"] = {"mean_depth_x0": prof.mean_t_x0, "gamma_mean_depth_x0": ref_mean,
                                           "peak_x0": float(prof.t_x0[np.argmax(prof.profile)]),
                                           "gamma_peak_x0": float(np.log(prof.energy_mev / p.critical_energy_mev)
                                                                  + offset)}
        ax.set_xlabel("depth from the particle's origin (X0)")
        ax.set_ylabel("fraction of pixel sum per X0")
        ax.set_title(f"{label} showers (mean of {n})")
        ax.legend(fontsize=7)
    save_figure(fig, out / "shower_profile.png")
    return result


def _mip(det: Detector, n: int, seed: int, out: Path) -> dict[str, object]:
    vals = checks.measure_mip_values(det, n, seed=seed)
    hist = np.bincount(vals, minlength=256)
    peak = int(np.argmax(hist[5:]) + 5)
    mid = mip_counts(np.full(20000, 775.0), det._P, seed=seed)
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    ax.hist(vals, bins=np.arange(0, 121), histtype="step", label="2 GeV muon track pixels")
    ax.hist(mid[mid > 0], bins=np.arange(0, 121), histtype="step", label="one MIP at mid-cell (readout only)")
    ax.set_xlabel("pixel value (8-bit counts)")
    ax.set_ylabel("pixels")
    ax.set_title("Single-MIP pixel values")
    ax.legend()
    save_figure(fig, out / "mip_pixels.png")
    return {"peak": peak, "median": float(np.median(vals)), "mean": float(np.mean(vals)),
            "mid_cell_median": float(np.median(mid[mid > 0]))}


def _linearity(det: Detector, n: int, seed: int, out: Path) -> dict[str, object]:
    energies = np.array([0.2, 0.5, 1.0, 1.5, 2.0, 3.0])
    sums, evis = checks.measure_linearity(det, energies, n, seed=seed)
    slope, intercept = np.polyfit(evis, sums, 1)
    resid = (sums - (slope * evis + intercept)) / sums
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    ax.plot(evis, sums, "o", label="electron showers (mean)")
    ax.plot(evis, slope * evis + intercept, "-", label=f"fit: {slope:.2f} counts/MeV")
    ax.set_xlabel("visible energy (MeV)")
    ax.set_ylabel("pixel sum (counts)")
    ax.legend()
    save_figure(fig, out / "linearity.png")
    return {"counts_per_visible_mev": float(slope), "intercept": float(intercept),
            "max_abs_residual": float(np.max(np.abs(resid)))}


def _spectra(sample: SimulatedEvents, out: Path) -> dict[str, object]:
    m = sample.meta
    code = m["interaction"].astype(int)
    e = m["nuenergy"].astype(float)
    classes = {"numu_cc": numu_cc(code), "nue_cc": (code >= 4) & (code <= 7), "nutau_cc": (code >= 8) & (code <= 11),
               "nc": code == 13, "nue_elastic": code == 12, "cosmic": code == 14}  # fmt: skip
    beam = code != 14
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), constrained_layout=True)
    bins = np.linspace(0, 30, 61)
    axes[0].hist([e[c] for c in classes.values()], bins=bins, stacked=True, label=list(classes))
    axes[0].set_xlabel("true neutrino energy (GeV)")
    axes[0].set_ylabel("events")
    axes[0].set_title(f"energy spectrum ({beam.sum()} beam events; > 30 GeV not shown)")
    axes[0].legend(fontsize=7)
    names = list(classes)
    x = np.arange(len(names))
    axes[1].bar(x - 0.2, [classes[c].mean() for c in names], 0.4, label="simulated")
    axes[1].bar(x + 0.2, [DEFAULT_COMPOSITION[c] for c in names], 0.4, label="requested")
    axes[1].set_xticks(x, names, rotation=30)
    axes[1].set_yscale("log")
    axes[1].set_title("composition")
    axes[1].legend()
    mode_names = ["QE", "RES", "DIS", "other"]
    ebins = np.array([0.5, 1, 1.5, 2, 3, 5, 10, 20, 80])
    cc = numu_cc(code)
    frac = np.zeros((len(mode_names), ebins.size - 1))
    for j in range(ebins.size - 1):
        sel = cc & (e >= ebins[j]) & (e < ebins[j + 1])
        if sel.any():
            frac[:, j] = np.bincount(code[sel] % 4, minlength=4) / sel.sum()
    centres = np.sqrt(ebins[1:] * ebins[:-1])
    for k, name in enumerate(mode_names):
        axes[2].plot(centres, frac[k], "o-", label=name)
    axes[2].set_xscale("log")
    axes[2].set_xlabel("true neutrino energy (GeV)")
    axes[2].set_ylabel("fraction of νμ CC")
    axes[2].set_title("νμ CC modes vs energy")
    axes[2].legend()
    save_figure(fig, out / "spectra.png")
    around2 = cc & (e > 1.5) & (e < 2.5)
    return {
        "composition": {c: float(v.mean()) for c, v in classes.items()},
        "requested": dict(DEFAULT_COMPOSITION),
        "mean_energy_gev": float(e[beam].mean()),
        "median_energy_gev": float(np.median(e[beam])),
        "fraction_above_10gev": float(np.mean(e[beam] > 10)),
        "max_energy_gev": float(e.max()),
        "numu_cc_modes_1p5_2p5gev": dict(zip(
            mode_names, (np.bincount(code[around2] % 4, minlength=4) / max(around2.sum(), 1)).tolist(), strict=True)),
        "finalstate_top": {str(k): int(v)
                           for k, v in zip(*np.unique(m["finalstate"], return_counts=True), strict=True)},
    }


def _multiplicity(sample: SimulatedEvents, out: Path) -> dict[str, object]:
    """⟨n_ch⟩ of hadronised DIS systems vs W, for νp (where the reference parametrisation
    0.40 + 1.42 ln W² holds) and νn (lower, for comparison), before FSI."""
    n = len(sample)
    w = np.asarray(sample.truth.get("hadronic_w", np.full(n, np.nan)), dtype=float)
    nch = np.asarray(sample.truth.get("nch_primary", np.zeros(n)), dtype=float)
    target = np.asarray(sample.truth.get("target_pdg", np.zeros(n)), dtype=int)
    cc_dis = (np.isfinite(w) & (w > 1.7) & (np.asarray(sample.meta["iscc"]) == 1)
              & (np.asarray(sample.meta["mode"]) == 2))
    edges = np.array([1.7, 2.0, 2.5, 3.0, 3.5, 4.5, 6.0, 8.0])
    fig, ax = plt.subplots(figsize=(6.5, 4.5), constrained_layout=True)
    result: dict[str, object] = {}
    for name, pdg, style in (("nu_p", 2212, "o"), ("nu_n", 2112, "s")):
        centres, means, errs = [], [], []
        for lo, hi in itertools.pairwise(edges):
            sel = cc_dis & (target == pdg) & (w >= lo) & (w < hi)
            if sel.sum() >= 5:
                centres.append(float(w[sel].mean()))
                means.append(float(nch[sel].mean()))
                errs.append(float(nch[sel].std() / np.sqrt(sel.sum())))
        label = "νp CC DIS" if pdg == 2212 else "νn CC DIS"
        ax.errorbar(centres, means, yerr=errs, fmt=style, label=f"generator, {label} (before FSI)")
        result[name] = {"w_gev": centres, "mean_nch": means}
    ww = np.linspace(1.7, 8, 100)
    ax.plot(ww, 0.40 + 1.42 * np.log(ww**2), "r-", label="0.40 + 1.42 ln W² (νp)")
    ax.set_xlabel("hadronic invariant mass W (GeV)")
    ax.set_ylabel("⟨n_ch⟩")
    ax.set_title("charged multiplicity vs W")
    ax.legend()
    save_figure(fig, out / "multiplicity.png")
    centres_p = result["nu_p"]["w_gev"]  # type: ignore[index]
    result["reference_nu_p"] = [0.40 + 1.42 * np.log(c**2) for c in centres_p]
    return result


def validate(out: Path, *, events: int = 3000, seed: int = 1,
             progress: Callable[[str], None] | None = None) -> dict[str, object]:
    """Simulate, measure and plot; returns the summary that is also written to ``summary.json``."""
    if events < 100:
        raise NucvnError(f"validate-sim: --events must be >= 100 for meaningful spectra, got {events}")
    out.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    quiet = Detector(DetectorParams(noise_hits_per_view=0.0))
    det = Detector()
    n_gun = max(200, events // 10)
    summary: dict[str, object] = {"seed": seed, "events": events}
    say("muon range")
    summary["muon_range"] = _muon_range(quiet, n_gun, seed, out)
    say("shower profiles")
    summary["shower_profile"] = _showers(quiet, n_gun, seed + 10, out)
    say("MIP pixel values")
    summary["mip_pixels"] = _mip(det, max(50, n_gun // 4), seed + 20, out)
    say("linearity")
    summary["linearity"] = _linearity(det, max(50, n_gun // 4), seed + 30, out)
    say("generated sample")
    sample = simulate_events(events, seed=seed)
    summary["spectra"] = _spectra(sample, out)
    summary["multiplicity"] = _multiplicity(sample, out)
    say("event displays")
    mixed = simulate_events(max(100, events // 10), seed=seed + 1,
                            generator_params=GeneratorParams(composition=_DISPLAY_MIX))
    summary["displays"] = _displays(mixed, out)
    write_json(summary, out / "summary.json")
    return summary


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="directory for the PNG plots and summary.json")
    parser.add_argument("--events", type=int, default=3000, help="events in the generated sample (default 3000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")


def run(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise NucvnError(f"--seed must be >= 0, got {args.seed}")
    summary = validate(args.out, events=args.events, seed=args.seed,
                       progress=lambda m: print(f"validate-sim: {m}", flush=True))
    mr = summary["muon_range"]
    mip = summary["mip_pixels"]
    print(f"muon length/CSDA median {mr['median_length_over_csda']:.3f}; "  # type: ignore[index]
          f"MIP pixel peak {mip['peak']}; wrote {args.out}")  # type: ignore[index]
    return 0
