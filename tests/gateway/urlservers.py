"""Test doubles for image URL fetching: an image server on 127.0.0.1, a stub resolver and a network
backend that records every connection attempt (and refuses any outside 127.0.0.0/8)."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore

from tests.gateway.fakes import png

RED = png(16, 16, "red")


class _Handler(BaseHTTPRequestHandler):
    server: ImageServer

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/red.png":  # a PNG served as text: the type comes from the bytes
            return self._send(200, RED, "text/plain")
        if parts.path == "/text":
            return self._send(200, b"<html>not an image</html>", "image/png")
        if parts.path == "/missing":
            return self._send(404, b"no", "text/plain")
        if parts.path == "/redirect":
            return self._send(302, b"", "text/plain", location=query["to"][0])
        if parts.path.startswith("/chain/"):
            left = int(parts.path.rsplit("/", 1)[1])
            return self._send(302, b"", "text/plain", location=f"/chain/{left - 1}" if left else "/red.png")
        if parts.path == "/big":  # no Content-Length: the size is known only while streaming
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("connection", "close")
            self.end_headers()
            try:
                for _ in range(200):
                    self.wfile.write(b"\0" * 1024)
            except OSError:
                pass  # the gateway stopped reading
            return None
        if parts.path == "/big-declared":
            self.send_response(200)
            self.send_header("content-length", str(10**9))
            self.end_headers()
            return None
        if parts.path == "/stall":
            self.server.release.wait()
            return None
        return self._send(404, b"no route", "text/plain")

    def _send(self, status: int, body: bytes, kind: str, location: str | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        if location is not None:
            self.send_header("location", location)
        self.end_headers()
        self.wfile.write(body)


class ImageServer(ThreadingHTTPServer):
    """Serves /red.png, /text, /missing, /redirect?to=URL, /chain/N, /big, /big-declared and /stall
    (which answers nothing until the server stops) on 127.0.0.1; `paths` records each request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths: list[str] = []
        self.release = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> ImageServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class StubResolver:
    """Answers name lookups from a table; records every lookup."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        if host not in self.table:
            raise OSError(f"stub resolver: unknown host {host}")
        return self.table[host]


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records each connection attempt; connects only within 127.0.0.0/8 (anything else fails the test)."""

    def __init__(self) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.attempts: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.attempts.append((host, port))
        assert ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8"), f"connection to {host}"
        return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)
