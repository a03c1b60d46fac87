"""The typed parameters of the data and evaluation stages, holding the defaults.

One dataclass per stage section of ``params.yaml`` (``fetch``, ``preprocess``, ``threshold``,
``evaluate``; the training stage's is :class:`nucvn.train.TrainConfig`), plus the evaluation
binnings, which live in their own file ``bins.yaml`` so that a ``dvc exp run -S`` on a training
parameter never rewrites them. The defaults here are the embedded defaults of the pipeline:
``params.yaml`` and ``bins.yaml`` repeat them (a test keeps the two equal), and a key left out of
the file takes its default. :func:`nucvn.core.params.parse_params` builds these from a section and
names the key of anything wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from nucvn.data.manifest import DEFAULT_BASE
from nucvn.report.stats import CriterionName

__all__ = [
    "DetectorResponseParams", "SimParams", "UrlParams", "DirParams", "FetchParams", "SplitParams", "SelectionParams",
    "PreprocessParams", "ThresholdParams", "EvaluateParams", "PreselectionParams", "DEFAULT_BINS",
]

Device = Literal["auto", "cpu", "cuda"]


def _composition() -> dict[str, float]:
    return {"numu_cc": 0.88, "nc": 0.075, "nue_cc": 0.035, "nutau_cc": 0.005, "nue_elastic": 0.002, "cosmic": 0.003}


@dataclass
class DetectorResponseParams:
    """``fetch.sim.detector``: the readout response of the fast simulation, for detector systematics.

    Same names, units and defaults as the fields of :class:`nucvn.sim.detector_params.DetectorParams`
    (a test keeps them equal; they are repeated, not imported, so that the stages reading this
    module do not import the simulation). Changing one re-simulates the same generator events and
    the same particle transport, so a nominal and a varied sample differ only by the response.
    """

    gain_counts_per_pe: float = field(default=0.55, metadata={"gt": 0})
    """Calibration scale: digitiser counts per photo-electron."""
    pe_per_mip_far: float = field(default=25.0, metadata={"gt": 0})
    """Light yield: photo-electrons of a MIP crossing one cell at its far end."""
    attenuation_length_cm: float = field(default=1200.0, metadata={"gt": 0})
    """Effective fibre attenuation length (cm)."""
    birks_kb_cm_mev: float = field(default=0.01, metadata={"min": 0})
    """Birks quenching constant kB (cm/MeV)."""
    noise_pe: float = field(default=2.5, metadata={"min": 0})
    """Gaussian electronics noise (photo-electrons)."""
    noise_hits_per_view: float = field(default=3.0, metadata={"min": 0})
    """Mean number of random noise hits per view image (Poisson)."""


@dataclass
class SimParams:
    """``fetch.sim``: the fast simulation (offline default)."""

    files: int = field(default=12, metadata={"min": 1})
    events: int = field(default=10000, metadata={"min": 1})
    seed: int = field(default=1, metadata={"min": 0})
    workers: int = field(default=2, metadata={"min": 1})
    composition: dict[str, float] = field(default_factory=_composition, metadata={"min": 0})
    detector: DetectorResponseParams = field(default_factory=DetectorResponseParams)


@dataclass
class UrlParams:
    """``fetch.url``: download the UCL/NOvA files."""

    base: str = DEFAULT_BASE
    files: str | int | list[int] = "1-200"
    parallel: int = field(default=4, metadata={"min": 1})
    retries: int = field(default=5, metadata={"min": 0})
    backoff: float = field(default=1.0, metadata={"min": 0})
    timeout: float = field(default=60.0, metadata={"gt": 0})
    min_rate: float = field(default=10_000.0, metadata={"min": 0})


@dataclass
class DirParams:
    """``fetch.dir``: files already on a local or shared disk, read in place (not copied)."""

    path: str = ""
    files: str | int | list[int] = "all"


@dataclass
class FetchParams:
    """``fetch``: where the event files come from."""

    source: Literal["sim", "url", "dir"] = "sim"
    sim: SimParams = field(default_factory=SimParams)
    url: UrlParams = field(default_factory=UrlParams)
    dir: DirParams = field(default_factory=DirParams)


@dataclass
class SplitParams:
    """``preprocess.split``: fractions, renormalised to sum to 1."""

    train: float = field(default=0.67, metadata={"min": 0})
    val: float = field(default=0.08, metadata={"min": 0})
    test: float = field(default=0.25, metadata={"min": 0})


@dataclass
class SelectionParams:
    """``preprocess.selection``: events left out of the shards."""

    drop_interactions: list[int] = field(default_factory=lambda: [15], metadata={"min": 0, "max": 15})
    drop_empty: bool = True


@dataclass
class PreprocessParams:
    """``preprocess``: raw files -> train/val/test shards."""

    seed: int = field(default=0, metadata={"min": 0})
    split: SplitParams = field(default_factory=SplitParams)
    shard_size: int = field(default=65536, metadata={"min": 1})
    chunk_size: int = field(default=1024, metadata={"min": 1})
    selection: SelectionParams = field(default_factory=SelectionParams)
    on_bad_file: Literal["fail", "skip"] = "fail"
    on_duplicate: Literal["fail", "drop"] = "fail"


@dataclass
class ThresholdParams:
    """``threshold``: the working point, chosen on the validation split."""

    criterion: CriterionName = "balanced_accuracy"
    target: float = field(default=0.9, metadata={"min": 0, "max": 1})
    points: int = field(default=1001, metadata={"min": 2})
    batch_size: int = field(default=256, metadata={"min": 1})
    device: Device = "auto"


@dataclass
class EvaluateParams:
    """``evaluate``: the report on the test split (binnings: ``bins.yaml``, :data:`DEFAULT_BINS`)."""

    batch_size: int = field(default=256, metadata={"min": 1})
    device: Device = "auto"
    confidence_level: float = field(default=0.6827, metadata={"gt": 0, "max": 0.9999})
    score_bins: int = field(default=50, metadata={"min": 1})
    roc_points: int = field(default=1000, metadata={"min": 2})
    gallery_events: int = field(default=4, metadata={"min": 0})
    misid_variables: list[str] = field(default_factory=lambda: ["nuenergy", "visible_energy"])
    preselection: PreselectionParams = field(default_factory=lambda: PreselectionParams())


@dataclass
class PreselectionParams:
    """``evaluate.preselection``: the cuts applied before the classifier (:mod:`nucvn.report.preselection`)."""

    min_hits: int = field(default=15, metadata={"min": 0})
    downstream_planes: int = field(default=2, metadata={"min": 0, "max": 99})
    downstream_max_hits: int = field(default=2, metadata={"min": 0})
    fiducial: dict[str, list[float]] = field(
        default_factory=lambda: {"x": [-700.0, 700.0], "y": [-700.0, 700.0], "z": [100.0, 5700.0]})


DEFAULT_BINS: dict[str, list[float]] = {
    "nuenergy": [0, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7, 10, 15, 20, 40, 80],
    "lepenergy": [0, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 10, 20, 80],
    "lepton_fraction": [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    "inelasticity": [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0],
    "vtxx": [-800, -600, -400, -200, 0, 200, 400, 600, 800],
    "vtxy": [-800, -600, -400, -200, 0, 200, 400, 600, 800],
    "vtxz": [0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 5500, 6000],
    "nhits": [0, 25, 50, 75, 100, 150, 200, 300, 400, 600, 1000, 16000],
    "visible_energy": [0, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 7, 10, 15, 20, 40],
    "nproton": [-0.5, 0.5, 1.5, 2.5, 3.5, 5.5, 15.5],
    "npion": [-0.5, 0.5, 1.5, 2.5, 3.5, 5.5, 15.5],
    "npizero": [-0.5, 0.5, 1.5, 2.5, 3.5, 5.5, 15.5],
}
"""Bin edges of efficiency/purity vs each variable (``bins.yaml``): GeV for energies, cm for the
vertex, pixels (both views) for ``nhits``, GeV of visible energy for ``visible_energy`` (pixel sum
calibrated on the train split), and particle counts for ``nproton``, ``npion`` (charged) and
``npizero`` (simulated files; bins centred on the integers, the last one 6-15)."""


def _variations() -> dict[str, dict[str, float]]:
    return {
        "calibration_up": {"gain_counts_per_pe": 1.05},
        "calibration_down": {"gain_counts_per_pe": 0.95},
        "light_yield_up": {"pe_per_mip_far": 1.10, "gain_counts_per_pe": 0.9091},
        "light_yield_down": {"pe_per_mip_far": 0.90, "gain_counts_per_pe": 1.1111},
        "attenuation_short": {"attenuation_length_cm": 0.8},
        "attenuation_long": {"attenuation_length_cm": 1.2},
        "birks_up": {"birks_kb_cm_mev": 1.2},
        "birks_down": {"birks_kb_cm_mev": 0.8},
        "noise_up": {"noise_pe": 1.2, "noise_hits_per_view": 2.0},
    }


@dataclass
class SystematicsParams:
    """``systematics``: the νμ CC selection on simulation with a shifted detector response
    (:mod:`nucvn.report.systematics`).

    A nominal sample (the response of ``fetch.sim.detector``) and one sample per variation are
    simulated with the same ``seed`` (a sample the model never saw: training data uses
    ``fetch.sim.seed``), so they hold the same events. ``variations`` maps a name to the factors
    applied to :class:`nucvn.sim.detector_params.DetectorParams` float fields; the light-yield
    variations redo the calibration (gain x 1/factor), so only photo-statistics and threshold
    effects remain. Field names and factors are checked by the stage, which imports the simulation.
    """

    events: int = field(default=6000, metadata={"min": 1})
    """Events per sample, split evenly over ``files`` (rounded up to a multiple of it)."""
    files: int = field(default=2, metadata={"min": 1})
    seed: int = field(default=1001, metadata={"min": 0})
    workers: int = field(default=2, metadata={"min": 1})
    batch_size: int = field(default=256, metadata={"min": 1})
    device: Device = "auto"
    variations: dict[str, dict[str, float]] = field(default_factory=_variations)


__all__ += ["SystematicsParams"]


def _report_figures() -> dict[str, str]:
    return {
        "numu_cc": "roc, scores, confusion, eff_vs_nuenergy, eff_vs_visible_energy, misid_vs_nuenergy, "
                   "misid_vs_visible_energy, eff_by_mode, wrong_events",
        "preselection": "by_category, vs_nuenergy, vs_visible_energy",
    }


@dataclass
class ReportParams:
    """``report``: the self-contained HTML report to share (stages/report.py -> reports/index.html,
    :mod:`nucvn.report.document`).

    ``tasks`` are blocks of ``metrics/test.json`` (``all``, or a list such as ``[numu_cc, nuenergy]``).
    ``figures`` names the key figures of a task, comma-separated: file stems under
    ``plots/evaluate/<task>/png`` (``preselected/roc`` for ``plots/evaluate/<task>/preselected/png/roc.png``;
    one string rather than a list, so that a ``dvc exp run -S`` rewriting params.yaml keeps it on one
    line); a task not listed shows all its figures, ``""`` none (the threshold scan of a binary task is always shown).
    ``compare_to`` is the git revision whose metrics files the report compares against (read when
    the stage runs; empty: no comparison). The output path is fixed by dvc.yaml (``--out`` of the
    stage script for a copy elsewhere).
    """

    title: str = "nucvn: results of the pipeline"
    tasks: Literal["all"] | list[str] = "all"
    figures: dict[str, str] = field(default_factory=_report_figures)

    def figure_lists(self) -> dict[str, list[str]]:
        """``figures`` as task -> list of figure stems."""
        return {task: [f.strip() for f in names.split(",") if f.strip()] for task, names in self.figures.items()}
    compare_to: str = "HEAD"


__all__ += ["ReportParams"]
