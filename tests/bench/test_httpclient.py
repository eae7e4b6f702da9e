"""The load generator's connection reads every framing of an answer whole, keeps the connection alive,
and opens a new one when the server closes it or goes away."""

from __future__ import annotations

import asyncio

import pytest

from bench.httpclient import Connection

pytestmark = pytest.mark.anyio

ANSWERS = {  # request path -> the server's answer
    b"/sized": b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello",
    b"/chunked": b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n"
    b"trailer: 1\r\n\r\n",
    b"/close": b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}",
}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Server:
    """Answers each request by its path from ANSWERS; counts connections and the requests' bodies."""

    def __init__(self) -> None:
        self.connections = 0
        self.bodies: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                sized = [ln for ln in head.split(b"\r\n") if ln.startswith(b"content-length")]
                length = int(sized[0].split(b":")[1]) if sized else 0
                self.bodies.append(await reader.readexactly(length))
                path = head.split(b" ")[1]
                writer.write(ANSWERS[path])
                await writer.drain()
                if path == b"/close":
                    break
        except asyncio.IncompleteReadError:
            pass
        writer.close()


def request(path: str, body: bytes = b"") -> bytes:
    return f"POST {path} HTTP/1.1\r\nhost: t\r\ncontent-length: {len(body)}\r\n\r\n".encode()


async def test_answers_of_every_framing_on_one_kept_alive_connection_until_the_server_closes_it() -> None:
    server = Server()
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    conn = Connection("127.0.0.1", port)
    try:
        statuses = [await conn.exchange(request(p, b'{"n": 1}'), b'{"n": 1}') for p in ("/sized", "/chunked")]
        assert statuses == [200, 201] and server.connections == 1
        assert await conn.exchange(request("/close"), b"") == 503
        assert await conn.exchange(request("/sized", b"x"), b"x") == 200  # on a new connection
        assert server.connections == 2
        assert server.bodies == [b'{"n": 1}', b'{"n": 1}', b"", b"x"]
    finally:
        conn.close()
        listening.close()
        await listening.wait_closed()
    assert await conn.exchange(request("/sized"), b"") == 0  # nobody listens: a failed exchange, not a raise
