"""The HTTP calls to the predictors: aiohttp's connection pool, called directly.

httpx's own pool (httpcore) polls every idle connection before each request, which makes its CPU cost per
call grow with the calls in flight; aiohttp's pool does not (`python -m bench.client` measures both;
figures in bench/results/gateway-client.md). httpx's client layer over another pool still parses the URL,
builds request, response and cookie objects on every call, as much CPU as the I/O under it
(bench/results/gateway-cpu.md), so the predictor client calls through `Transport`, a one-method seam:
`AiohttpTransport` on the network, `HttpxTransport` over any httpx transport (the tests' MockTransport).

Both raise httpx's exception types (`httpx.ConnectError`, `httpx.ReadTimeout`, ...): the taxonomy that
`predictor.py` maps to the `predictor_errors_total` reasons, whichever transport is in use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import httpx
from yarl import URL


@dataclass(frozen=True, slots=True)
class Reply:
    """A predictor's answer: status, headers (case-insensitive), the whole body, the reason phrase."""

    status: int
    headers: Mapping[str, str]
    content: bytes
    reason: str = ""

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class Transport(Protocol):
    """Sends one request and returns the whole answer; connect and read each time out after `timeout_s`."""

    async def request(
        self,
        method: str,
        url: str,
        timeout_s: float,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """One pooled `aiohttp.ClientSession` (at most `limit` connections, idle ones closed after
    `keepalive_s`)."""

    def __init__(self, limit: int, keepalive_s: float) -> None:
        self._limit = limit
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        # The few URLs and timeouts a client uses, parsed and built once.
        self._urls: dict[str, URL] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop that will use it.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=self._keepalive_s)
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                skip_auto_headers=("User-Agent",),
                # The predictors set no cookies, and none may pass between users' requests.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        timeout_s: float,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        parsed = self._urls.get(url)
        if parsed is None:
            parsed = self._urls[url] = URL(url)
        timeout = self._timeouts.get(timeout_s)
        if timeout is None:
            timeout = self._timeouts[timeout_s] = aiohttp.ClientTimeout(
                connect=timeout_s, sock_read=timeout_s
            )
        try:
            async with self._get_session().request(
                method, parsed, headers=headers, data=content, allow_redirects=False, timeout=timeout
            ) as response:
                body = await response.read()
        except aiohttp.ConnectionTimeoutError as e:
            raise httpx.ConnectTimeout(str(e) or "connect timed out") from e
        except (TimeoutError, aiohttp.ServerTimeoutError) as e:
            raise httpx.ReadTimeout(str(e) or "read timed out") from e
        except aiohttp.ClientConnectorError as e:
            raise httpx.ConnectError(str(e)) from e
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as e:
            # The server closed the connection, usually a pooled keep-alive one it had dropped.
            raise httpx.RemoteProtocolError(str(e) or type(e).__name__) from e
        except aiohttp.ClientError as e:
            raise httpx.ReadError(str(e) or type(e).__name__) from e
        return Reply(response.status, response.headers, body, response.reason or "")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class HttpxTransport:
    """Any httpx transport (e.g. `httpx.MockTransport`) behind `Transport`."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self._transport = transport

    async def request(
        self,
        method: str,
        url: str,
        timeout_s: float,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        timeout = {"connect": timeout_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}
        request = httpx.Request(
            method, url, content=content, headers=headers, extensions={"timeout": timeout}
        )
        response = await self._transport.handle_async_request(request)
        body = await response.aread()
        return Reply(response.status_code, response.headers, body, response.reason_phrase)

    async def aclose(self) -> None:
        await self._transport.aclose()
