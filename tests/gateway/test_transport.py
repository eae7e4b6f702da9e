"""The predictor transport against real sockets: answers pass through unchanged, and each network
failure surfaces as the httpx error the gateway maps (unreachable, timeout, retry)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import httpx
import pytest

from devtools.procs import pick_free_port
from gateway.transport import AiohttpTransport, HttpxTransport

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
        async with server:
            t = AiohttpTransport(limit=4, keepalive_s=30)
            body = bytes(range(256)) * 400
            r = await t.request("POST", url + "/v2/x", 5.0, body, {"x-request-id": "abc"})
            await t.aclose()
            assert (r.status, r.json(), r.headers["X-Extra"], r.reason) == (
                201,
                {"ok": 1.5},
                "yes",
                "Created",
            )
            head, got = seen[0]
            assert got == body and b"x-request-id: abc" in head.lower() and head.startswith(b"POST /v2/x ")

    run(main())


def test_refused_connection_is_a_connect_error() -> None:
    async def main() -> None:
        t = AiohttpTransport(limit=4, keepalive_s=30)
        with pytest.raises(httpx.ConnectError):
            await t.request("GET", f"http://127.0.0.1:{pick_free_port()}/ready", 5.0)
        await t.aclose()

    run(main())


def test_silent_server_is_a_read_timeout() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(5)

    async def main() -> None:
        server, url = await serving(handler)
        async with server:
            t = AiohttpTransport(limit=4, keepalive_s=30)
            with pytest.raises(httpx.ReadTimeout):
                await t.request("GET", url, 0.3)
            await t.aclose()

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
        async with server:
            t = AiohttpTransport(limit=4, keepalive_s=30)
            assert (await t.request("POST", url, 5.0, b"{}")).status == 201
            with pytest.raises(httpx.RemoteProtocolError):
                await t.request("POST", url, 5.0, b"{}")
            assert (await t.request("POST", url, 5.0, b"{}")).status == 201
            await t.aclose()

    run(main())


def test_an_httpx_transport_answers_through_the_same_interface() -> None:
    # The tests' fake predictors are httpx transports: what they see and answer crosses unchanged.
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, headers={"Retry-After": "3"}, json={"error": "busy"})

    async def main() -> None:
        t = HttpxTransport(httpx.MockTransport(handle))
        r = await t.request("POST", "http://image.test/v2/x", 5.0, b"abc", {"x-request-id": "r1"})
        assert (r.status, r.headers["retry-after"], r.json(), r.reason) == (
            503,
            "3",
            {"error": "busy"},
            "Service Unavailable",
        )
        assert (seen[0].url.host, seen[0].headers["x-request-id"], seen[0].read()) == (
            "image.test",
            "r1",
            b"abc",
        )
        await t.aclose()

    run(main())
