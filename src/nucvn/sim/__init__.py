"""Fast simulation of NOvA-like neutrino events (docs/simulation.md)."""

from __future__ import annotations
