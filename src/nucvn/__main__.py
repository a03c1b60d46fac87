"""``python -m nucvn``."""

from __future__ import annotations

import sys

from nucvn.cli import main

sys.exit(main())
