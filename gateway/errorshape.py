"""The JSON body of an error: `{"error": "..."}`, or OpenAI's shape on the OpenAI-compatible `/v1/*`.

OpenAI's SDKs read `{"error": {"message", "type", "param", "code"}}` and raise their typed errors
(`BadRequestError` for 400, `AuthenticationError` for 401, `NotFoundError` for 404, ...) with it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

OPENAI_PREFIX = "/v1/"
# OpenAI's `type` of an error, by status; statuses not listed are `invalid_request_error` (4xx) or
# `server_error` (5xx).
_TYPES = {401: "authentication_error", 429: "rate_limit_error"}
# A default `code` where OpenAI's API has one for the same situation.
_CODES = {401: "invalid_api_key", 413: "request_too_large"}


def speaks_openai(request: Request) -> bool:
    """Whether the request is for the OpenAI-compatible API."""
    return request.url.path.startswith(OPENAI_PREFIX)


def error_body(
    request: Request, status: int, message: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The error body the request's API uses."""
    if not speaks_openai(request):
        return {"error": message}
    kind = _TYPES.get(status, "invalid_request_error" if status < 500 else "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code or _CODES.get(status)}}
