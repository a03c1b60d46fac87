"""``npion``: the number of charged pions leaving the nucleus (0, 1, 2, >=3; simulated files only)."""

from __future__ import annotations

from nucvn.tasks.base import CountTask
from nucvn.tasks.registry import register_task

__all__ = ["NPionTask"]


@register_task("npion")
class NPionTask(CountTask):
    """Count of final-state charged pions (``neutrino/npion``), capped to ">=3"; defined for neutrino interactions."""

    columns = ("npion", "interaction")
    count_column = "npion"
    definition = ("npion = final-state charged pions leaving the nucleus, classes 0, 1, 2, >=3 "
                  "(neutrino/npion, simulated)")
