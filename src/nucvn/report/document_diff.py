"""The change of every metric against its last committed value, judged against the statistical errors.

What ``dvc metrics diff`` shows, plus the judgement of README's "Reading `dvc metrics diff` against
the errors": each metrics file of the workspace is compared with its version at a git revision
(``HEAD`` by default, read with ``git show REV:path``), number by number (nested keys joined with
dots, as DVC names them: ``numu_cc.preselected.auc``). A number's statistical error comes from its
companions in the same file: ``x_err``, or the half-width ``(x_hi - x_lo) / 2`` of a 68 % interval.
The change is compared with the combined error ``sqrt(err_old² + err_new²)``, which is
conservative for two runs on the same test events (they are correlated, so their difference is
known better) and right for independent samples: a change inside it is no evidence of anything.
The companions themselves (``_err``, ``_lo``, ``_hi``, ``_nsigma``) are not listed as changes.

The revision is read when the report is built: a DVC stage cannot depend on git's HEAD, so the
report compares against whatever HEAD was at that moment (usually the commit the new results will
be committed on top of, i.e. the change this commit brings). No git, no repository, no commit or
no committed version of a file give a sentence, never an error.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DiffRow", "Comparison", "flatten", "error_of", "diff_metrics", "compare_with_git"]

_COMPANIONS = ("_err", "_lo", "_hi", "_nsigma")


@dataclass(frozen=True)
class DiffRow:
    """One number that differs: ``old`` (at the revision) and ``new`` (workspace), None when absent."""

    file: str
    metric: str
    old: float | None
    new: float | None
    sigma: float | None
    """Combined statistical error sqrt(err_old² + err_new²), None when the file gives none."""

    @property
    def change(self) -> float | None:
        return None if self.old is None or self.new is None else self.new - self.old

    @property
    def nsigma(self) -> float | None:
        """|change| / combined error."""
        change = self.change
        if change is None or self.sigma is None or self.sigma <= 0:
            return None
        return abs(change) / self.sigma

    @property
    def inside_error(self) -> bool | None:
        """Whether the change is within the combined statistical error (None: no error to judge by)."""
        n = self.nsigma
        return None if n is None else n <= 1.0


@dataclass
class Comparison:
    """The metrics of the workspace against revision ``revision``."""

    revision: str
    commit: str | None = None
    """``abc1234 (2025-01-31) subject`` of the commit compared against; None if there is none."""
    note: str | None = None
    """One sentence when no comparison could be made at all (no git, no repository, no commit)."""
    rows: list[DiffRow] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    """Per metrics file: what was done with it (compared, or why not)."""
    unchanged: int = 0


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, float | None]:
    """Numeric leaves of nested mappings by dotted key; ``null`` leaves kept as None, text dropped."""
    out: dict[str, float | None] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        elif value is None:
            out[name] = None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def _companion(key: str, flat: Mapping[str, Any]) -> bool:
    return any(key.endswith(s) and key[: -len(s)] in flat for s in _COMPANIONS)


def error_of(flat: Mapping[str, float | None], key: str) -> float | None:
    """The statistical error of ``flat[key]``: ``key_err``, else half of ``key_hi - key_lo``."""
    err = flat.get(f"{key}_err")
    if err is not None and math.isfinite(err):
        return abs(err)
    lo, hi = flat.get(f"{key}_lo"), flat.get(f"{key}_hi")
    if lo is not None and hi is not None and math.isfinite(hi - lo):
        return (hi - lo) / 2
    return None


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def diff_metrics(old: Mapping[str, Any], new: Mapping[str, Any], *, file: str = "") -> tuple[list[DiffRow], int]:
    """Rows for the numbers that differ between two metrics mappings, and how many are unchanged."""
    f_old, f_new = flatten(old), flatten(new)
    rows, unchanged = [], 0
    keys = list(f_new) + [k for k in f_old if k not in f_new]
    for key in keys:
        if _companion(key, f_new if key in f_new else f_old):
            continue
        a, b = f_old.get(key), f_new.get(key)
        if key in f_old and key in f_new and _same(a, b):
            unchanged += 1
            continue
        errs = [e for e in (error_of(f_old, key) if key in f_old else None,
                            error_of(f_new, key) if key in f_new else None) if e is not None]
        sigma = math.sqrt(sum(e * e for e in errs)) if errs else None
        rows.append(DiffRow(file, key, a, b, sigma))
    return rows, unchanged


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60, check=False)


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else "no message"


def compare_with_git(paths: Sequence[Path], *, revision: str = "HEAD",
                     names: Sequence[str] | None = None) -> Comparison:
    """Compare each metrics file in ``paths`` (workspace) with its version at git ``revision``.

    ``names`` are the labels shown for the files (default: their paths relative to the repository).
    """
    result = Comparison(revision=revision)
    if not paths:
        result.note = "No metrics file was given to compare."
        return result
    if shutil.which("git") is None:
        result.note = "No comparison with the last committed metrics: git is not installed."
        return result
    probe = _git(Path(paths[0]).resolve().parent, "rev-parse", "--show-toplevel")
    if probe.returncode != 0:
        result.note = (f"No comparison with the last committed metrics: {Path(paths[0]).parent} is not inside a git "
                       f"repository ({_first_line(probe.stderr)}).")
        return result
    root = Path(probe.stdout.strip())
    log = _git(root, "log", "-1", "--format=%h (%cs) %s", f"{revision}^{{commit}}", "--")
    if log.returncode != 0:
        result.note = (f"No comparison with the last committed metrics: the repository has no commit {revision!r} "
                       f"({_first_line(log.stderr)}).")
        return result
    commit = log.stdout.strip()
    result.commit = commit if len(commit) <= 100 else commit[:99] + "…"
    for i, path in enumerate(paths):
        path = Path(path)
        try:
            rel = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = None
        name = names[i] if names is not None else (rel or str(path))
        if not path.is_file():
            result.files[name] = "not in the workspace"
            continue
        if rel is None:
            result.files[name] = "outside the git repository"
            continue
        shown = _git(root, "show", f"{revision}:{rel}")
        if shown.returncode != 0:
            result.files[name] = f"no committed version at {revision}"
            continue
        try:
            old, new = json.loads(shown.stdout), json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            result.files[name] = f"not comparable: not valid JSON ({exc.__class__.__name__})"
            continue
        if not isinstance(old, Mapping) or not isinstance(new, Mapping):
            result.files[name] = "not comparable: not a JSON object"
            continue
        rows, unchanged = diff_metrics(old, new, file=name)
        result.rows.extend(rows)
        result.unchanged += unchanged
        result.files[name] = f"{len(rows)} changed, {unchanged} unchanged"
    return result
