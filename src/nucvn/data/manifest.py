"""The fetch stage's bookkeeping: ``MANIFEST.json``, file selections, tidying ``data/raw``, and
:func:`raw_inputs`, the one way the preprocess stage gets its input files.

``MANIFEST.json`` is written last, only after a fetch succeeded, so it always describes a complete
data set: source, parameters and per file name, size, sha256 and number of events (``url``: also
the URL, the final URL after redirects, the server's ETag/Last-Modified and the UTC time of the
download; ``dir``: also the absolute ``path`` and ``mtime_ns`` of the file read in place).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import sys
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nucvn.core.atomic import write_json
from nucvn.core.errors import NucvnError

__all__ = [
    "DEFAULT_BASE", "MANIFEST", "INCOMING", "EVENT_GLOB", "sha256_file", "parse_files", "read_manifest",
    "write_manifest",
    "now", "matches", "tidy", "compact_names", "group_failures", "raw_inputs", "warn",
]

DEFAULT_BASE = "http://www.hep.ucl.ac.uk/undergrad/0056/other/projects/nova/"
"""Where the 200 real UCL/NOvA files live (``fetch.url.base``)."""
MANIFEST = "MANIFEST.json"
INCOMING = ".incoming"
"""Staging folder of an unfinished download (verified files and their progress manifest)."""
EVENT_GLOB = "neutrino*.h5"
_PART = re.compile(r"^\.(neutrino.*\.h5)\.part$")
_NUMBERED = re.compile(r"^neutrino(\d+)\.h5$")
_MANY = 5


def sha256_file(path: str | os.PathLike[str], block: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in blocks (constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(block):
            h.update(data)
    return h.hexdigest()


def parse_files(files: Sequence[int] | str | int, *, key: str = "fetch.url.files") -> list[int]:
    """File numbers from a list (``[1, 5]``), one number, or a range string (``"1-200"``,
    ``"1-3,7"``); sorted, duplicates removed. ``key`` names the parameter in error messages."""
    if isinstance(files, int):
        files = [files]
    out: set[int] = set()
    if isinstance(files, str):
        for part in filter(None, (p.strip() for p in files.split(","))):
            m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
            if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
                raise NucvnError(f"{key}: cannot read {part!r}; use a list of numbers or a range like '1-200'")
            out.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    else:
        out.update(int(f) for f in files)
    if not out or min(out) < 1:
        raise NucvnError(f"{key}: need file numbers >= 1, got {files!r}")
    return sorted(out)


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest in ``out_dir``, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads((Path(out_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(out_dir: str | os.PathLike[str], manifest: Mapping[str, Any]) -> Path:
    """Write ``MANIFEST.json`` atomically (temporary name, then rename)."""
    return write_json(manifest, Path(out_dir) / MANIFEST)


def now() -> str:
    """The current UTC time, ISO 8601 to the second (download times in the manifest)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def matches(path: Path, entry: Mapping[str, Any]) -> bool:
    """True if ``path`` is a file with the size and sha256 that ``entry`` records."""
    try:
        if path.stat().st_size != entry.get("size"):
            return False
    except OSError:
        return False
    return sha256_file(path) == entry.get("sha256")


def _number(name: str) -> int | None:
    m = _NUMBERED.match(name)
    return int(m.group(1)) if m else None


def compact_names(names: Collection[str]) -> str:
    """File names for a one-line message: runs of consecutive ``neutrinoN.h5`` as
    ``neutrino1.h5 … neutrino50.h5``, the rest listed."""
    numbered = sorted(n for n in (_number(x) for x in names) if n is not None)
    others = sorted(x for x in names if _number(x) is None)
    parts: list[str] = []
    i = 0
    while i < len(numbered):
        j = i
        while j + 1 < len(numbered) and numbered[j + 1] == numbered[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"neutrino{numbered[i]}.h5 … neutrino{numbered[j]}.h5")
        else:
            parts.extend(f"neutrino{k}.h5" for k in numbered[i : j + 1])
        i = j + 1
    return ", ".join(parts + others)


def group_failures(errors: Mapping[str, str]) -> str:
    """``"files: reason; other files: other reason"``, one group per distinct reason (first seen
    first), so 200 files that failed alike give one short line, not the same reason 200 times."""
    groups: dict[str, list[str]] = {}
    for name, reason in errors.items():
        groups.setdefault(reason, []).append(name)
    return "; ".join(f"{compact_names(names)}: {reason}" for reason, names in groups.items())


def _say_removed(out_dir: Path, removed: list[str]) -> None:
    if len(removed) > _MANY:
        print(f"fetch: removed {len(removed)} files not in {MANIFEST} from {out_dir}: {compact_names(removed)}")
    else:
        for name in removed:
            print(f"fetch: removed {out_dir / name} (not in {MANIFEST})")


def tidy(out_dir: Path, keep: Collection[str], *, own: Collection[str] = ()) -> list[str]:
    """Make ``out_dir`` hold only the data set: remove ``neutrino*.h5`` files not in ``keep``,
    every partial download (``.neutrino*.h5.part``) and a stale staging folder, printing what
    went; report, without deleting, any other file that is not ours. Returns the removed names.

    Call it only when the new data set is in place (``keep`` = its file names): a stray event
    file in the stage's output would otherwise sit there unnoticed. ``own`` names entries the
    caller still uses (a staging folder it removes itself).
    """
    removed: list[str] = []
    for p in sorted(out_dir.iterdir()):
        name = p.name
        if name in keep or name == MANIFEST or name in own:
            continue
        if p.is_dir() and not p.is_symlink():
            if name == INCOMING:
                shutil.rmtree(p)
                removed.append(name)
            else:
                print(f"fetch: note: {p} is not part of the data set; left in place")
        elif fnmatch.fnmatchcase(name, EVENT_GLOB) or _PART.match(name):
            p.unlink()
            removed.append(name)
        elif not (name.startswith(f".{Path(MANIFEST).stem}.tmp-")):
            print(f"fetch: note: {p} is not part of the data set; left in place")
    if removed:
        _say_removed(out_dir, removed)
    return removed


def raw_inputs(raw_dir: str | os.PathLike[str]) -> list[Path]:
    """The event files of the fetched data set, in manifest order, for the preprocess stage.

    Refuses with :class:`NucvnError` if ``MANIFEST.json`` is missing or incomplete, if a listed
    file is missing or its size differs from the manifest, or (files read in place, ``dir``
    source) if its mtime changed and its sha256 no longer matches: preprocess must never read
    a data set other than the one the fetch stage verified.
    """
    raw = Path(raw_dir)
    where = raw / MANIFEST
    manifest = read_manifest(raw)
    files = manifest.get("files") if manifest else None
    if manifest is None or not manifest.get("complete") or not isinstance(files, list) or not files:
        raise NucvnError(f"{where}: missing or incomplete; run `dvc repro fetch` first")
    again = "rerun `dvc repro -f fetch`"
    out: list[Path] = []
    for entry in files:
        path = Path(entry["path"]) if entry.get("path") else raw / entry["name"]
        try:
            st = path.stat()
        except OSError:
            raise NucvnError(f"{path}: listed in {where} but missing; {again}") from None
        if st.st_size != entry.get("size"):
            raise NucvnError(f"{path}: changed since fetch (size {st.st_size} bytes, {where} says "
                             f"{entry.get('size')}); {again}")
        if "mtime_ns" in entry and st.st_mtime_ns != entry["mtime_ns"] and sha256_file(path) != entry.get("sha256"):
            raise NucvnError(f"{path}: changed since fetch (sha256 differs from {where}); {again}")
        out.append(path)
    return out


def warn(message: str) -> None:
    """Print one warning line on stderr (the stage goes on)."""
    print(f"fetch: warning: {message}", file=sys.stderr)
