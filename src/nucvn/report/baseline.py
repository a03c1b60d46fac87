"""The traditional calorimetric energy estimate, the baseline a regression network is compared with.

Calorimetry: the deposited charge grows linearly with the energy deposited, so the neutrino energy
is estimated as ``E = slope * charge + intercept`` with the total pixel charge of the event
(:func:`pixel_charge`) and a calibration fitted by least squares (scikit-learn ``LinearRegression``,
or ``HuberRegressor`` to be robust to the tail of events whose energy escapes undetected, Huber,
Ann. Math. Statist. 35 (1964) 73). ``per_flavour`` fits one calibration per true flavour (a muon
track and an electromagnetic shower deposit different charge per GeV), falling back to the global
calibration for flavours with fewer than ``min_events`` events; knowing the true flavour makes this
an optimistic baseline.

The calibration must be fitted on the training split only (the caller guarantees it) so that the
test split measures it honestly. It is stored as plain JSON numbers (:meth:`CalorimetricEnergy.to_dict`),
never pickled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from sklearn.linear_model import HuberRegressor, LinearRegression

from nucvn.core.errors import NucvnError

__all__ = ["pixel_charge", "Calibration", "CalorimetricEnergy"]

_CHUNK = 4096  # events summed at once (bounded memory for memory-mapped shards)


def pixel_charge(images: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Sum of the pixel values of each event (both views), as float64: the visible charge.

    ``images`` is ``(n, ...)`` (e.g. ``(n, 2, 100, 80)`` uint8, possibly memory-mapped); it is
    summed in chunks so a memory-mapped split is never loaded whole.
    """
    arr = np.asarray(images)
    if arr.ndim < 2:
        raise NucvnError(f"images must have shape (n, views, planes, cells), got {arr.shape}")
    out = np.empty(arr.shape[0], dtype=np.float64)
    for start in range(0, arr.shape[0], _CHUNK):
        chunk = np.asarray(arr[start:start + _CHUNK])
        out[start:start + len(chunk)] = chunk.reshape(len(chunk), -1).sum(axis=1, dtype=np.float64)
    return out


@dataclass(frozen=True)
class Calibration:
    """``energy = slope * charge + intercept``, fitted on ``n`` events."""

    slope: float
    intercept: float
    n: int

    def __call__(self, charge: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return self.slope * charge + self.intercept

    def to_dict(self) -> dict[str, float | int]:
        return {"slope": self.slope, "intercept": self.intercept, "n": self.n}

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Calibration:
        try:
            return cls(slope=float(d["slope"]), intercept=float(d["intercept"]), n=int(d["n"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise NucvnError(f"calorimetric calibration {where}: needs numbers slope, intercept and n ({exc})") from exc


def _fit_line(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], method: Literal["ols", "huber"],
              residual: Literal["relative", "absolute"] = "relative") -> Calibration:
    """Least-squares (or Huber) line; the charge is standardised first so the Huber fit is well
    conditioned, and the coefficients are transformed back."""
    mean = float(x.mean())
    std = float(x.std())
    if std == 0.0:
        return Calibration(slope=0.0, intercept=float(y.mean()), n=int(x.size))
    z = ((x - mean) / std).reshape(-1, 1)
    model = LinearRegression() if method == "ols" else HuberRegressor(alpha=0.0, max_iter=1000)
    model.fit(z, y, sample_weight=1.0 / np.maximum(y, 1e-6) ** 2 if residual == "relative" else None)
    slope = float(model.coef_[0]) / std
    return Calibration(slope=slope, intercept=float(model.intercept_) - slope * mean, n=int(x.size))


def _keys(flavour: npt.ArrayLike, n: int) -> npt.NDArray[np.str_]:
    f = np.asarray(flavour).reshape(-1)
    if f.shape[0] != n:
        raise NucvnError(f"got {f.shape[0]} flavours for {n} events; they must match one to one")
    return f.astype(str)


@dataclass
class CalorimetricEnergy:
    """Linear calorimetric energy estimate, global (``linear``) or per true flavour (``per_flavour``).

    ``fit(charge, true_energy, flavour)`` then ``predict(charge, flavour)``; flavours are any labels
    (codes or names, compared as text). Flavours not seen in the fit, or seen with fewer than
    ``min_events`` events, use the global calibration. ``residual: relative`` (default) minimises
    the squared *relative* error (least squares weighted by 1/E²): the figure of merit is a
    relative resolution, and an unweighted fit over a 0.5-80 GeV spectrum is pulled by the few
    high-energy events and overestimates every low-energy one (measured on the default data: +99 %
    bias at 1-1.5 GeV unweighted). The CNN's energy loss is on log E, also a relative error.
    """

    mode: Literal["linear", "per_flavour"] = "per_flavour"
    method: Literal["ols", "huber"] = "ols"
    min_events: int = 50
    residual: Literal["relative", "absolute"] = "relative"
    global_: Calibration | None = None
    per_flavour: dict[str, Calibration] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.mode not in ("linear", "per_flavour"):
            raise NucvnError(f"calorimetric mode must be 'linear' or 'per_flavour', got {self.mode!r}")
        if self.method not in ("ols", "huber"):
            raise NucvnError(f"calorimetric fit method must be 'ols' or 'huber', got {self.method!r}")
        if self.min_events < 2:
            raise NucvnError(f"calorimetric min_events must be >= 2, got {self.min_events}")

    def _inputs(
        self, charge: npt.ArrayLike, flavour: npt.ArrayLike | None
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.str_] | None]:
        q = np.asarray(charge, dtype=np.float64).reshape(-1)
        if not np.all(np.isfinite(q)):
            raise NucvnError("pixel charge contains NaN or inf")
        if self.mode == "per_flavour":
            if flavour is None:
                raise NucvnError("calorimetric mode 'per_flavour' needs the flavour of every event")
            return q, _keys(flavour, q.size)
        return q, None

    def fit(self, charge: npt.ArrayLike, true_energy: npt.ArrayLike,
            flavour: npt.ArrayLike | None = None) -> CalorimetricEnergy:
        """Fit ``true_energy`` against ``charge`` (training split only); returns ``self``."""
        q, keys = self._inputs(charge, flavour)
        e = np.asarray(true_energy, dtype=np.float64).reshape(-1)
        if e.shape != q.shape:
            raise NucvnError(f"got {e.size} true energies for {q.size} charges; they must match one to one")
        if not np.all(np.isfinite(e)):
            raise NucvnError("true energies contain NaN or inf")
        if q.size < 2:
            raise NucvnError(f"the calorimetric fit needs at least 2 events, got {q.size}")
        self.global_ = _fit_line(q, e, self.method, self.residual)
        self.per_flavour = {}
        if keys is not None:
            for key in sorted(set(keys.tolist())):
                sel = keys == key
                if int(sel.sum()) >= self.min_events:
                    self.per_flavour[key] = _fit_line(q[sel], e[sel], self.method, self.residual)
        return self

    def predict(self, charge: npt.ArrayLike, flavour: npt.ArrayLike | None = None) -> npt.NDArray[np.float64]:
        """Estimated energy of each event (GeV if fitted on GeV)."""
        if self.global_ is None:
            raise NucvnError("the calorimetric estimate is not fitted; call fit() or load it with from_dict()")
        q, keys = self._inputs(charge, flavour)
        out = self.global_(q)
        if keys is not None:
            for key, cal in self.per_flavour.items():
                sel = keys == key
                out[sel] = cal(q[sel])
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON numbers and names, read back by :meth:`from_dict`."""
        if self.global_ is None:
            raise NucvnError("the calorimetric estimate is not fitted; nothing to save")
        return {"mode": self.mode, "method": self.method, "min_events": self.min_events, "residual": self.residual,
                "global": self.global_.to_dict(),
                "per_flavour": {k: c.to_dict() for k, c in self.per_flavour.items()}}

    @classmethod
    def from_dict(cls, d: Any) -> CalorimetricEnergy:
        """Inverse of :meth:`to_dict`; a malformed dict raises :class:`NucvnError` naming the key."""
        if not isinstance(d, dict) or "global" not in d:
            raise NucvnError("calorimetric calibration: expected a dict with "
                             "'mode', 'method', 'min_events', 'global', 'per_flavour'")
        flav = d.get("per_flavour", {})
        if not isinstance(flav, dict):
            raise NucvnError("calorimetric calibration: 'per_flavour' must map flavour names to calibrations")
        return cls(mode=d.get("mode", "per_flavour"), method=d.get("method", "ols"),
                   min_events=int(d.get("min_events", 50)),
                   residual=d.get("residual", "relative"),
                   global_=Calibration.from_dict(d["global"], "'global'"),
                   per_flavour={str(k): Calibration.from_dict(v, f"per_flavour[{k!r}]") for k, v in flav.items()})
