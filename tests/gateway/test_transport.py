"""The aiohttp transport under httpx, against real sockets: answers pass through unchanged, and each
network failure surfaces as the httpx error the gateway maps (unreachable, timeout, retry)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import httpx
import pytest

from devtools.procs import pick_free_port
from gateway.transport import AiohttpTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = (
    b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nx-extra: yes\r\ncontent-length: 11\r\n\r\n"
    b'{"ok": 1.5}'
)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":")[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length")
        ),
        0,
    )
    return head, await reader.readexactly(length)


async def serving(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


def run(coro: Awaitable[None]) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_answer_passes_through_and_the_body_arrives_whole() -> None:
    seen: list[tuple[bytes, bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await read_request(reader))
        writer.write(OK)
        await writer.drain()

    async def main() -> None:
        server, url = await serving(handler)
        async with server, httpx.AsyncClient(transport=AiohttpTransport(limit=4, keepalive_s=30)) as c:
            body = bytes(range(256)) * 400
            r = await c.post(url + "/v2/x", content=body, headers={"x-request-id": "abc"})
            assert (r.status_code, r.json(), r.headers["x-extra"]) == (201, {"ok": 1.5}, "yes")
            head, got = seen[0]
            assert got == body and b"x-request-id: abc" in head.lower() and head.startswith(b"POST /v2/x ")

    run(main())


def test_refused_connection_is_a_connect_error() -> None:
    async def main() -> None:
        async with httpx.AsyncClient(transport=AiohttpTransport(limit=4, keepalive_s=30)) as c:
            with pytest.raises(httpx.ConnectError):
                await c.get(f"http://127.0.0.1:{pick_free_port()}/ready")

    run(main())


def test_silent_server_is_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def main() -> None:
        server, url = await serving(handler)
        async with server, httpx.AsyncClient(transport=AiohttpTransport(limit=4, keepalive_s=30)) as c:
            with pytest.raises(httpx.ReadTimeout):
                await c.get(url, timeout=0.3)

    run(main())


def test_dropped_keepalive_connection_is_a_protocol_error_then_a_fresh_one_works() -> None:
    # The server answers once, then closes the connection the client keeps: the next POST on it (an
    # infer) fails as RemoteProtocolError, which the gateway retries once, on a new connection.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")  # the next request on this connection: drop it unanswered
        writer.close()

    async def main() -> None:
        server, url = await serving(handler)
        async with server, httpx.AsyncClient(transport=AiohttpTransport(limit=4, keepalive_s=30)) as c:
            assert (await c.post(url, content=b"{}")).status_code == 201
            with pytest.raises(httpx.RemoteProtocolError):
                await c.post(url, content=b"{}")
            assert (await c.post(url, content=b"{}")).status_code == 201

    run(main())
