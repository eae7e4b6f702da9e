"""The gateway's connections to a predictor follow GATEWAY_MAX_CONCURRENCY: as many as it admits
requests at once, and one for the readiness look, so no admitted request waits for a connection."""

from __future__ import annotations

import asyncio
from types import TracebackType

import pytest

from gateway.metrics import Metrics
from gateway.predictor import pool_size
from gateway.services import Services
from gateway.settings import Settings

pytestmark = pytest.mark.anyio
READY = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


class HoldingServer:
    """An HTTP/1.1 server on 127.0.0.1 that holds each request until `release_one()`, and counts the
    connections opened to it."""

    def __init__(self) -> None:
        self.connections = 0
        self.held: list[asyncio.Event] = []
        self._arrivals = asyncio.Condition()

    async def __aenter__(self) -> HoldingServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for release in self.held:
            release.set()
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")  # a GET: no body
                release = asyncio.Event()
                async with self._arrivals:
                    self.held.append(release)
                    self._arrivals.notify_all()
                await release.wait()
                writer.write(READY)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client closed the connection
        finally:
            writer.close()

    async def arrived(self, count: int) -> None:
        """Return once `count` requests have arrived (a guard fails the test should they never come)."""
        try:
            async with asyncio.timeout(20), self._arrivals:
                await self._arrivals.wait_for(lambda: len(self.held) >= count)
        except TimeoutError:
            raise AssertionError(f"{len(self.held)} requests reached the server, not {count}") from None

    def release_one(self) -> None:
        next(r for r in self.held if not r.is_set()).set()


@pytest.mark.parametrize("max_concurrency", [2, 5])
async def test_the_pool_to_a_predictor_follows_gateway_max_concurrency(
    monkeypatch: pytest.MonkeyPatch, max_concurrency: int
) -> None:
    pool = pool_size(max_concurrency)
    assert pool >= max_concurrency + 1  # every admitted request, and the readiness look
    async with HoldingServer() as server:
        monkeypatch.setenv("GATEWAY_MAX_CONCURRENCY", str(max_concurrency))
        monkeypatch.setenv("IMAGE_PREDICTOR_URL", server.url)
        services = Services.start(Settings(), Metrics())
        try:
            calls = [asyncio.create_task(services.images.client.ready(30)) for _ in range(pool + 1)]
            await server.arrived(pool)  # `pool` calls at once, each on a connection of its own ...
            server.release_one()
            await server.arrived(pool + 1)  # ... and the one more went on a connection given back
            for _ in range(pool):
                server.release_one()
            assert await asyncio.gather(*calls) == [None] * (pool + 1)  # each saw the model ready
            assert server.connections == pool
        finally:
            await services.aclose()
