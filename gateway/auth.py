"""Optional bearer API keys, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from gateway.errors import Unauthorized


class ApiKeys:
    """Checks `Authorization: Bearer <key>` against the configured keys; no keys means open access."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._keys = [key.encode() for key in keys]

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    def check(self, authorization: str | None) -> None:
        if not self._keys:
            return
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("missing API key: send 'Authorization: Bearer <key>'")
        given = token.strip().encode()
        # Compare with every key, without stopping at a match, so timing tells nothing.
        matched = False
        for key in self._keys:
            matched |= hmac.compare_digest(given, key)
        if not matched:
            raise Unauthorized("invalid API key")


async def require_api_key(request: Request) -> None:
    """FastAPI dependency for the endpoints that need a key."""
    request.app.state.api_keys.check(request.headers.get("authorization"))
