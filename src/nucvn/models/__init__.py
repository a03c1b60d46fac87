"""Network architectures, registered by name (:func:`create_model`).

``cvn2v`` (the default) processes each view in its own tower, as NOvA's CVN does; ``seed_notebook``
and ``seed_report`` are faithful ports of the two public studies, kept for side-by-side comparison.
"""

from __future__ import annotations

from nucvn.models import cvn2v, seed_notebook, seed_report  # noqa: F401  (registers the models)
from nucvn.models.inputs import INPUT_LAYOUT, SCALES, Scale, scale_pixels
from nucvn.models.registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model", "INPUT_LAYOUT", "SCALES", "Scale", "scale_pixels"]
