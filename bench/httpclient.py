"""One keep-alive HTTP/1.1 connection that sends prebuilt requests and reads whole answers: the load
generator's client, with none of a general client's per-request objects (URL, headers, cookies)."""

from __future__ import annotations

import asyncio

_LIMIT = 1 << 20  # the longest answer head read


class Connection:
    """A connection to `host`:`port`, opened on first use and again after the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def exchange(self, head: bytes, body: bytes) -> int:
        """Send one request (`head` ends with its blank line) and read its whole answer; its status, or
        0 when the connection failed (the next exchange opens a new one)."""
        try:
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=_LIMIT)
            assert self._reader is not None
            self._writer.writelines((head, body) if body else (head,))
            return await self._answer(self._reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            self.close()
            return 0

    async def _answer(self, reader: asyncio.StreamReader) -> int:
        lines = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get(b"transfer-encoding") == b"chunked":
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await reader.readexactly(size + 2)
            while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, up to the blank line
                pass
        else:
            await reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection") == b"close":
            self.close()
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
