"""The label columns of a chunk of events, as the shards store them and every evaluation reads them.

:func:`label_columns` computes the derived labels (:data:`nucvn.data.shard_format.LABEL_COLUMNS`)
from a file's raw metadata through :mod:`nucvn.core.events` (the one definition of every label);
:func:`labelled_metadata` lays a file chunk's metadata out exactly as a shard split's
``ShardDataset.metadata`` does (raw keys that collide with a label name, e.g. the simulation's
``mode``, renamed ``raw_<key>``; labels; ``file`` and ``index``), so that events read straight from
files (``nucvn evaluate --files``) and events read from shards are evaluated by the same code.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import pandas as pd

from nucvn.core import events as ev
from nucvn.data.shard_format import LABEL_COLUMNS

__all__ = ["label_columns", "labelled_metadata"]


def label_columns(meta: pd.DataFrame | Mapping[str, npt.ArrayLike]) -> dict[str, npt.NDArray[np.generic]]:
    """Every label of :data:`LABEL_COLUMNS` for the events of ``meta`` (raw file keys: at least
    ``interaction``, ``lepenergy``, ``nuenergy``; ``finalstate`` when present, else track and
    shower counts are -1)."""
    inter = np.asarray(meta["interaction"]).reshape(-1)
    fs = np.asarray(meta["finalstate"]).reshape(-1) if "finalstate" in meta else np.full(len(inter), -1)
    lep, nu = np.asarray(meta["lepenergy"]).reshape(-1), np.asarray(meta["nuenergy"]).reshape(-1)
    out = {"numu_cc": ev.numu_cc(inter), "flavour": ev.flavour(inter), "mode": ev.mode(inter),
           "n_tracks": ev.n_tracks(fs), "n_showers": ev.n_showers(fs), "lepton_fraction": ev.lepton_fraction(lep, nu)}
    return {k: np.asarray(v).astype(np.dtype(LABEL_COLUMNS[k])) for k, v in out.items()}


def labelled_metadata(meta: pd.DataFrame, *, file: str, start: int) -> pd.DataFrame:
    """A file chunk's raw metadata (events ``start`` .. of file ``file``) in the shard layout."""
    out = meta.rename(columns={k: f"raw_{k}" for k in meta.columns if k in LABEL_COLUMNS}).reset_index(drop=True)
    for name, values in label_columns(meta).items():
        out[name] = values
    out["file"] = file
    out["index"] = np.arange(start, start + len(meta), dtype=np.int64)
    return out
