"""The pixel-map window (docs/simulation.md): which detector planes and cells an event's image shows.

Each view is 100 rows × 80 cells. The window starts one plane before the first hit plane,
rounded down to an X-measuring (even) plane so that with the default plane stride 2 row ``k`` of
view ``v`` is detector plane ``firstplane + 2k + v`` (100 planes of each view, ≈ 13.3 m). With
stride 1 row ``k`` of both views is plane ``firstplane + k`` and each view fills only the rows of
its own planes (6.7 m). Across, each view is centred on the energy-weighted mean hit cell of that
view inside the plane range: ``firstcellx``/``firstcelly`` is that mean rounded, minus 40.
Deposits outside the window are lost, as in the real maps.
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

import nucvn.sim.kernel_cache  # noqa: F401  (sets numba's cache directory before any kernel is defined)
from nucvn.core.events import N_CELLS, N_PLANES
from nucvn.sim.detector_params import K

__all__ = ["choose_window", "pixel_of", "fill_window"]


@numba.njit(cache=True)
def choose_window(
    buf_i: npt.NDArray[np.int32], buf_f: npt.NDArray[np.float64], n: int, P: npt.NDArray[np.float64],
    vtx_plane: int, vtx_cell_x: int, vtx_cell_y: int,
) -> tuple[int, int, int]:
    """(firstplane, firstcellx, firstcelly) for the ``n`` deposits in the buffer; an event without
    hits gets a window at its vertex."""
    stride = int(P[K.PLANE_STRIDE])
    hmin = P[K.HIT_CELL_MIN_MEV]
    first = 1 << 30
    for i in range(n):
        if buf_f[i, 0] >= hmin and buf_i[i, 0] < first:
            first = buf_i[i, 0]
    if first == 1 << 30:
        first = max(vtx_plane, 0)
    fp = first - 1
    if fp % 2 != 0:
        fp -= 1
    fp = max(fp, 0)
    span = N_PLANES * stride
    sw = np.zeros(2)
    swc = np.zeros(2)
    for i in range(n):
        pl = buf_i[i, 0]
        e = buf_f[i, 0]
        if e >= hmin and fp <= pl < fp + span:
            v = pl % 2
            sw[v] += e
            swc[v] += e * buf_i[i, 1]
    half = N_CELLS // 2
    cx = int(np.floor(swc[0] / sw[0] + 0.5)) - half if sw[0] > 0 else vtx_cell_x - half
    cy = int(np.floor(swc[1] / sw[1] + 0.5)) - half if sw[1] > 0 else vtx_cell_y - half
    return fp, cx, cy


@numba.njit(cache=True)
def pixel_of(plane: int, cell: int, fp: int, cx: int, cy: int, stride: int) -> tuple[int, int, int]:
    """(view, row, column) of a detector cell in the window, or (-1, -1, -1) outside it."""
    rel = plane - fp
    if rel < 0:
        return -1, -1, -1
    v = plane % 2
    row = rel // 2 if stride == 2 else rel
    if row >= N_PLANES:
        return -1, -1, -1
    col = cell - (cx if v == 0 else cy)
    if col < 0 or col >= N_CELLS:
        return -1, -1, -1
    return v, row, col


@numba.njit(cache=True)
def fill_window(
    buf_i: npt.NDArray[np.int32], buf_f: npt.NDArray[np.float64], n: int, P: npt.NDArray[np.float64],
    fp: int, cx: int, cy: int, pe_img: npt.NDArray[np.float64],
    prong_evis: npt.NDArray[np.float64], prong_cells: npt.NDArray[np.int64],
) -> None:
    """Add each deposit's mean PE to ``pe_img`` (2, 100, 80); accumulate each prong's visible
    energy (whole detector) and count its distinct hit cells inside the window."""
    stride = int(P[K.PLANE_STRIDE])
    hmin = P[K.HIT_CELL_MIN_MEV]
    keys = np.empty(n, dtype=np.int64)
    nk = 0
    npix = 2 * N_PLANES * N_CELLS
    for i in range(n):
        prong = buf_i[i, 2]
        prong_evis[prong] += buf_f[i, 0]
        v, row, col = pixel_of(buf_i[i, 0], buf_i[i, 1], fp, cx, cy, stride)
        if v < 0:
            continue
        pe_img[v, row, col] += buf_f[i, 1]
        if buf_f[i, 0] >= hmin:
            keys[nk] = prong * npix + (v * N_PLANES + row) * N_CELLS + col
            nk += 1
    if nk == 0:
        return
    uniq = np.unique(keys[:nk])
    for k in uniq:
        prong_cells[k // npix] += 1
