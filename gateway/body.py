"""Read a request body with a hard cap: Content-Length first, then bytes counted while reading."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Message, Receive

from gateway.errors import BadInput, TooLarge


def capped(request: Request, limit: int, what: str) -> Request:
    """The same request, whose body stream raises TooLarge past `limit` bytes.

    Refuses at once when Content-Length already says too much, so nothing is read at all.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise BadInput(f"invalid Content-Length header {declared!r}") from None
        if length > limit:
            raise TooLarge(f"request body is {length} bytes, over the limit of {limit} bytes for {what}")
    return Request(request.scope, _counting(request.receive, limit, what))


def _counting(receive: Receive, limit: int, what: str) -> Receive:
    seen = 0

    async def receive_capped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge(f"request body is over the limit of {limit} bytes for {what}")
        return message

    return receive_capped
