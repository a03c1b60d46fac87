"""The dir source: event files a physicist already holds, used in place (never copied).

:func:`fetch_dir` deep-validates each selected ``neutrinoN.h5`` of a directory and writes a
``MANIFEST.json`` that records each file's absolute path, size, sha256, mtime and number of
events. A rerun hashes and validates again only the files whose size or mtime changed, so a
200-file directory on a shared disk costs a ``stat`` per file. Since the files stay outside the
stage's output, :func:`nucvn.data.manifest.raw_inputs` checks them again when preprocess reads them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from nucvn.core.errors import NucvnError
from nucvn.core.progress import progress_bar
from nucvn.data.h5io import inspect_file_deep
from nucvn.data.manifest import MANIFEST, compact_names, parse_files, read_manifest, sha256_file, tidy, write_manifest

__all__ = ["fetch_dir"]

_NUMBERED = re.compile(r"^neutrino(\d+)\.h5$")


def _select(src: Path, files: Sequence[int] | str | int | None) -> tuple[list[str], list[int] | Literal["all"]]:
    """The selected file names in ``src`` and the selection as recorded in the manifest."""
    if files is None or (isinstance(files, str) and files.strip().lower() == "all"):
        numbers = sorted(int(m.group(1)) for p in src.iterdir() if (m := _NUMBERED.match(p.name)) and p.is_file())
        if not numbers:
            raise NucvnError(f"fetch.dir.path: no neutrinoN.h5 files in {src}; point it at the folder that holds them")
        return [f"neutrino{i}.h5" for i in numbers], "all"
    numbers = parse_files(files, key="fetch.dir.files")
    names = [f"neutrino{i}.h5" for i in numbers]
    missing = [n for n in names if not (src / n).is_file()]
    if missing:
        raise NucvnError(f"fetch.dir.files: {len(missing)} of {len(names)} selected files are not in {src} "
                         f"({compact_names(missing)}); check fetch.dir.path and fetch.dir.files")
    return names, numbers


def fetch_dir(
    path: str | os.PathLike[str],
    files: Sequence[int] | str | int | None,
    out_dir: Path,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """List ``neutrinoN.h5`` files of directory ``path`` in ``out_dir/MANIFEST.json``; return the manifest.

    ``files`` selects like ``fetch.url.files`` (a range string such as ``"1-10"``, a number or a
    list), or None/``"all"`` for every ``neutrinoN.h5`` there. Each file is deep-validated
    (every chunk read) and hashed unless the previous manifest recorded it with the same size and
    mtime. Nothing is copied; ``out_dir`` ends up holding only the manifest (stray event files of
    an earlier source are removed). A missing directory or file, or an invalid file, raises
    :class:`NucvnError` naming it and the parameter, and leaves ``out_dir`` untouched.
    """
    src = Path(path).expanduser()
    if not src.is_dir():
        raise NucvnError(f"fetch.dir.path: {src} is not a directory; set it to the folder that holds neutrinoN.h5")
    src = src.resolve()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if src == out_dir.resolve():
        raise NucvnError(f"fetch.dir.path: {src} is the fetch stage's own output folder; point it at where your files "
                         "live")
    names, selection = _select(src, files)
    old = read_manifest(out_dir) or {}
    previous = {e.get("path"): e for e in old.get("files", [])} if old.get("source") == "dir" else {}
    entries: list[dict[str, Any]] = []
    todo = sum(1 for n in names if not _unchanged(previous.get(str(src / n)), src / n))
    with progress_bar(total=todo, unit="file", desc=f"validate {todo} files in {src}",
                      disable=not progress or not todo) as bar:
        for name in names:
            p = src / name
            entry = previous.get(str(p))
            if _unchanged(entry, p):
                entries.append(dict(entry or {}))
                continue
            st = p.stat()  # before reading: a change while we read shows up on the next run
            try:
                info = inspect_file_deep(p)
            except NucvnError as exc:
                raise NucvnError(f"fetch.dir.path: {exc}") from exc
            entries.append({"name": name, "path": str(p), "size": st.st_size, "sha256": sha256_file(p),
                            "mtime_ns": st.st_mtime_ns, "n_events": info.n_events})
            bar.update(1)
    manifest = {"source": "dir", "parameters": {"path": str(src), "files": selection}, "complete": True,
                "files": entries}
    if old.get("source") != "dir":
        (out_dir / MANIFEST).unlink(missing_ok=True)
    tidy(out_dir, set())
    write_manifest(out_dir, manifest)
    return manifest


def _unchanged(entry: dict[str, Any] | None, path: Path) -> bool:
    """True if ``entry`` recorded ``path`` with its current size and mtime."""
    if entry is None:
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    return st.st_size == entry.get("size") and st.st_mtime_ns == entry.get("mtime_ns")
