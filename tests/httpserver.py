"""A local HTTP server on 127.0.0.1 for download tests: Range and If-Range requests, HEAD with
ETag/Last-Modified, redirects, cut connections, trickling transfers, 503 and 404; plus the
fixtures and helpers the fetch tests share (the fixtures ``server`` and ``serve`` are registered for every
test by ``pytest_plugins`` in ``tests/conftest.py``; helpers are imported: ``from httpserver import FileServer``)."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self

import h5py
import pytest

__all__ = ["FileServer", "server", "serve", "corrupt_middle_chunk", "snapshot"]


class FileServer:
    """Serves ``files`` (name -> bytes) at ``base``.

    ``cut`` names are dropped half-way on their first request, ``busy`` names get one 503,
    ``trickle`` names (name -> (bytes, seconds)) are sent a piece every so often on their first
    request; ``redirect_base`` answers 302 towards ``base``. Each file has an ETag (from its
    content) and a Last-Modified time (``modified``, set when a file is replaced). Every GET is
    logged as (name, Range header) in ``log``, every HEAD by name in ``heads``.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.modified: dict[str, float] = {}
        self.cut: set[str] = set()
        self.busy: set[str] = set()  # answered 503 once
        self.trickle: dict[str, tuple[int, float]] = {}
        self.ignore_range = False  # answer 200 with the whole file to Range requests
        self.head_allowed = True  # False: HEAD gets 405
        self.log: list[tuple[str, str | None]] = []
        self.heads: list[str] = []
        self.headers: list[dict[str, str]] = []  # headers of every GET
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _lookup(self) -> tuple[str, bytes] | None:
                if self.path.startswith("/old/"):
                    self.send_response(302)
                    self.send_header("Location", server.base + self.path[len("/old/"):])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                name = self.path.rsplit("/", 1)[-1]
                if name not in server.files:
                    self.send_error(404, "Not Found")
                    return None
                return name, server.files[name]

            def _validators(self, name: str, body: bytes) -> None:
                self.send_header("ETag", server.etag(name))
                self.send_header("Last-Modified", formatdate(server.modified.get(name, 1e9), usegmt=True))

            def do_HEAD(self) -> None:
                server.heads.append(self.path.rsplit("/", 1)[-1])
                if not server.head_allowed:
                    self.send_error(405, "Method Not Allowed")
                    return
                found = self._lookup()
                if found is None:
                    return
                name, body = found
                self.send_response(200)
                self._validators(name, body)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                rng = self.headers.get("Range")
                if not self.path.startswith("/old/"):
                    server.log.append((name, rng))
                    server.headers.append(dict(self.headers.items()))
                found = self._lookup()
                if found is None:
                    return
                if name in server.busy:
                    server.busy.discard(name)
                    self.send_error(503, "Service Unavailable")
                    return
                body = found[1]
                if server.ignore_range or (self.headers.get("If-Range") not in (None, server.etag(name))):
                    rng = None
                start = int(re.match(r"bytes=(\d+)-", rng).group(1)) if rng else 0
                if start >= len(body):
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self._validators(name, body)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in server.cut:
                    server.cut.discard(name)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.close_connection = True
                    return
                if name in server.trickle:
                    piece, every = server.trickle.pop(name)
                    try:
                        for i in range(start, len(body), piece):
                            self.wfile.write(body[i : i + piece])
                            self.wfile.flush()
                            time.sleep(every)
                    except OSError:
                        pass
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.root = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.base = self.root + "nova/"
        self.redirect_base = self.root + "old/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def etag(self, name: str) -> str:
        return '"' + hashlib.sha1(self.files[name]).hexdigest()[:16] + '"'

    def replace(self, name: str, data: bytes) -> None:
        """Put a new version of ``name`` on the server (new ETag, later Last-Modified)."""
        self.files[name] = data
        self.modified[name] = self.modified.get(name, 1e9) + 3600

    def names(self) -> list[str]:
        return [n for n, _ in self.log]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


@pytest.fixture
def server() -> Iterator[FileServer]:
    """A running :class:`FileServer`."""
    with FileServer() as s:
        yield s


@pytest.fixture
def serve(server: FileServer, make_event_file: Callable[..., Path], tmp_path: Path) -> Callable[..., bytes]:
    """``serve(i, n)`` puts a valid ``neutrino{i}.h5`` of ``n`` events on the server; returns its bytes."""
    src = tmp_path / "served"

    def _serve(i: int, n: int = 60) -> bytes:
        data = make_event_file(f"neutrino{i}.h5", n=n, seed=i, directory=src).read_bytes()
        server.files[f"neutrino{i}.h5"] = data
        return data

    return _serve


def corrupt_middle_chunk(path: Path) -> None:
    """Zero 64 bytes inside a middle gzip chunk of ``cvnmap``: metadata and the last event still
    read (``inspect_file`` passes), the middle events do not."""
    with h5py.File(path, "r") as f:
        ds = f["cvnmap"]
        info = ds.id.get_chunk_info(ds.id.get_num_chunks() // 2)
    data = bytearray(path.read_bytes())
    at = info.byte_offset + info.size // 2
    data[at : at + 64] = bytes(64)
    path.write_bytes(bytes(data))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative name -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
