"""The url source: download ``neutrinoN.h5`` files, resumably, without ever breaking the data set
already in place.

Downloads are staged: a partial file is ``out_dir/.neutrinoN.h5.part`` (kept across failures
and reruns, resumed with an HTTP ``Range`` request), and a file that passed deep validation
(:func:`nucvn.data.h5io.inspect_file_deep`, every chunk decompressed) moves to ``out_dir/.incoming/``,
recorded in ``.incoming/PROGRESS.json`` so a rerun never downloads it twice. Only when every
planned file is verified are they swapped in: stray files removed, new files moved in,
``MANIFEST.json`` written last. A fetch that fails leaves the previous data set (files and
manifest) exactly as it was.

Files the manifest already verified are re-checked against the server (size, ETag,
Last-Modified recorded at download time) and downloaded again if they changed; an unreachable
server only costs a warning, so the data set stays usable offline.

Retries: transient failures are retried with exponential backoff (``backoff * 2**k`` s). Errors a
retry cannot fix stop early: a 404 stops its file, a host name that does not resolve stops all
files at once, and while the host has never answered, ``retries + 1`` failed connections in
total (over all files) stop all files. Failures are summarised in one line grouped by reason.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nucvn.core.atomic import write_json
from nucvn.core.errors import NucvnError
from nucvn.core.progress import progress_bar
from nucvn.data.fetch_http import Fatal, Remote, Transient, changed_on_server, download_once, probe, validator
from nucvn.data.h5io import inspect_file_deep
from nucvn.data.manifest import (
    DEFAULT_BASE,
    INCOMING,
    MANIFEST,
    compact_names,
    group_failures,
    matches,
    now,
    parse_files,
    read_manifest,
    sha256_file,
    tidy,
    warn,
    write_manifest,
)

__all__ = ["DEFAULT_BASE", "PROGRESS", "fetch_url"]

PROGRESS = "PROGRESS.json"


@dataclass
class _Run:
    """Shared state of one fetch: settings, the host's answer so far, and the stop signal."""

    retries: int
    backoff: float
    timeout: float
    min_rate: float
    window: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    answered: bool = False
    last_answer: float = -1.0
    no_answers: int = 0
    stop_reason: str = ""

    def answer(self) -> None:
        self.answered = True
        self.last_answer = time.monotonic()

    def halt(self, reason: str) -> None:
        with self.lock:
            if not self.stop.is_set():
                self.stop_reason = reason
                self.stop.set()

    def count_no_answer(self, reason: str) -> bool:
        """Count a connection that got no answer; True (and stop everything) once the host,
        never having answered, has failed ``retries + 1`` times over all files."""
        with self.lock:
            if self.answered:
                return False
            self.no_answers += 1
            trip = self.no_answers > self.retries
        if trip:
            self.halt(reason)
        return trip


class _Staging:
    """The ``.incoming`` folder and its progress manifest (verified files, part validators)."""

    def __init__(self, out_dir: Path, base: str) -> None:
        self.dir = out_dir / INCOMING
        self.lock = threading.Lock()
        try:
            state = json.loads((self.dir / PROGRESS).read_text())
        except (OSError, ValueError):
            state = {}
        same = isinstance(state, dict) and state.get("base") == base
        self.base = base
        self.files: dict[str, dict[str, Any]] = dict(state.get("files", {})) if same else {}
        self.parts: dict[str, str] = dict(state.get("parts", {})) if same else {}

    def save(self) -> None:
        with self.lock:
            write_json({"base": self.base, "files": self.files, "parts": self.parts}, self.dir / PROGRESS)

    def start_part(self, name: str, remote: Remote) -> None:
        v = validator(remote)
        with self.lock:
            changed = self.parts.get(name) != v
            if v is None:
                self.parts.pop(name, None)
            else:
                self.parts[name] = v
        if changed:
            self.save()

    def accept(self, name: str, part: Path, entry: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        os.replace(part, self.dir / name)
        with self.lock:
            self.files[name] = entry
            self.parts.pop(name, None)
        self.save()


def _fetch_one(name: str, url: str, out_dir: Path, run: _Run, staging: _Staging, on_bytes: Any) -> dict[str, Any]:
    """Download, deep-validate and stage one file; raises :class:`Fatal` with the reason if it
    cannot (its ``.part`` is kept for the next run unless it proved corrupt)."""
    part = out_dir / f".{name}.part"
    reason, attempts, no_answer, started = "", 0, False, time.monotonic()
    for attempt in range(run.retries + 1):
        if run.stop.is_set() or (attempt and run.stop.wait(run.backoff * 2 ** (attempt - 1))):
            raise Fatal(run.stop_reason)
        attempts = attempt + 1
        try:
            remote = download_once(url, part, timeout=run.timeout, min_rate=run.min_rate, window=run.window,
                                   if_range=staging.parts.get(name), on_answer=run.answer,
                                   on_start=lambda r: staging.start_part(name, r), on_bytes=on_bytes)
        except Transient as exc:
            reason, no_answer = exc.reason, exc.no_answer
            if no_answer and run.count_no_answer(reason):
                break
            continue
        except Fatal as exc:
            if exc.everyone:
                run.halt(exc.reason)
            raise
        except NucvnError as exc:  # a full disk: no other file can succeed either
            run.halt(str(exc))
            raise Fatal(str(exc)) from exc
        try:
            info = inspect_file_deep(part)
        except NucvnError as exc:  # corrupt or truncated: start this file again from zero
            reason = f"invalid after download ({str(exc).replace(str(part), 'file')})"
            part.unlink(missing_ok=True)
            no_answer = False
            continue
        entry = {"name": name, "url": url, "final_url": remote.final_url, "size": part.stat().st_size,
                 "sha256": sha256_file(part), "n_events": info.n_events, "time": now(), "attempts": attempts,
                 "etag": remote.etag, "last_modified": remote.last_modified}
        staging.accept(name, part, entry)
        return entry
    if no_answer and run.last_answer < started:  # the host went silent for a whole retry schedule
        run.halt(f"{reason} (the host stopped answering)")
    raise Fatal(f"{reason} (gave up after {attempts} attempts)" if not run.stop.is_set() else run.stop_reason)


def _reusable(out_dir: Path, plan: dict[str, str], staging: _Staging) -> dict[str, tuple[dict[str, Any], Path]]:
    """Planned files already verified (by the manifest, or staged by an unfinished run) whose
    local copy still has the recorded size and sha256, with where that copy is."""
    old = read_manifest(out_dir) or {}
    previous = {e["name"]: e for e in old.get("files", [])} if old.get("source") == "url" else {}
    found: dict[str, tuple[dict[str, Any], Path]] = {}
    for name, url in plan.items():
        candidates = [(staging.files.get(name), staging.dir / name), (staging.files.get(name), out_dir / name),
                      (previous.get(name), out_dir / name)]
        for entry, where in candidates:
            if entry is not None and entry.get("url") == url and matches(where, entry):
                found[name] = (entry, where)
                break
    return found


def _recheck(done: dict[str, tuple[dict[str, Any], Path]], run: _Run, parallel: int) -> set[str]:
    """Names of verified files that changed on the server since their download. Files the
    server cannot vouch for (unreachable, an error, gone) keep their local copies, with one
    warning line per kind of trouble."""
    changed: set[str] = set()
    gone: list[str] = []
    trouble: list[str] = []
    checked = 0
    lock = threading.Lock()
    stop = threading.Event()

    def check(name: str) -> None:
        nonlocal checked
        if stop.is_set():
            return
        entry = done[name][0]
        try:
            remote = probe(entry["url"], timeout=run.timeout)
        except (Transient, Fatal) as exc:
            if isinstance(exc, Fatal) and exc.status in (404, 410):
                with lock:
                    gone.append(name)
                return
            with lock:
                trouble.append(exc.reason)
            if (isinstance(exc, Fatal) and exc.everyone) or (isinstance(exc, Transient) and exc.no_answer):
                stop.set()  # the host is unusable: do not wait for every file
            return
        run.answer()
        with lock:
            checked += 1
            if changed_on_server(entry, remote):
                changed.add(name)

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(check, list(done)))
    if trouble:
        unchecked = len(done) - checked - len(gone)
        warn(f"cannot re-check {unchecked} of {len(done)} verified files against the server ({trouble[0]}); "
             f"keeping the local copies")
    if gone:
        warn(f"{compact_names(gone)} no longer on the server; keeping the verified local copies")
    if changed:
        print(f"fetch: {compact_names(changed)} changed on the server since the download; downloading again")
    return changed


def _swap(out_dir: Path, plan: dict[str, str], done: dict[str, tuple[dict[str, Any], Path]],
          staging: _Staging, params: dict[str, Any]) -> dict[str, Any]:
    """Put the complete new data set in place: remove the old manifest, move staged files in,
    remove strays, write ``MANIFEST.json`` last, then drop the staging folder."""
    entries = [done[n][0] for n in plan]
    moves = [(where, out_dir / n) for n, (_, where) in done.items() if where != out_dir / n]
    if moves:
        staging.files.update({e["name"]: e for e in entries})  # a crash mid-swap loses nothing
        staging.save()
        (out_dir / MANIFEST).unlink(missing_ok=True)
        for src, dest in moves:
            os.replace(src, dest)
    manifest = {"source": "url", "parameters": params, "complete": True, "files": entries}
    tidy(out_dir, set(plan), own={INCOMING})
    write_manifest(out_dir, manifest)
    shutil.rmtree(staging.dir, ignore_errors=True)
    return manifest


def fetch_url(
    base: str,
    files: Sequence[int] | str | int,
    out_dir: Path,
    *,
    parallel: int = 4,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60,
    min_rate: float = 10_000.0,
    rate_window: float | None = None,
    recheck: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Download ``base + "neutrino{i}.h5"`` for each file number into ``out_dir``; return the manifest.

    ``timeout``: seconds without any data before a connection counts as lost. ``min_rate``:
    bytes/s; a transfer slower than this on average over ``rate_window`` seconds (default:
    ``timeout``) fails and is retried with resume; 0 disables the check. ``recheck``: compare the
    files already verified with the server (HEAD) and download again those that changed.

    Files already verified (same URL, size and sha256) are not downloaded again. On failure
    :class:`NucvnError` names every file that failed, grouped by reason, and ``out_dir`` keeps
    its previous data set; partial and verified downloads are kept, so a rerun resumes.
    """
    if parallel < 1 or retries < 0 or backoff < 0 or timeout <= 0 or min_rate < 0 or (rate_window or 1) <= 0:
        raise NucvnError(f"fetch.url: need parallel >= 1, retries >= 0, backoff >= 0, timeout > 0, min_rate >= 0 "
                         f"(got {parallel}, {retries}, {backoff}, {timeout}, {min_rate})")
    numbers = parse_files(files)
    base = base if base.endswith("/") else base + "/"
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan = {f"neutrino{i}.h5": base + f"neutrino{i}.h5" for i in numbers}
    # What the data set is, not how it was transferred: changing parallel/retries/timeouts must not
    # change the manifest (and so rerun everything after fetch).
    params = {"base": base, "files": numbers}
    run = _Run(retries, backoff, timeout, min_rate, rate_window or timeout)
    staging = _Staging(out_dir, base)
    done = _reusable(out_dir, plan, staging)
    if recheck and done:
        for name in _recheck(done, run, parallel):
            del done[name]
    todo = [n for n in plan if n not in done]
    errors: dict[str, str] = {}
    lock = threading.Lock()
    with progress_bar(unit="B", unit_scale=True, desc=f"fetch {len(todo)} files",
                      disable=not progress or not todo) as bar:

        def on_bytes(n: int) -> None:
            with lock:
                bar.update(n)

        def work(name: str) -> None:
            try:
                entry = _fetch_one(name, plan[name], out_dir, run, staging, on_bytes)
            except Fatal as exc:
                with lock:
                    errors[name] = exc.reason
                return
            with lock:
                done[name] = (entry, staging.dir / name)

        with ThreadPoolExecutor(max_workers=parallel) as pool:
            list(pool.map(work, todo))
    if errors:
        failed = {n: errors[n] for n in plan if n in errors}
        raise NucvnError(f"fetch: {len(failed)} of {len(plan)} files failed: {group_failures(failed)}; "
                         f"the data set in {out_dir} is unchanged and the downloads so far are kept: rerun to resume")
    return _swap(out_dir, plan, done, staging, params)
