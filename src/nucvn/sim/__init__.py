"""Fast simulation of NOvA-like neutrino events (../shared/SIMULATION.md)."""

from __future__ import annotations
