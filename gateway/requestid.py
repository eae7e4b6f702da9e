"""`x-request-id`: taken from the client when sane, otherwise generated; echoed on every response."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "x-request-id"
_HEADER_KEY = HEADER.encode()
# Forwarded to the predictors and written to logs: no spaces, no control characters, bounded.
_VALID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

current: ContextVar[str] = ContextVar("request_id", default="-")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The first such header, as Starlette's `Headers.get` reads it (ASGI names are lower case).
        given = next((v.decode("latin-1") for k, v in scope["headers"] if k == _HEADER_KEY), "")
        request_id = given if _VALID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = current.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            current.reset(token)


def request_id(request: Request) -> str:
    """The id of the request being served."""
    return str(request.state.request_id)
