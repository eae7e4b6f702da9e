"""An HTTP server that accepts requests and never answers: a predictor stuck mid-request."""

from __future__ import annotations

import socketserver
import threading
from types import TracebackType


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True


class StallingServer:
    """Listens on 127.0.0.1:`port`, reads whatever comes, holds the connection until stopped."""

    def __init__(self) -> None:
        stop = self.stopped = threading.Event()

        class Hold(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.settimeout(0.1)
                while not stop.is_set():
                    try:
                        if not self.request.recv(65536):
                            return
                    except TimeoutError:
                        continue

        self.server = _Server(("127.0.0.1", 0), Hold)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StallingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()
