"""A physicist's at-a-glance summary of event files: counts, composition, energies, occupancy.

Streams the files chunk by chunk (bounded memory) and returns plain Python numbers, so the same
summary serves the ``inspect`` command, JSON output and tests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nucvn.core.events import Flavour, Interaction, Mode, flavour, mode, numu_cc
from nucvn.data.h5io import EventReader

__all__ = ["summarise", "format_summary"]

_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _counts(names: dict[int, str], values: np.ndarray) -> dict[str, int]:
    codes, n = np.unique(values, return_counts=True)
    return {names.get(int(c), f"code {int(c)}"): int(k) for c, k in zip(codes, n, strict=True)}


def _energy(values: np.ndarray) -> dict[str, float]:
    q = np.quantile(values, _QUANTILES)
    out = {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean())}
    out.update({f"q{int(p * 100):02d}": float(v) for p, v in zip(_QUANTILES, q, strict=True)})
    return out


def summarise(reader: EventReader, *, chunk_size: int = 1024) -> dict[str, Any]:
    """Summarise every event of ``reader``: composition by interaction code and by label,
    energy ranges and quantiles, and pixel occupancy per view (hit pixels, saturated pixels)."""
    meta = reader.read_metadata(keys=["interaction", "nuenergy", "lepenergy"])
    inter = meta["interaction"].to_numpy()
    hits = np.zeros(2, dtype=np.float64)
    saturated = 0
    empty = 0
    total_adc = 0.0
    per_event_hits = []
    for chunk in reader.iter_chunks(chunk_size, keys=["interaction"]):
        assert chunk.images is not None
        nz = chunk.images > 0
        hits += nz.sum(axis=(0, 2, 3))
        saturated += int((chunk.images == 255).sum())
        total_adc += float(chunk.images.sum(dtype=np.int64))
        n_hit = nz.sum(axis=(1, 2, 3))
        empty += int((n_hit == 0).sum())
        per_event_hits.append(n_hit)
    n = len(meta)
    nh = np.concatenate(per_event_hits)
    return {
        "files": [str(f.path) for f in reader.files],
        "simulated": [f.simulated for f in reader.files],
        "n_events": n,
        "interaction": _counts({c.value: c.name for c in Interaction}, inter),
        "numu_cc_fraction": float(numu_cc(inter).mean()),
        "flavour": _counts({**{c.value: c.name for c in Flavour}, -1: "EXCLUDED"}, flavour(inter)),
        "mode": _counts({**{c.value: c.name for c in Mode}, -1: "NONE"}, mode(inter)),
        "nuenergy_gev": _energy(meta["nuenergy"].to_numpy(np.float64)),
        "lepenergy_gev": _energy(meta["lepenergy"].to_numpy(np.float64)),
        "occupancy": {
            "mean_hit_pixels_per_event": [float(h / n) for h in hits],
            "hit_pixels_per_event_quantiles": {f"q{int(p * 100):02d}": float(v)
                                               for p, v in zip(_QUANTILES, np.quantile(nh, _QUANTILES), strict=True)},
            "saturated_pixel_fraction": float(saturated / max(hits.sum(), 1)),
            "empty_events": empty,
            "mean_adc_sum": total_adc / n,
        },
    }


def format_summary(s: dict[str, Any]) -> str:
    """Render :func:`summarise` output as aligned text."""
    lines = [f"files: {len(s['files'])} ({sum(s['simulated'])} simulated)", f"events: {s['n_events']}"]
    lines.append(f"numu CC fraction: {s['numu_cc_fraction']:.4f}")
    for key in ("interaction", "flavour", "mode"):
        lines.append(f"{key}:")
        for name, k in sorted(s[key].items(), key=lambda kv: -kv[1]):
            lines.append(f"  {name:<16} {k:>9}  {100 * k / s['n_events']:6.2f} %")
    for key in ("nuenergy_gev", "lepenergy_gev"):
        e = s[key]
        lines.append(
            f"{key}: min {e['min']:.3g}  q05 {e['q05']:.3g}  median {e['q50']:.3g}  q95 {e['q95']:.3g}  max "
            f"{e['max']:.3g}  mean {e['mean']:.3g}"
        )
    occ = s["occupancy"]
    mx, my = occ["mean_hit_pixels_per_event"]
    lines.append(f"hit pixels per event: X-Z {mx:.1f}, Y-Z {my:.1f}; median total "
                 f"{occ['hit_pixels_per_event_quantiles']['q50']:.0f}")
    lines.append(f"saturated pixels: {100 * occ['saturated_pixel_fraction']:.2f} % of hits; empty events: "
                 f"{occ['empty_events']}")
    return "\n".join(lines)
