"""The curated public API of ``nucvn``: exactly these names, each the real object."""

from __future__ import annotations

import subprocess
import sys

import nucvn
from nucvn.data.h5io import open_events
from nucvn.data.shards import ShardDataset
from nucvn.inference import load_model, predict
from nucvn.models import create_model
from nucvn.tasks import create_tasks


def test_public_api_is_pinned() -> None:
    assert sorted(nucvn.__all__) == sorted(["__version__", "open_events", "ShardDataset", "create_model",
                                            "create_tasks", "load_model", "predict"])
    assert (nucvn.open_events, nucvn.ShardDataset, nucvn.create_model, nucvn.create_tasks, nucvn.load_model,
            nucvn.predict) == (open_events, ShardDataset, create_model, create_tasks, load_model, predict)


def test_import_nucvn_does_not_load_torch() -> None:
    code = "import sys, nucvn; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
