"""A loopback HTTP server for provider fakes: one thread, real sockets, stopped by the test."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


class Answer:
    def __init__(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


def serve(handle: Callable[[str, str, dict[str, str], bytes], Answer]) -> tuple[ThreadingHTTPServer, str]:
    """Start a server on 127.0.0.1 that passes (method, path with query, headers, body) to ``handle``."""

    class Handler(BaseHTTPRequestHandler):
        def _any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            answer = handle(self.command, self.path, {k: v for k, v in self.headers.items()}, body)
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = _any

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"
