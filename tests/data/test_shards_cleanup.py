"""Tests of the temporary directory of a shard build: removed on SIGTERM, leftovers of killed
builds removed by the next build, live builds' directories left alone."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import random_events
from nucvn.data.h5write import write_events
from nucvn.data.shard_workdir import OWNER_FILE, process_start_time
from nucvn.data.shards import build_shards

# Builds shards of argv[1] into argv[2] and, once the first events are being written, touches
# argv[3] and sleeps: the test then signals it mid-build.
_CHILD = """
import sys, time
from pathlib import Path
from nucvn.data import shard_build
from nucvn.data.shard_writer import SplitWriter

add = SplitWriter.add
def stalled(self, *args):
    add(self, *args)
    Path(sys.argv[3]).touch()
    time.sleep(120)

SplitWriter.add = stalled
shard_build.build_shards([Path(sys.argv[1])], Path(sys.argv[2]), progress=False)
"""


def _leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporary_directories_are_removed_live_ones_kept(tmp_path: Path) -> None:
    data = write_events(tmp_path / "neutrino1.h5", *random_events(120, seed=0))
    out = tmp_path / "shards"
    dead = tmp_path / f".shards.tmp-{_dead_pid()}"
    (dead / "train").mkdir(parents=True)
    (dead / "train" / "hits-00000.npy").write_bytes(bytes(1000))
    old = tmp_path / f".shards.old-{_dead_pid()}"
    old.mkdir()
    other = tmp_path / f".other.tmp-{_dead_pid()}"  # another output's: not ours to judge
    other.mkdir()
    unrelated = tmp_path / ".shards.tmp-notapid"
    unrelated.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".shards.tmp-{sleeper.pid}"  # a running process, no owner record: kept
        live.mkdir()
        before = signal.getsignal(signal.SIGTERM)
        build_shards([data], out, progress=False)
        assert signal.getsignal(signal.SIGTERM) == before
        assert not dead.exists() and not old.exists()
        assert live.exists() and other.exists() and unrelated.exists()
        assert (out / "index.json").is_file() and not (out / OWNER_FILE).exists()

        started = process_start_time(sleeper.pid)
        if started is not None:  # Linux: a record whose start time differs means the pid was reused
            (live / OWNER_FILE).write_text(json.dumps({"pid": sleeper.pid, "start": started + 1}))
            build_shards([data], out, progress=False)
            assert not live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_sigterm_cleans_up_and_sigkill_leftover_is_removed_by_the_next_build(tmp_path: Path) -> None:
    data = write_events(tmp_path / "neutrino1.h5", *random_events(200, seed=0))
    term, kill = tmp_path / "term", tmp_path / "kill"
    build_shards([data], term, progress=False)
    before = (term / "index.json").read_text()
    children = {
        out: subprocess.Popen([sys.executable, "-c", _CHILD, str(data), str(out),
                               str(tmp_path / f"{out.name}.started")])
        for out in (term, kill)
    }
    try:
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"{out.name}.started").exists() for out in children):
            alive = all(c.poll() is None for c in children.values())
            assert time.monotonic() < deadline and alive, "child did not start"
            time.sleep(0.05)
        assert _leftovers(term) == [f".term.tmp-{children[term].pid}"]
        children[term].send_signal(signal.SIGTERM)
        children[kill].send_signal(signal.SIGKILL)
        assert children[term].wait(30) == 128 + signal.SIGTERM
        assert children[kill].wait(30) == -signal.SIGKILL
        assert _leftovers(term) == [] and (term / "index.json").read_text() == before
        assert _leftovers(kill) == [f".kill.tmp-{children[kill].pid}"]
    finally:
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()

    build_shards([data], kill, progress=False)
    assert _leftovers(kill) == [] and (kill / "index.json").is_file()
