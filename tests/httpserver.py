"""A local HTTP server on 127.0.0.1 for download tests: Range requests, cut connections, 404."""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FileServer"]


class FileServer:
    """Serves ``files`` (name -> bytes) at ``base``; ``cut`` names are dropped half-way on their
    first request, ``busy`` names get one 503; every request is logged as (name, Range header)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()
        self.busy: set[str] = set()  # answered 503 once
        self.ignore_range = False  # answer 200 with the whole file to Range requests
        self.log: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                name = self.path.rsplit("/", 1)[-1]
                rng = self.headers.get("Range")
                server.log.append((name, rng))
                if name not in server.files:
                    self.send_error(404, "Not Found")
                    return
                if name in server.busy:
                    server.busy.discard(name)
                    self.send_error(503, "Service Unavailable")
                    return
                body = server.files[name]
                if server.ignore_range:
                    rng = None
                start = int(re.match(r"bytes=(\d+)-", rng).group(1)) if rng else 0
                if start >= len(body):
                    self.send_error(416, "Range Not Satisfiable")
                    return
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if name in server.cut:
                    server.cut.discard(name)
                    self.wfile.write(body[start : start + (len(body) - start) // 2])
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}/nova/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def names(self) -> list[str]:
        return [n for n, _ in self.log]

    def __enter__(self) -> FileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()
