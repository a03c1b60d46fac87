"""What every stage script shares: reading its typed params and turning user errors into one line.

A stage reads its section of ``params.yaml`` (and, for ``evaluate``, ``bins.yaml``) into its typed
definition with :func:`read_params` before it touches any data, so a wrong key or type stops it
with one line that names the file and the key. :func:`run_stage` runs the stage's ``main`` and
prints a user error (:class:`NucvnError`), a full disk or an interruption as one line with exit
status 2 (130 for Ctrl-C); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import yaml

from nucvn.core.errors import NucvnError
from nucvn.core.params import parse_params

__all__ = ["read_yaml", "read_params", "run_stage"]

T = TypeVar("T")


def read_yaml(path: Path) -> Mapping[str, Any]:
    """The mapping in a YAML file; a missing or unreadable file is a :class:`NucvnError` naming it."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise NucvnError(f"{path}: cannot read it ({exc.strerror}); run the stage from the project root") from exc
    except yaml.YAMLError as exc:
        raise NucvnError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); fix the file") from exc
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise NucvnError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def read_params(cls: type[T], section: str, path: Path = Path("params.yaml")) -> T:
    """Section ``section`` of the params file ``path``, checked against dataclass ``cls``."""
    try:
        return parse_params(cls, read_yaml(path).get(section), section)
    except NucvnError as exc:
        raise NucvnError(f"{path}: {exc}") from exc


def run_stage(name: str, main: Callable[[list[str]], int]) -> NoReturn:
    """Run ``main(argv)`` and exit with its status; user errors become one line on stderr."""
    try:
        code = main(sys.argv[1:])
    except NucvnError as exc:
        print(f"stage {name}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = exc.filename or "an output file"
        print(f"stage {name}: error: {where}: no space left on device; free space and rerun", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"stage {name}: interrupted; rerun it to continue", file=sys.stderr)
        sys.exit(130)
    sys.exit(code)
