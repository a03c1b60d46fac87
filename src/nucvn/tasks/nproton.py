"""``nproton``: the number of protons leaving the nucleus (0, 1, 2, >=3; simulated files only)."""

from __future__ import annotations

from nucvn.tasks.base import CountTask
from nucvn.tasks.registry import register_task

__all__ = ["NProtonTask"]


@register_task("nproton")
class NProtonTask(CountTask):
    """Count of final-state protons (``neutrino/nproton``), capped to ">=3"; defined for neutrino interactions."""

    columns = ("nproton", "interaction")
    count_column = "nproton"
    definition = "nproton = final-state protons leaving the nucleus, classes 0, 1, 2, >=3 (neutrino/nproton, simulated)"
