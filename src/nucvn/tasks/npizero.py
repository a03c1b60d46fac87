"""``npizero``: the number of neutral pions leaving the nucleus (0, 1, 2, >=3; simulated files only)."""

from __future__ import annotations

from nucvn.tasks.base import CountTask
from nucvn.tasks.registry import register_task

__all__ = ["NPizeroTask"]


@register_task("npizero")
class NPizeroTask(CountTask):
    """Count of final-state neutral pions (``neutrino/npizero``), capped to ">=3"; defined for neutrino interactions."""

    columns = ("npizero", "interaction")
    count_column = "npizero"
    definition = ("npizero = final-state neutral pions leaving the nucleus, classes 0, 1, 2, >=3 "
                  "(neutrino/npizero, simulated)")
