"""Tests of the url source's robustness (nucvn.data.fetch_url): deep validation, redirects, re-checks
against the server, resume after failure, staging, fail-fast and the minimum transfer rate."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

import pytest

import nucvn.data.fetch_url
from httpserver import FileServer, corrupt_middle_chunk, snapshot
from nucvn.core.errors import NucvnError
from nucvn.data.fetch import fetch_sim, fetch_url, read_manifest
from nucvn.data.h5io import inspect_file


def _fetch(server: FileServer, files: list[int] | str, out: Path, **kw: Any) -> dict:
    kw = {"parallel": 2, "retries": 2, "backoff": 0.01, "timeout": 10, "progress": False} | kw
    return fetch_url(kw.pop("base", server.base), files, out, **kw)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_corrupt_middle_chunk_is_refused_and_changed_local_files_are_fetched_again(
    server: FileServer, serve: Callable[..., bytes], tmp_path: Path
) -> None:
    good = serve(1, n=300)
    bad = tmp_path / "bad.h5"
    bad.write_bytes(good)
    corrupt_middle_chunk(bad)
    assert inspect_file(bad).n_events == 300  # the shallow check passes
    server.files["neutrino1.h5"] = bad.read_bytes()
    out = tmp_path / "raw"
    with pytest.raises(NucvnError, match=r"invalid after download \(file \[cvnmap\]: events .* cannot be read"):
        _fetch(server, [1], out, retries=1)
    assert not (out / "neutrino1.h5").exists()

    server.files["neutrino1.h5"] = good
    data = {1: good, 2: serve(2)}
    _fetch(server, [1, 2], out)
    (out / "neutrino1.h5").write_bytes(data[1][:-10])  # truncated: size differs
    flipped = bytearray(data[2])
    flipped[-1] ^= 1
    (out / "neutrino2.h5").write_bytes(bytes(flipped))  # same size, other sha256
    server.log.clear()
    _fetch(server, [1, 2], out)
    assert sorted(server.names()) == ["neutrino1.h5", "neutrino2.h5"]
    assert all((out / f"neutrino{i}.h5").read_bytes() == data[i] for i in (1, 2))


def test_manifest_records_final_url_after_redirect(server: FileServer, serve: Callable[..., bytes],
                                                   tmp_path: Path) -> None:
    data = serve(3, n=200)
    server.cut.add("neutrino3.h5")
    entry = _fetch(server, [3], tmp_path, base=server.redirect_base)["files"][0]
    assert entry["url"] == server.redirect_base + "neutrino3.h5"
    assert entry["final_url"] == server.base + "neutrino3.h5"
    assert entry["etag"] == server.etag("neutrino3.h5") and entry["last_modified"].endswith("GMT")
    assert server.log[1] == ("neutrino3.h5", f"bytes={len(data) // 2}-")  # resumed through the redirect
    assert (tmp_path / "neutrino3.h5").read_bytes() == data


def test_file_replaced_on_server_is_downloaded_again(server: FileServer, serve: Callable[..., bytes],
                                                     tmp_path: Path) -> None:
    serve(1)
    serve(2)
    first = _fetch(server, "1-2", tmp_path)
    new = serve(2, n=61)
    server.replace("neutrino2.h5", new)
    server.log.clear()
    second = _fetch(server, "1-2", tmp_path)
    assert sorted(server.heads) == ["neutrino1.h5", "neutrino2.h5"]
    assert server.names() == ["neutrino2.h5"]
    assert (tmp_path / "neutrino2.h5").read_bytes() == new
    assert second["files"][0] == first["files"][0] and second["files"][1]["n_events"] == 61

    same_size = bytearray(new)
    same_size[-1] ^= 1  # same size, new ETag; and a server that refuses HEAD
    server.replace("neutrino2.h5", bytes(same_size))
    server.head_allowed = False
    server.log.clear()
    _fetch(server, "1-2", tmp_path)
    assert ("neutrino2.h5", None) in server.log and ("neutrino1.h5", None) not in server.log
    assert (tmp_path / "neutrino2.h5").read_bytes() == bytes(same_size)


def test_unreachable_server_keeps_verified_files_with_one_warning(
    make_event_file: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "raw"
    with FileServer() as s:
        for i in (1, 2):
            s.files[f"neutrino{i}.h5"] = make_event_file(f"neutrino{i}.h5", seed=i,
                                                         directory=tmp_path / "src").read_bytes()
        first = _fetch(s, "1-2", out)
    before = snapshot(out)
    capsys.readouterr()
    again = _fetch(s, "1-2", out)  # same base, server gone
    assert again["files"] == first["files"] and snapshot(out) == before
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "warning" in err[0] and "keeping the local copies" in err[0]


def test_failed_fetch_keeps_part_and_rerun_resumes(server: FileServer, serve: Callable[..., bytes],
                                                   tmp_path: Path) -> None:
    data = serve(4, n=200)
    server.cut.add("neutrino4.h5")
    with pytest.raises(NucvnError, match="connection lost"):
        _fetch(server, [4], tmp_path, retries=0)
    part = tmp_path / ".neutrino4.h5.part"
    assert part.stat().st_size == len(data) // 2 > 0
    server.log.clear()
    _fetch(server, [4], tmp_path)
    assert server.log[0] == ("neutrino4.h5", f"bytes={len(data) // 2}-")
    assert server.headers[-1].get("If-Range") == server.etag("neutrino4.h5")
    assert (tmp_path / "neutrino4.h5").read_bytes() == data and not part.exists()


def test_failed_url_fetch_leaves_previous_data_set_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "raw"
    fetch_sim(out, files=2, events=10, seed=3, workers=1, progress=False)
    before = snapshot(out)
    with pytest.raises(NucvnError, match="2 of 2 files failed"):
        fetch_url(f"http://127.0.0.1:{_closed_port()}/", "1-2", out, retries=1, backoff=0.01, timeout=2, progress=False)
    assert snapshot(out) == before
    assert read_manifest(out)["source"] == "sim"


def test_closed_port_fails_fast_with_one_grouped_reason(tmp_path: Path) -> None:
    port = _closed_port()
    t0 = time.monotonic()
    with pytest.raises(NucvnError) as err:
        fetch_url(f"http://127.0.0.1:{port}/", "1-50", tmp_path, retries=5, backoff=0.5, timeout=5, progress=False)
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    expected = f"50 of 50 files failed: neutrino1.h5 … neutrino50.h5: cannot connect to 127.0.0.1:{port} "
    assert expected + "(Connection refused);" in msg
    assert msg.count("Connection refused") == 1 and len(msg) < 400 and "\n" not in msg


def test_unresolvable_host_stops_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def no_dns(host: str, *args: object, **kw: object) -> list[Any]:
        calls.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    t0 = time.monotonic()
    with pytest.raises(NucvnError,
                       match=r"20 of 20 files failed: neutrino1\.h5 … neutrino20\.h5: cannot resolve host "
                             r"nucvn-test\.invalid \(Name or service not known\)"):
        fetch_url("http://nucvn-test.invalid/nova/", "1-20", tmp_path, parallel=2, retries=5, backoff=5, progress=False)
    assert time.monotonic() - t0 < 3 and 1 <= len(calls) <= 2


class _Bar:
    """Stands in for the progress bar: records every update."""

    def __init__(self, **kw: object) -> None:
        self.updates: list[int] = []

    def update(self, n: int) -> None:
        self.updates.append(n)

    def __enter__(self) -> Self:
        bars.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        pass


bars: list[_Bar] = []


def test_trickle_below_min_rate_is_retried_with_resume(
    server: FileServer, serve: Callable[..., bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = serve(6, n=200)
    server.trickle["neutrino6.h5"] = (1000, 0.05)  # about 20 kB/s
    monkeypatch.setattr(nucvn.data.fetch_url, "progress_bar", _Bar)
    bars.clear()
    manifest = _fetch(server, [6], tmp_path, min_rate=100_000, rate_window=0.3)
    assert manifest["files"][0]["attempts"] == 2
    resumed_at = int(server.log[1][1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at < len(data) // 2
    assert (tmp_path / "neutrino6.h5").read_bytes() == data
    pieces = bars[0].updates
    assert sum(pieces) == len(data) and pieces[:3] == [1000, 1000, 1000]  # the bar moved with each piece


def test_full_disk_during_download_is_one_line_naming_the_file(
    server: FileServer, serve: Callable[..., bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that hits ENOSPC while a download streams in: one line with the partial file's path and
    "no space left on device", no retries, and the previous data set untouched."""
    import builtins
    import errno

    serve(5, n=200)
    out = tmp_path / "raw"
    fetch_sim(out, files=1, events=10, seed=3, workers=1, progress=False)
    before = snapshot(out)
    real_open = builtins.open

    class _Full:
        def __init__(self, f: Any) -> None:
            self.f = f

        def __enter__(self) -> Self:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

        def __getattr__(self, name: str) -> Any:
            return getattr(self.f, name)

    def full_open(path: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        f = real_open(path, mode, *args, **kw)
        return _Full(f) if str(path).endswith(".part") and ("a" in mode or "w" in mode) else f

    monkeypatch.setattr(builtins, "open", full_open)
    server.log.clear()
    with pytest.raises(NucvnError) as err:
        _fetch(server, [5], out, retries=3)
    monkeypatch.undo()
    msg = str(err.value)
    assert "\n" not in msg and ".neutrino5.h5.part" in msg and "no space left on device" in msg
    assert server.names() == ["neutrino5.h5"]  # not retried: a retry cannot free the disk
    complete = {k: v for k, v in snapshot(out).items() if not k.startswith(".")}  # staged parts stay for a resume
    assert complete == before
