"""Detector geometry of the fast simulation (docs/simulation.md, NOvA far-detector-like).

Coordinates are in cm: x across (horizontal), y up, z along the beam. The active volume is a box
``|x|, |y| <= HALF_WIDTH`` and ``0 <= z <= LENGTH``. Planes are ``PLANE_PITCH`` apart along z and
alternate between measuring x (even planes, view 0 "X-Z") and y (odd planes, view 1 "Y-Z"); each
plane holds ``N_CELLS_DET`` cells of ``CELL_PITCH`` across.
"""

from __future__ import annotations

__all__ = [
    "HALF_WIDTH",
    "LENGTH",
    "CELL_PITCH",
    "PLANE_PITCH",
    "N_CELLS_DET",
    "N_PLANES_DET",
    "CELL_LENGTH",
]

HALF_WIDTH: float = 780.0
"""Half of the 15.6 m transverse size (cm)."""
LENGTH: float = 6000.0
"""Length along the beam (cm)."""
CELL_PITCH: float = 3.97
"""Cell width across the plane (cm)."""
PLANE_PITCH: float = 6.664
"""Distance between consecutive planes (cm)."""
N_CELLS_DET: int = round(2 * HALF_WIDTH / CELL_PITCH)
"""Cells per plane (393)."""
N_PLANES_DET: int = int(LENGTH // PLANE_PITCH)
"""Planes in the detector (900), alternating X- and Y-measuring."""
CELL_LENGTH: float = 2 * HALF_WIDTH
"""Length of one cell along its fibre (cm), used for light attenuation."""
