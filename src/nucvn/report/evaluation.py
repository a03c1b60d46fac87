"""Turn scores and true metadata into the tables and numbers of an evaluation.

Everything takes a score per event, the metadata DataFrame of the same events (as
``ShardDataset.metadata`` gives it, or ``EventReader.read_metadata``) and explicit binnings, and
returns pandas DataFrames ready to be written as CSV for ``dvc plots show`` (and drawn by
:mod:`nucvn.report.plots`) plus a flat metrics dict. All rates come from counts via :mod:`nucvn.report.stats`
(Clopper-Pearson intervals). The threshold is an input: it is chosen on the validation split by
:func:`nucvn.report.stats.choose_threshold`, never here.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from nucvn.core import events as ev
from nucvn.core.errors import NucvnError
from nucvn.data.h5io import META_DTYPES
from nucvn.data.manifest import read_manifest
from nucvn.report import stats as m
from nucvn.report.uncertainty import auc_and_error, balanced_accuracy_error, fom_error

__all__ = [
    "CATEGORIES",
    "BACKGROUNDS",
    "MISID_CATEGORIES",
    "MODE_NAMES",
    "IDENTITY_COLUMNS",
    "signal_labels",
    "categories",
    "variable_values",
    "count_hits",
    "rate_vs_table",
    "category_table",
    "finalstate_table",
    "misid_table",
    "score_histograms",
    "roc_table",
    "confusion_table",
    "summary_metrics",
    "Evaluation",
    "evaluate",
    "data_source",
    "mode_names",
    "cc_mode_names",
    "check_variables",
]

CATEGORIES: tuple[str, ...] = ("numu_cc", "nue_cc", "nutau_cc", "nc", "cosmic", "other")
"""Event categories by true flavour (:class:`nucvn.core.events.Flavour`; "other" is flavour -1)."""
BACKGROUNDS: tuple[str, ...] = CATEGORIES[1:]
MISID_CATEGORIES: tuple[str, ...] = ("nc", "nue_cc", "nutau_cc")
"""Backgrounds whose mis-identification rate vs energy is reported."""
MODE_NAMES: tuple[str, ...] = ("QE", "RES", "DIS", "MEC", "COH", "other")
"""Rows of the efficiency-by-mode table. The files' interaction code says QE, RES, DIS or "other"
(FORMAT.md: coherent pion production and MEC/2p2h together); simulated files also carry the
generator's ``mode`` (stored as ``raw_mode`` in the shards), which splits "other" into MEC and
COH, so there "other" is empty, and in the real files MEC and COH are."""
_GEN_MODE_NAMES: dict[int, str] = {0: "QE", 1: "RES", 2: "DIS", 3: "COH", 4: "MEC"}
"""The simulation's generator modes (:class:`nucvn.sim.xsec.GenMode`) by code."""
IDENTITY_COLUMNS: tuple[str, ...] = ("file", "index", "run", "subrun", "evt", "cycle", "subevt")


def _column(meta: pd.DataFrame, name: str) -> npt.NDArray[Any]:
    if name not in meta.columns:
        raise NucvnError(f"metadata has no column {name!r}; columns: {', '.join(map(str, meta.columns))}")
    return meta[name].to_numpy()


def _interaction(meta: pd.DataFrame) -> npt.NDArray[Any]:
    return _column(meta, "raw_interaction" if "raw_interaction" in meta.columns else "interaction")


def signal_labels(meta: pd.DataFrame) -> npt.NDArray[np.bool_]:
    """True for νμ CC events (the ``numu_cc`` column, else computed from ``interaction``)."""
    if "numu_cc" in meta.columns:
        return meta["numu_cc"].to_numpy().astype(bool)
    return ev.numu_cc(_interaction(meta))


def categories(meta: pd.DataFrame) -> npt.NDArray[np.object_]:
    """Category name of each event (:data:`CATEGORIES`), from the ``flavour`` label."""
    fl = meta["flavour"].to_numpy().astype(np.int64) if "flavour" in meta.columns else ev.flavour(_interaction(meta))
    names = np.array((*CATEGORIES[:5], "other"), dtype=object)
    return names[np.where((fl >= 0) & (fl < 5), fl, 5)]


def variable_values(meta: pd.DataFrame, name: str, *, nhits: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
    """Values of a variable to bin in: any metadata column, ``nhits`` (given), and
    ``lepton_fraction`` and ``inelasticity``, taken from the files when they carry them (simulated
    files do) and otherwise computed from the energies by :mod:`nucvn.core.events`."""
    if name == "nhits":
        if nhits is None:
            raise NucvnError("variable 'nhits' needs the hit counts (count_hits of the images)")
        return np.asarray(nhits, dtype=np.float64)
    if name in _DERIVED and name not in meta.columns:
        # float64 already (nucvn.core.events types it as any float), so asarray returns the same array
        return np.asarray(_DERIVED[name](_column(meta, "lepenergy"), _column(meta, "nuenergy")), dtype=np.float64)
    return _column(meta, name).astype(np.float64)


_DERIVED = {"lepton_fraction": ev.lepton_fraction, "inelasticity": ev.inelasticity}
PROVIDED: tuple[str, ...] = ("nhits", "visible_energy")
"""Variables that are not metadata: the hit count (given apart) and the visible energy (a column
the evaluation adds when the model records its calibration, :mod:`nucvn.report.visible_energy`)."""


_LABEL_MODE_NAMES = np.array(["QE", "RES", "DIS", "other", "NC", "none"], dtype=object)
"""Name of each ``mode`` label (:class:`nucvn.core.events.Mode`; "none" for cosmic and "other")."""


def mode_names(meta: pd.DataFrame) -> npt.NDArray[np.object_]:
    """QE, RES, DIS, other, NC or none per event, from the ``mode`` label (FORMAT.md)."""
    m = ev.mode(_interaction(meta))
    return _LABEL_MODE_NAMES[np.where(m < 0, 5, m)]


def cc_mode_names(meta: pd.DataFrame) -> npt.NDArray[np.object_]:
    """:func:`mode_names` with "other" split into MEC and COH where the files carry the generator's
    mode (``raw_mode``, simulated files); the rows of :data:`MODE_NAMES`."""
    names = mode_names(meta)
    if "raw_mode" in meta.columns:
        gen = meta["raw_mode"].to_numpy().astype(np.int64)
        other = names == "other"
        names[other] = np.array([_GEN_MODE_NAMES.get(int(g), "other") for g in gen[other]], dtype=object)
    return names


def _available(meta: pd.DataFrame, name: str, nhits: npt.ArrayLike | None) -> bool:
    if name == "nhits":
        return nhits is not None
    return name in meta.columns or (name in _DERIVED and {"lepenergy", "nuenergy"} <= set(meta.columns))


def check_variables(columns: Iterable[str], bins: Mapping[str, Sequence[float]],
                    misid_variables: Sequence[str]) -> None:
    """Refuse, before anything is scored, a binning of a variable nucvn does not know and a
    mis-identification variable without a binning.

    Known: every metadata key of the file format (:data:`nucvn.data.h5io.META_DTYPES`), every column
    of the data at hand, ``nhits`` and the derived ``lepton_fraction`` and ``inelasticity``. A
    known variable that this data lacks (e.g. ``vtxx`` in files without vertices) is not an error:
    :func:`evaluate` leaves its plot out and says so.
    """
    known = set(columns) | set(META_DTYPES) | set(_DERIVED) | set(PROVIDED)
    unknown = sorted(set(bins) - known)
    if unknown:
        raise NucvnError(f"bins.yaml: unknown variable {unknown[0]!r}; known: {', '.join(sorted(known))}")
    for name, edges in bins.items():
        _edges(edges, name)
    for name in misid_variables:
        if name not in bins:
            raise NucvnError(f"evaluate.misid_variables: {name!r} has no binning in bins.yaml; choose among "
                             f"{', '.join(bins)}")


def count_hits(batches: Iterable[npt.ArrayLike]) -> npt.NDArray[np.int64]:
    """Number of non-zero pixels (both views) per event, over batches of ``(b, 2, 100, 80)`` images."""
    out = [np.count_nonzero(a.reshape(len(a), -1), axis=1) for a in map(np.asarray, batches)]
    return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)


def _edges(edges: Sequence[float], name: str) -> npt.NDArray[np.float64]:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or np.any(~np.isfinite(e)) or np.any(np.diff(e) <= 0):
        raise NucvnError(f"bins.yaml: {name}: bin edges must be an increasing list of at least 2 numbers, got "
                         f"{list(edges)}")
    return e


def rate_vs_table(
    values: npt.ArrayLike,
    is_signal: npt.ArrayLike,
    selected: npt.ArrayLike,
    edges: Sequence[float],
    *,
    variable: str,
    cl: float = m.ONE_SIGMA,
) -> pd.DataFrame:
    """Efficiency (selected signal / signal) and purity (signal / selected) in bins of a variable.

    Columns: ``{variable}`` (bin centre), ``bin_low``, ``bin_high``, then ``efficiency``,
    ``purity`` with ``_lo``, ``_hi`` (Clopper-Pearson) and the counts ``_k``, ``_n``.
    """
    e = _edges(edges, variable)
    x = np.asarray(values, dtype=np.float64)
    sig = np.asarray(is_signal, dtype=bool)
    sel = np.asarray(selected, dtype=bool)
    k_eff, n_eff = m.binned_counts(x[sig], sel[sig], e)
    k_pur, n_pur = m.binned_counts(x[sel], sig[sel], e)
    head = pd.DataFrame({variable: 0.5 * (e[:-1] + e[1:]), "bin_low": e[:-1], "bin_high": e[1:]})
    return pd.concat(
        [head, m.rate_table(k_eff, n_eff, name="efficiency", cl=cl), m.rate_table(k_pur, n_pur, name="purity", cl=cl)],
        axis=1,
    )


def category_table(
    names: npt.ArrayLike, passed: npt.ArrayLike, order: Sequence[str], *, column: str, rate: str = "efficiency",
    cl: float = m.ONE_SIGMA
) -> pd.DataFrame:
    """Rate per category (e.g. signal efficiency per interaction mode); categories with no events
    are kept with NaN so every table has the same rows."""
    nm = np.asarray(names, dtype=object)
    ok = np.asarray(passed, dtype=bool)
    k = [int(np.sum(ok[nm == c])) for c in order]
    n = [int(np.sum(nm == c)) for c in order]
    return pd.concat([pd.DataFrame({column: list(order)}), m.rate_table(k, n, name=rate, cl=cl)], axis=1)


def finalstate_table(meta: pd.DataFrame, is_signal: npt.ArrayLike, selected: npt.ArrayLike, *,
                     cl: float = m.ONE_SIGMA) -> pd.DataFrame:
    """Signal efficiency per true final-state track and shower count (3 = "3 or more"), from the
    ``n_tracks``/``n_showers`` labels (or ``finalstate``); events without a coded final state are
    left out. Empty if the files carry no final state."""
    if "n_tracks" in meta.columns and "n_showers" in meta.columns:
        t, s = meta["n_tracks"].to_numpy().astype(np.int64), meta["n_showers"].to_numpy().astype(np.int64)
    elif "finalstate" in meta.columns:
        t, s = ev.n_tracks(meta["finalstate"]), ev.n_showers(meta["finalstate"])
    else:
        return pd.DataFrame(columns=["finalstate", "n_tracks", "n_showers", "efficiency", "efficiency_lo",
                                     "efficiency_hi"])
    sig = np.asarray(is_signal, dtype=bool) & (t >= 0) & (s >= 0)
    labels = np.array([f"{a}t{b}s" for a in range(4) for b in range(4)], dtype=object)
    names = labels[np.clip(t, 0, 3) * 4 + np.clip(s, 0, 3)]
    tab = category_table(names[sig], np.asarray(selected, bool)[sig], list(labels), column="finalstate", cl=cl)
    tab.insert(1, "n_tracks", [i // 4 for i in range(16)])
    tab.insert(2, "n_showers", [i % 4 for i in range(16)])
    return tab


def misid_table(
    values: npt.ArrayLike,
    cats: npt.ArrayLike,
    selected: npt.ArrayLike,
    edges: Sequence[float],
    *,
    variable: str,
    which: Sequence[str] = MISID_CATEGORIES,
    cl: float = m.ONE_SIGMA,
) -> pd.DataFrame:
    """Mis-identification rate (fraction selected as νμ CC) of each background category in bins
    of a variable; columns ``{cat}``, ``{cat}_lo``, ``{cat}_hi``, ``{cat}_k``, ``{cat}_n``."""
    e = _edges(edges, variable)
    x = np.asarray(values, dtype=np.float64)
    c = np.asarray(cats, dtype=object)
    sel = np.asarray(selected, dtype=bool)
    parts = [pd.DataFrame({variable: 0.5 * (e[:-1] + e[1:]), "bin_low": e[:-1], "bin_high": e[1:]})]
    for cat in which:
        k, n = m.binned_counts(x[c == cat], sel[c == cat], e)
        parts.append(m.rate_table(k, n, name=cat, cl=cl))
    return pd.concat(parts, axis=1)


def score_histograms(scores: npt.ArrayLike, cats: npt.ArrayLike, *, n_bins: int = 50) -> pd.DataFrame:
    """Score distribution of each category, normalised to unit sum (``{cat}``) with the raw counts
    (``{cat}_count``), in ``n_bins`` equal bins on [0, 1]. Every category of :data:`CATEGORIES` has
    its columns (all zero when it has no events), so plot definitions never miss a field."""
    if n_bins < 1:
        raise NucvnError(f"evaluate.score_bins must be >= 1, got {n_bins}")
    s = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
    c = np.asarray(cats, dtype=object)
    e = np.linspace(0.0, 1.0, n_bins + 1)
    out = pd.DataFrame({"score": 0.5 * (e[:-1] + e[1:]), "bin_low": e[:-1], "bin_high": e[1:]})
    for cat in CATEGORIES:
        h, _ = np.histogram(s[c == cat], bins=e)
        out[cat] = h / max(int(h.sum()), 1)
        out[f"{cat}_count"] = h
    return out


def roc_table(is_signal: npt.ArrayLike, scores: npt.ArrayLike, *, max_points: int = 1000) -> pd.DataFrame:
    """ROC points (``fpr``, ``tpr``, ``threshold``), thinned to at most ``max_points`` evenly
    spaced along the curve, always keeping both ends (so the plot file stays small)."""
    fpr, tpr, thr = m.roc_curve(is_signal, scores)
    if fpr.size > max_points >= 2:
        keep = np.unique(np.round(np.linspace(0, fpr.size - 1, max_points)).astype(np.int64))
        fpr, tpr, thr = fpr[keep], tpr[keep], thr[keep]
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": np.where(np.isfinite(thr), thr, 1.0)})


def confusion_table(cats: npt.ArrayLike, selected: npt.ArrayLike) -> pd.DataFrame:
    """The event count of every (``actual`` category, ``predicted`` class) pair, zeros included:
    ``actual``, ``predicted`` (``numu_cc`` or ``not_numu_cc``), ``count``; the input of the
    ``nucvn_confusion`` plot template (.dvc/plots/), which sums ``count`` (a table of one row per
    event would put every event into the page ``dvc plots show`` writes)."""
    actual = np.asarray(cats, dtype=object)
    predicted = np.where(np.asarray(selected, bool), "numu_cc", "not_numu_cc")
    rows = [(a, p, int(np.sum((actual == a) & (predicted == p))))
            for a in sorted(set(actual.tolist())) for p in ("numu_cc", "not_numu_cc")]
    return pd.DataFrame(rows, columns=["actual", "predicted", "count"])


def summary_metrics(is_signal: npt.ArrayLike, scores: npt.ArrayLike, *, threshold: float,
                    cl: float = m.ONE_SIGMA) -> dict[str, float | int]:
    """AUC (with DeLong's standard error), balanced accuracy (with its binomial standard error),
    accuracy, efficiency, purity and background rejection (with Clopper-Pearson intervals) and fom
    (with its delta-method error) at ``threshold``, with the event counts
    (:mod:`nucvn.report.uncertainty`): every number a ``dvc metrics diff`` shows has its error."""
    y = np.asarray(is_signal, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    c = m.confusion_counts(y, s, threshold)
    eff_lo, eff_hi = m.clopper_pearson(int(c.tp), int(c.n_signal), cl) if c.n_signal else (0.0, 1.0)
    pur_lo, pur_hi = m.clopper_pearson(int(c.tp), int(c.n_selected), cl) if c.n_selected else (0.0, 1.0)
    acc_lo, acc_hi = m.clopper_pearson(int(c.tp + c.tn), int(y.size), cl) if y.size else (0.0, 1.0)
    rej_lo, rej_hi = m.clopper_pearson(int(c.tn), int(c.n_background), cl) if c.n_background else (0.0, 1.0)
    auc, auc_err = auc_and_error(y, s)
    bacc_err = balanced_accuracy_error(float(m.efficiency(c)), int(c.n_signal), float(m.background_rejection(c)),
                                       int(c.n_background))
    out: dict[str, float | int] = {
        "auc": auc,
        "auc_err": auc_err,
        "accuracy": float(m.accuracy(c)),
        "accuracy_lo": float(acc_lo),
        "accuracy_hi": float(acc_hi),
        "balanced_accuracy": float(m.balanced_accuracy(c)),
        "balanced_accuracy_err": bacc_err,
        "efficiency": float(m.efficiency(c)),
        "efficiency_lo": float(eff_lo),
        "efficiency_hi": float(eff_hi),
        "purity": float(m.purity(c)),
        "purity_lo": float(pur_lo),
        "purity_hi": float(pur_hi),
        "background_rejection": float(m.background_rejection(c)),
        "background_rejection_lo": float(rej_lo),
        "background_rejection_hi": float(rej_hi),
        "fom": float(m.figure_of_merit(c)),
        "fom_err": fom_error(int(c.tp), int(c.n_signal), int(c.n_selected)),
        "threshold": float(threshold),
        "n_test": int(y.size),
        "n_signal": int(y.sum()),
        "n_selected": int(c.n_selected),
        "confidence_level": float(cl),
    }
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in out.items()}  # type: ignore[misc]


@dataclass
class Evaluation:
    """Everything :func:`evaluate` computes: ``metrics`` (flat dict) and ``tables`` by file stem."""

    metrics: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    skipped_variables: list[str] = field(default_factory=list)


def evaluate(
    scores: npt.ArrayLike,
    meta: pd.DataFrame,
    *,
    threshold: float,
    bins: Mapping[str, Sequence[float]],
    misid_variables: Sequence[str] = ("nuenergy",),
    nhits: npt.ArrayLike | None = None,
    score_bins: int = 50,
    roc_points: int = 1000,
    cl: float = m.ONE_SIGMA,
    is_signal: npt.ArrayLike | None = None,
) -> Evaluation:
    """All tables and metrics of one evaluation.

    ``bins`` maps variable names to bin edges; a variable is skipped (and listed in
    ``skipped_variables``) when the metadata lacks it (e.g. ``vtxx`` in files without vertex
    information) or, for ``nhits``, when no hit counts are given. Table names: ``roc``, ``scores``,
    ``confusion``, ``eff_vs_<variable>``, ``eff_by_mode``, ``eff_by_finalstate``, ``misid_vs_<variable>``
    for each of ``misid_variables``. ``is_signal`` is the binary task's label
    (its :meth:`~nucvn.tasks.base.Task.targets`); without it, νμ CC.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(s) != len(meta):
        raise NucvnError(f"got {len(s)} scores for {len(meta)} events; predictions and metadata must match")
    if len(s) == 0:
        raise NucvnError("nothing to evaluate: the split holds no events")
    y = signal_labels(meta) if is_signal is None else np.asarray(is_signal, dtype=bool)
    sel = s >= threshold
    cats = categories(meta)
    result = Evaluation(metrics=summary_metrics(y, s, threshold=threshold, cl=cl))
    t = result.tables
    t["roc"] = roc_table(y, s, max_points=roc_points)
    t["scores"] = score_histograms(s, cats, n_bins=score_bins)
    t["confusion"] = confusion_table(cats, sel)
    skipped = []
    for var, edges in bins.items():
        if not _available(meta, var, nhits):
            skipped.append(var)
            continue
        t[f"eff_vs_{var}"] = rate_vs_table(variable_values(meta, var, nhits=nhits), y, sel, edges, variable=var, cl=cl)
    t["eff_by_mode"] = category_table(cc_mode_names(meta)[y], sel[y], list(MODE_NAMES), column="mode", cl=cl)
    t["eff_by_finalstate"] = finalstate_table(meta, y, sel, cl=cl)
    for var in misid_variables:
        if var not in bins:
            raise NucvnError(f"evaluate.misid_variables: {var!r} has no binning in bins.yaml")
        if not _available(meta, var, nhits):
            continue
        t[f"misid_vs_{var}"] = misid_table(variable_values(meta, var, nhits=nhits), cats, sel, bins[var], variable=var,
                                           cl=cl)
    result.skipped_variables = skipped
    result.metrics["n_by_category"] = {c: int(np.sum(cats == c)) for c in CATEGORIES if np.any(cats == c)}
    return result


def data_source(raw_dir: str | os.PathLike[str]) -> str:
    """``sim`` or ``url``: where the events came from, from the fetch stage's ``MANIFEST.json`` in
    ``raw_dir`` (``unknown`` when there is none), so every metric file and figure can say it."""
    manifest = read_manifest(Path(raw_dir))
    return str(manifest.get("source", "unknown")) if manifest else "unknown"
