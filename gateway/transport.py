"""httpx's client API over aiohttp's connection pool, for the calls to the predictors.

httpx's own pool (httpcore) polls every idle connection before each request, which makes its CPU cost per
call grow with the calls in flight; aiohttp's pool does not. The gateway makes two predictor calls per
`/compare/`, so that cost is most of its own (`python -m bench.client` measures both; figures in
bench/results/gateway-client.md). httpx stays the API (timeouts, errors, the tests' MockTransport); only
the I/O moves."""

from __future__ import annotations

import aiohttp
import httpx


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Sends httpx requests with one pooled `aiohttp.ClientSession` (at most `limit` connections)."""

    def __init__(self, limit: int, keepalive_s: float) -> None:
        self._limit = limit
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running event loop that will use it.
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self._limit, keepalive_timeout=self._keepalive_s)
            self._session = aiohttp.ClientSession(
                connector=connector, auto_decompress=False, skip_auto_headers=("User-Agent",)
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeout = request.extensions.get("timeout", {})
        try:
            async with self._get_session().request(
                request.method,
                str(request.url),
                headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw],
                data=request.content,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(connect=timeout.get("connect"), sock_read=timeout.get("read")),
            ) as response:
                content = await response.read()
        except aiohttp.ConnectionTimeoutError as e:
            raise httpx.ConnectTimeout(str(e) or "connect timed out", request=request) from e
        except (TimeoutError, aiohttp.ServerTimeoutError) as e:
            raise httpx.ReadTimeout(str(e) or "read timed out", request=request) from e
        except aiohttp.ClientConnectorError as e:
            raise httpx.ConnectError(str(e), request=request) from e
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as e:
            # The server closed the connection, usually a pooled keep-alive one it had dropped.
            raise httpx.RemoteProtocolError(str(e) or type(e).__name__, request=request) from e
        except aiohttp.ClientError as e:
            raise httpx.ReadError(str(e) or type(e).__name__, request=request) from e
        return httpx.Response(
            response.status,
            headers=[(k, v) for k, v in response.raw_headers],
            content=content,
            request=request,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
