"""nucvn: classify neutrino interactions in NOvA-like detector images."""

from __future__ import annotations

__version__ = "0.1.0"
