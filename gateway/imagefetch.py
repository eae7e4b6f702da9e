"""Fetch image URLs (`GATEWAY_IMAGE_URLS`): guarded, bounded, and never logged with their query.

Each URL's host is checked before any connection (`gateway.urlguard`); at most `MAX_REDIRECTS`
redirects are followed, each checked the same way; the connect and the whole fetch (redirects
included) have timeouts; the body is refused as it streams once it passes the image size limit; the
image type is read from the bytes, not from the server's Content-Type. Errors: 400 for a bad or
refused URL and for a body that is not an image, 413 for too big, 502 for a failed fetch, 504 for a
slow one; their messages name the URL without its query and say that the fetch failed.
"""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urljoin, urlsplit

import httpcore

from gateway.errors import BadInput, GatewayError, TooLarge
from gateway.uploads import check_image
from gateway.urlguard import CheckedBackend

log = logging.getLogger("gateway")

MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_URL_CHARS = 2048
POOL_SIZE = 32


class FetchFailed(GatewayError):
    """The image server failed or answered with an error (502)."""

    status = 502


class FetchTimeout(GatewayError):
    """The image server did not answer in time (504)."""

    status = 504


def redacted(url: str) -> str:
    """The URL as it may be logged or quoted: scheme, host, port and path; no credentials, query or
    fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable URL>"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}{port}{parts.path}"


class ImageFetcher:
    """Fetches image URLs over one connection pool whose every connection goes through `backend`."""

    def __init__(
        self,
        backend: CheckedBackend,
        *,
        max_bytes: int,
        max_pixels: int,
        connect_timeout_s: float,
        total_timeout_s: float,
    ) -> None:
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.connect_timeout_s = connect_timeout_s
        self.total_timeout_s = total_timeout_s
        self.pool = httpcore.AsyncConnectionPool(
            network_backend=backend, max_connections=POOL_SIZE, retries=0, http1=True, http2=False
        )

    async def aclose(self) -> None:
        await self.pool.aclose()

    async def __call__(self, sources: list[bytes | str], labels: list[str | None]) -> list[bytes]:
        """`sources` with every URL replaced by its checked image file, fetched at once; an error's
        message starts with the image's label."""
        try:
            async with asyncio.TaskGroup() as group:
                tasks = {
                    i: group.create_task(self._labelled(label, source))
                    for i, (source, label) in enumerate(zip(sources, labels, strict=True))
                    if isinstance(source, str)
                }
        except BaseExceptionGroup as group_error:
            raise group_error.exceptions[0] from None
        return [s if isinstance(s, bytes) else tasks[i].result() for i, s in enumerate(sources)]

    async def _labelled(self, label: str | None, url: str) -> bytes:
        try:
            return await self.fetch(url)
        except GatewayError as exc:
            if label is None:
                raise
            raise type(exc)(f"{label}: {exc.message}") from exc

    async def fetch(self, url: str) -> bytes:
        """The image file at `url`, checked from its header, or the error a user should get."""
        shown = redacted(url)
        try:
            async with asyncio.timeout(self.total_timeout_s):
                data = await self._follow(url)
        except TimeoutError:
            log.warning("image fetch from %s timed out", shown)
            raise FetchTimeout(
                f"fetching the image from {shown} failed: "
                f"no complete answer within {self.total_timeout_s:g} s"
            ) from None
        try:
            check_image(data, self.max_bytes, self.max_pixels)
        except BadInput as exc:
            raise BadInput(f"the file fetched from {shown} is not a usable image: {exc.message}") from None
        return data

    async def _follow(self, url: str) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            target = _checked_url(url)
            status, location, data = await self._get(target)
            if status not in REDIRECTS:
                return data
            if not location:
                raise FetchFailed(
                    f"fetching the image from {redacted(url)} failed: a redirect without Location"
                )
            url = urljoin(target, location)
        raise FetchFailed(f"fetching the image failed: more than {MAX_REDIRECTS} redirects")

    async def _get(self, url: str) -> tuple[int, str | None, bytes]:
        shown = redacted(url)
        extensions = {
            "timeout": {
                "connect": self.connect_timeout_s,
                "read": self.total_timeout_s,
                "write": self.total_timeout_s,
                "pool": self.total_timeout_s,
            }
        }
        headers = [(b"accept", b"image/*"), (b"user-agent", b"clip-similarity-gateway")]
        try:
            async with self.pool.stream("GET", url, headers=headers, extensions=extensions) as response:
                if response.status in REDIRECTS:
                    location = _header(response, b"location")
                    return response.status, location, b""
                if response.status != 200:
                    raise FetchFailed(
                        f"fetching the image from {shown} failed: the server answered {response.status}"
                    )
                declared = _header(response, b"content-length")
                if declared and declared.isdigit() and int(declared) > self.max_bytes:
                    raise TooLarge(
                        f"the image at {shown} is {declared} bytes, over the limit of {self.max_bytes} bytes"
                    )
                return 200, None, await self._read(response, shown)
        except httpcore.TimeoutException:
            raise TimeoutError from None
        except (httpcore.ConnectError, httpcore.NetworkError, httpcore.ProtocolError) as exc:
            log.warning("image fetch from %s failed: %s", shown, type(exc).__name__)
            raise FetchFailed(
                f"fetching the image from {shown} failed: {type(exc).__name__} "
                "(the server could not be reached or broke the connection)"
            ) from None

    async def _read(self, response: httpcore.Response, shown: str) -> bytes:
        chunks, size = [], 0
        async for chunk in response.aiter_stream():
            size += len(chunk)
            if size > self.max_bytes:
                raise TooLarge(f"the image at {shown} is over the limit of {self.max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _checked_url(url: str) -> str:
    """`url` when it is an http(s) URL with a host, else BadInput saying what is wrong."""
    if len(url) > MAX_URL_CHARS:
        raise BadInput(f"the image URL is over {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError as exc:
        raise BadInput(f"the image URL is not valid: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise BadInput(f"the image URL {redacted(url)} is not http:// or https://")
    if not parts.hostname:
        raise BadInput(f"the image URL {redacted(url)} has no host")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise BadInput("the image URL contains whitespace or control characters")
    return url


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1").strip()
    return None
