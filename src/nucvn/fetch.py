"""Obtain the raw event files: download them (resume, retries, checksums) or simulate them.

Both sources fill one directory with ``neutrinoN.h5`` files and ``MANIFEST.json`` (source,
parameters, and per file: name, size, sha256, number of events; for downloads also the URL and the
UTC time of the download). The directory is owned by the fetch stage: after a successful call it
holds exactly the planned files, and a later call with the same plan reuses every file whose size
and sha256 match the manifest instead of downloading or simulating it again.

Downloads use the standard library (:mod:`urllib`) with several files at a time (threads). A
partial file is kept as ``.neutrinoN.h5.part`` and resumed with an HTTP ``Range`` request after a
cut connection; transient failures are retried with exponential backoff (``backoff * 2**k``
seconds). A file is renamed to its final name only after :func:`nucvn.h5io.inspect_file`
validates it, so nothing broken ever sits under a final name. A 404 is not retried.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tqdm import tqdm

from nucvn.atomic import write_json
from nucvn.errors import NucvnError
from nucvn.h5io import inspect_file

__all__ = ["DEFAULT_BASE", "MANIFEST", "sha256_file", "parse_files", "read_manifest", "write_manifest", "fetch_url", "fetch_sim"]

DEFAULT_BASE = "http://www.hep.ucl.ac.uk/undergrad/0056/other/projects/nova/"
MANIFEST = "MANIFEST.json"
_NAME = re.compile(r"^neutrino\d+\.h5$")
_BLOCK = 1 << 20


def sha256_file(path: str | os.PathLike[str], block: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in blocks (constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while data := f.read(block):
            h.update(data)
    return h.hexdigest()


def parse_files(files: Sequence[int] | str | int) -> list[int]:
    """File numbers from a list (``[1, 5]``), one number, or a range string (``"1-200"``,
    ``"1-3,7"``); sorted, duplicates removed."""
    if isinstance(files, int):
        files = [files]
    out: set[int] = set()
    if isinstance(files, str):
        for part in filter(None, (p.strip() for p in files.split(","))):
            m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", part)
            if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
                raise NucvnError(f"fetch.url.files: cannot read {part!r}; use a list of numbers or a range like '1-200'")
            out.update(range(int(m.group(1)), int(m.group(2) or m.group(1)) + 1))
    else:
        out.update(int(f) for f in files)
    if not out or min(out) < 1:
        raise NucvnError(f"fetch.url.files: need file numbers >= 1, got {files!r}")
    return sorted(out)


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    """The manifest in ``out_dir``, or None if there is none (or it is unreadable)."""
    try:
        return json.loads((Path(out_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def write_manifest(out_dir: Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``MANIFEST.json`` atomically (temporary name, then rename)."""
    return write_json(manifest, Path(out_dir) / MANIFEST)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _still_valid(out_dir: Path, entry: Mapping[str, Any]) -> bool:
    path = out_dir / entry["name"]
    return path.is_file() and path.stat().st_size == entry.get("size") and sha256_file(path) == entry.get("sha256")


def _prune(out_dir: Path, keep: set[str]) -> None:
    """Remove event files and partial downloads that are not part of the current plan."""
    for p in out_dir.iterdir():
        stem = p.name[1:-5] if p.name.startswith(".") and p.name.endswith(".part") else p.name
        if _NAME.match(stem) and stem not in keep:
            p.unlink()


class _Transient(Exception):
    """A failure worth retrying (cut connection, timeout, server error)."""


def _download_once(url: str, part: Path, timeout: float, bar: tqdm) -> None:
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and have:  # nothing left to send: the part is complete (or garbage)
            return
        if exc.code in (408, 429) or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from exc
        raise NucvnError(f"HTTP {exc.code} {exc.reason} at {url}; check fetch.url.base and fetch.url.files") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _Transient(f"cannot connect ({exc})") from exc
    with resp:
        if resp.status == 206:
            m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                part.unlink()  # start this file again from zero
                raise _Transient(f"server answered the range request from the wrong offset ({resp.headers.get('Content-Range')})")
            mode = "ab"
        else:
            have, mode = 0, "wb"
        expected = resp.headers.get("Content-Length")
        got = 0
        with open(part, mode) as f:
            try:
                while data := resp.read(_BLOCK):
                    f.write(data)
                    got += len(data)
                    bar.update(len(data))
            except (OSError, http.client.HTTPException) as exc:
                raise _Transient(f"connection lost after {have + got} bytes ({exc})") from exc
        if expected is not None and got < int(expected):
            raise _Transient(f"connection lost after {have + got} of {have + int(expected)} bytes")


def _fetch_one(url: str, out_dir: Path, name: str, *, retries: int, backoff: float, timeout: float, bar: tqdm) -> dict[str, Any]:
    part, final = out_dir / f".{name}.part", out_dir / name
    reason, attempts = "", 0
    for attempt in range(retries + 1):
        attempts = attempt + 1
        if attempt:
            time.sleep(backoff * 2 ** (attempt - 1))
        try:
            _download_once(url, part, timeout, bar)
        except _Transient as exc:
            reason = str(exc)
            continue
        except NucvnError as exc:
            part.unlink(missing_ok=True)
            raise NucvnError(f"{name}: {exc}") from exc
        try:
            info = inspect_file(part)
        except NucvnError as exc:  # corrupt or truncated: start this file again from zero
            reason = str(exc).replace(str(part), name)
            part.unlink(missing_ok=True)
            continue
        entry = {"name": name, "url": url, "size": part.stat().st_size, "sha256": sha256_file(part),
                 "n_events": info.n_events, "time": _now(), "attempts": attempts}
        os.replace(part, final)
        return entry
    part.unlink(missing_ok=True)
    raise NucvnError(f"{name}: still broken after {attempts} attempts from {url}: {reason}; check the server or retry later")


def fetch_url(
    base: str,
    files: Sequence[int] | str,
    out_dir: Path,
    *,
    parallel: int = 4,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60,
    progress: bool = True,
) -> dict[str, Any]:
    """Download ``base + "neutrino{i}.h5"`` for each file number into ``out_dir``; return the manifest.

    Files already verified by the previous manifest (same URL, size and sha256) are not
    downloaded again. On failure, the manifest lists the files that did verify (``complete:
    false``), so a rerun resumes, and :class:`NucvnError` names every file that failed and why.
    """
    if parallel < 1 or retries < 0 or backoff < 0 or timeout <= 0:
        raise NucvnError(f"fetch.url: need parallel >= 1, retries >= 0, backoff >= 0, timeout > 0 "
                         f"(got {parallel}, {retries}, {backoff}, {timeout})")
    numbers = parse_files(files)
    base = base if base.endswith("/") else base + "/"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = {f"neutrino{i}.h5": base + f"neutrino{i}.h5" for i in numbers}
    _prune(out_dir, set(plan))
    old = read_manifest(out_dir) or {}
    previous = {e["name"]: e for e in old.get("files", [])} if old.get("source") == "url" else {}
    done: dict[str, dict[str, Any]] = {}
    for name, url in plan.items():
        e = previous.get(name)
        if e is not None and e.get("url") == url and _still_valid(out_dir, e):
            done[name] = e
        elif (out_dir / name).exists():
            (out_dir / name).unlink()
    todo = [n for n in plan if n not in done]
    errors: dict[str, str] = {}
    lock = threading.Lock()
    params = {"base": base, "files": numbers, "parallel": parallel, "retries": retries, "backoff": backoff, "timeout": timeout}

    def work(name: str) -> None:
        try:
            entry = _fetch_one(plan[name], out_dir, name, retries=retries, backoff=backoff, timeout=timeout, bar=bar)
        except NucvnError as exc:
            with lock:
                errors[name] = str(exc)
            return
        with lock:
            done[name] = entry

    with tqdm(unit="B", unit_scale=True, desc=f"fetch {len(todo)} files", disable=not progress, dynamic_ncols=True) as bar:
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            list(pool.map(work, todo))
    manifest = {"source": "url", "parameters": params, "complete": not errors,
                "files": [done[n] for n in plan if n in done]}
    write_manifest(out_dir, manifest)
    if errors:
        lines = "; ".join(errors[n] for n in plan if n in errors)
        raise NucvnError(f"fetch: {len(errors)} of {len(plan)} files failed: {lines}")
    return manifest


def fetch_sim(
    out_dir: Path,
    *,
    files: int,
    events: int,
    seed: int,
    workers: int = 1,
    composition: Mapping[str, float] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Simulate ``files`` files of ``events`` events into ``out_dir`` (``nucvn.sim``); return the manifest.

    If the previous manifest records the same parameters and every file still matches its sha256,
    nothing is simulated again. New files are simulated into a temporary directory and moved
    into place only when all are written.
    """
    from nucvn.sim.simulate import simulate_files

    params = {"files": files, "events": events, "seed": seed, "workers": workers,
              "composition": dict(composition) if composition is not None else None}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    old = read_manifest(out_dir) or {}
    if old.get("source") == "sim" and old.get("parameters") == params and old.get("complete") \
            and all(_still_valid(out_dir, e) for e in old["files"]):
        return old
    tmp = out_dir / ".sim.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        paths = simulate_files(tmp, files=files, events=events, seed=seed, workers=workers,
                               composition=composition, first_index=1, progress=progress)
        (out_dir / MANIFEST).unlink(missing_ok=True)
        _prune(out_dir, set())
        entries = []
        for p in sorted(paths, key=lambda q: int(re.sub(r"\D", "", q.name) or 0)):
            info = inspect_file(p)
            entries.append({"name": p.name, "size": p.stat().st_size, "sha256": sha256_file(p),
                            "n_events": info.n_events, "generator": str(info.attrs.get("generator", ""))})
            os.replace(p, out_dir / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    manifest = {"source": "sim", "parameters": params, "complete": True, "files": entries}
    write_manifest(out_dir, manifest)
    return manifest
