"""HTTP for the url source: one download attempt into a ``.part`` file, and a probe of a file's
size and validators (ETag/Last-Modified) for re-checking verified downloads.

Failures are classified for the retry logic in :mod:`nucvn.data.fetch_url`: :class:`Transient` (worth
retrying; ``no_answer`` when the host sent no HTTP answer at all, e.g. connection refused) and
:class:`Fatal` (no retry can fix it: a 404, or a host name that does not resolve, which stops
every file). Reasons never name the file, so that many files failing alike group into one line.
"""

from __future__ import annotations

import http.client
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nucvn.core.atomic import disk_errors

__all__ = ["Transient", "Fatal", "Remote", "download_once", "probe", "changed_on_server", "validator"]

_PIECE = 1 << 16
"""Largest read: ``read1`` returns what has arrived, up to this, so progress moves with each piece."""


class Transient(Exception):
    """A failure worth retrying (cut connection, timeout, too slow, server error)."""

    def __init__(self, reason: str, *, no_answer: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.no_answer = no_answer


class Fatal(Exception):
    """A failure a retry cannot fix; ``everyone``: it stops every file (the host is unusable);
    ``status``: the HTTP status, if the server answered with one."""

    def __init__(self, reason: str, *, everyone: bool = False, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.everyone = everyone
        self.status = status


@dataclass(frozen=True)
class Remote:
    """What a server said about a file: size (None if unknown), validators, URL after redirects."""

    size: int | None
    etag: str | None
    last_modified: str | None
    final_url: str


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc


def _no_answer(url: str, exc: BaseException, timeout: float) -> Exception:
    """Classify a failure before any HTTP answer: name resolution is fatal, the rest transient."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    host = _host(url)
    if isinstance(reason, socket.gaierror):
        name = urllib.parse.urlsplit(url).hostname
        return Fatal(f"cannot resolve host {name} ({reason.strerror or reason}); check fetch.url.base and the network",
                     everyone=True)
    if isinstance(reason, TimeoutError):
        return Transient(f"no answer from {host} within {timeout:g} s", no_answer=True)
    if isinstance(reason, http.client.RemoteDisconnected):
        return Transient(f"{host} closed the connection without answering", no_answer=True)
    if isinstance(reason, OSError) and reason.strerror:
        return Transient(f"cannot connect to {host} ({reason.strerror})", no_answer=True)
    return Transient(f"cannot connect to {host} ({reason})", no_answer=True)


def _open(req: urllib.request.Request, timeout: float) -> http.client.HTTPResponse:
    """``urlopen`` whose failures are :class:`Fatal`/:class:`Transient`; an HTTP error status
    passes through as :class:`urllib.error.HTTPError` (the host did answer)."""
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError:
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise _no_answer(req.full_url, exc, timeout) from exc


def _http_failure(url: str, exc: urllib.error.HTTPError) -> Exception:
    if exc.code in (408, 429) or exc.code >= 500:
        return Transient(f"HTTP {exc.code} {exc.reason}")
    base = url.rsplit("/", 1)[0] + "/"
    return Fatal(f"HTTP {exc.code} {exc.reason} under {base} (check fetch.url.base and fetch.url.files)",
                 status=exc.code)


def validator(remote: Remote) -> str | None:
    """The value for an ``If-Range`` header: a strong ETag, else Last-Modified."""
    if remote.etag and not remote.etag.startswith("W/"):
        return remote.etag
    return remote.last_modified


class _RateMeter:
    """Raises :class:`Transient` when fewer than ``min_rate`` bytes/s arrived over a window of
    ``window`` seconds (tumbling windows; 0 disables): a trickling server then counts as a
    failure to retry (with resume) instead of holding the stage indefinitely."""

    def __init__(self, min_rate: float, window: float) -> None:
        self.min_rate, self.window = min_rate, window
        self.t0, self.n0, self.n = time.monotonic(), 0, 0

    def add(self, n: int) -> None:
        self.n += n
        if self.min_rate <= 0:
            return
        t = time.monotonic()
        if t - self.t0 >= self.window:
            rate = (self.n - self.n0) / (t - self.t0)
            if rate < self.min_rate:
                raise Transient(f"transfer too slow ({rate:.0f} B/s over {t - self.t0:.0f} s, below "
                                f"fetch.url.min_rate {self.min_rate:g} B/s)")
            self.t0, self.n0 = t, self.n


def download_once(
    url: str,
    part: Path,
    *,
    timeout: float,
    min_rate: float,
    window: float,
    if_range: str | None,
    on_answer: Callable[[], None],
    on_start: Callable[[Remote], None],
    on_bytes: Callable[[int], None],
) -> Remote:
    """One attempt to complete ``part`` from ``url``, resuming with ``Range`` from its size.

    ``if_range`` (the validator recorded when the part was started) makes a server whose file
    changed since then send the whole new file instead of a mismatched remainder. Calls
    ``on_answer`` when the host answers, ``on_start`` when a new part starts from byte 0 and
    ``on_bytes`` with each piece as it arrives. Returns what the server said about the file.
    """
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    if have and if_range:
        headers["If-Range"] = if_range
    try:
        resp = _open(urllib.request.Request(url, headers=headers), timeout)
    except urllib.error.HTTPError as exc:
        on_answer()
        exc.close()
        if exc.code == 416 and have:  # nothing left to send: the part is complete (or garbage)
            return Remote(have, exc.headers.get("ETag"), exc.headers.get("Last-Modified"), url)
        raise _http_failure(url, exc) from exc
    on_answer()
    with resp:
        remote = Remote(None, resp.headers.get("ETag"), resp.headers.get("Last-Modified"), resp.geturl())
        if resp.status == 206:
            m = re.match(r"bytes (\d+)-", resp.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                part.unlink()  # start this file again from zero
                raise Transient("server answered the range request from the wrong offset "
                                f"({resp.headers.get('Content-Range')})")
            mode = "ab"
        else:
            have, mode = 0, "wb"
            on_start(remote)
        expected = resp.headers.get("Content-Length")
        meter = _RateMeter(min_rate, window)
        with disk_errors(part), open(part, mode) as f:
            while True:
                try:
                    data = resp.read1(_PIECE)
                except TimeoutError as exc:
                    raise Transient(f"no data for {timeout:g} s (fetch.url.timeout)") from exc
                except (OSError, http.client.HTTPException) as exc:
                    raise Transient(f"connection lost during the transfer ({exc})") from exc
                if not data:
                    break
                f.write(data)
                on_bytes(len(data))
                meter.add(len(data))
        if expected is not None and meter.n < int(expected):
            raise Transient("connection lost during the transfer")
    return Remote(have + meter.n, remote.etag, remote.last_modified, remote.final_url)


def probe(url: str, *, timeout: float) -> Remote:
    """Size and validators of ``url`` from a ``HEAD`` request (a one-byte ``GET`` where HEAD is
    not allowed). Raises :class:`Transient`, :class:`Fatal` or ``HTTPError`` like a download."""
    try:
        resp = _open(urllib.request.Request(url, method="HEAD"), timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code not in (405, 501):
            raise _http_failure(url, exc) from exc
        try:
            resp = _open(urllib.request.Request(url, headers={"Range": "bytes=0-0"}), timeout)
        except urllib.error.HTTPError as exc2:
            exc2.close()
            raise _http_failure(url, exc2) from exc2
    with resp:
        size: int | None = None
        m = re.match(r"bytes \d+-\d+/(\d+)", resp.headers.get("Content-Range", ""))
        if resp.status == 206 and m:
            size = int(m.group(1))
        elif resp.headers.get("Content-Length") is not None:
            size = int(resp.headers["Content-Length"])
        return Remote(size, resp.headers.get("ETag"), resp.headers.get("Last-Modified"), resp.geturl())


def changed_on_server(entry: dict[str, object], remote: Remote) -> bool:
    """True if the server's file differs from the one ``entry`` recorded at download time:
    another size, else another ETag, else another Last-Modified (what the server provides)."""
    if remote.size is not None and remote.size != entry.get("size"):
        return True
    if entry.get("etag") and remote.etag:
        return remote.etag != entry["etag"]
    if entry.get("last_modified") and remote.last_modified:
        return remote.last_modified != entry["last_modified"]
    return False
