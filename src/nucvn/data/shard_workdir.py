"""The temporary directory that :func:`nucvn.data.shard_build.build_shards` writes into, and its cleanup.

A build writes ``.<out>.tmp-<pid>/`` beside the output directory and renames it onto ``<out>``
only when complete, so an interrupted build never leaves half a shard directory under the name
that later stages trust. This module makes sure an interruption does not leak that copy either:

* an exception (``KeyboardInterrupt``, ``SystemExit`` included) removes it (:func:`work_dir`);
* ``SIGTERM`` becomes ``SystemExit(143)`` for the duration of the build (:func:`sigterm_exits`),
  so a terminated build cleans up like an interrupted one;
* what no handler can clean (``SIGKILL``, a power cut) is removed by the next build
  (:func:`remove_stale`): a directory whose process has ended, or whose pid now belongs to a
  different process (the start time recorded in it does not match), is deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

__all__ = ["work_dir", "publish", "remove_stale", "sigterm_exits", "process_start_time", "OWNER_FILE"]

OWNER_FILE = ".owner.json"
"""Inside a temporary directory: the pid and start time of the process that writes it."""


def process_start_time(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks after boot (Linux ``/proc``), or ``None``
    where it cannot be read (process gone, zombie, no ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running (not zombie) process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    if Path("/proc").is_dir():
        return process_start_time(pid) is not None
    return True


def _is_stale(path: Path, pid: int) -> bool:
    """Whether the directory ``path`` left by ``pid`` has no live owner any more: the process is
    gone, or (its start time recorded) the pid now names another process. Without a record a
    live pid is assumed to own it: a running build's files are never removed."""
    if pid == os.getpid():
        return True
    if not _alive(pid):
        return True
    try:
        owner = json.loads((path / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return False
    started = process_start_time(pid)
    return isinstance(owner, dict) and started is not None and owner.get("start") != started


def remove_stale(out_dir: Path) -> list[Path]:
    """Delete leftovers of earlier builds of ``out_dir`` whose process no longer runs; return them.

    A leftover ``.<out>.old-<pid>`` (the previous output, moved aside just before the new one was
    renamed into place) is renamed back onto ``out_dir`` if that is missing, else deleted.
    """
    pattern = re.compile(rf"\.{re.escape(out_dir.name)}\.(tmp|old)-(\d+)")
    removed: list[Path] = []
    if not out_dir.parent.is_dir():
        return removed
    for path in sorted(out_dir.parent.iterdir()):
        m = pattern.fullmatch(path.name)
        if m is None or not path.is_dir() or not _is_stale(path, int(m.group(2))):
            continue
        if m.group(1) == "old" and not out_dir.exists():
            os.replace(path, out_dir)
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


@contextlib.contextmanager
def work_dir(out_dir: Path) -> Iterator[Path]:
    """A fresh ``.<out>.tmp-<pid>`` directory beside ``out_dir``, recording its owner process;
    removed when the block exits, whatever the reason (a published one is gone already)."""
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        (tmp / OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "start": process_start_time(os.getpid())}))
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(tmp: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the complete directory ``tmp`` (two renames; the old output is
    deleted only once the new one is in place)."""
    (tmp / OWNER_FILE).unlink(missing_ok=True)
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """Within the block, ``SIGTERM`` raises ``SystemExit(143)`` so ``finally`` clauses run.

    Installed only in the main thread (Python delivers signals there) and only over the default
    action; a handler the program set itself, or an ignored signal, is left alone. The previous
    handler is restored on exit.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
