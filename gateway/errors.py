"""Typed errors, each with the HTTP status a user gets and a message a person can act on."""

from __future__ import annotations

from typing import Literal, get_args

# Why a predictor call failed: the `reason` label of `predictor_errors_total`.
Reason = Literal[
    "unreachable",  # no connection, after one retry
    "timeout",  # no answer within PREDICTOR_TIMEOUT_S
    "not_ready",  # 503 (or 429) without Retry-After: the model is not loaded
    "bad_request",  # 4xx: the predictor rejected the input
    "not_found",  # 404: no model of that name
    "server_error",  # 5xx
    "bad_response",  # 200 with a body that is not the embedding asked for
    "overloaded",  # 503 (or 429) with Retry-After: the predictor's queue is full
]
REASONS: tuple[Reason, ...] = get_args(Reason)


class GatewayError(Exception):
    """An error answered as `{"error": message}` with `status` (on `/v1/*` in OpenAI's shape, where
    `param` names the request field at fault and `code` is a machine-readable reason)."""

    status: int = 500
    param: str | None = None
    code: str | None = None

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadInput(GatewayError):
    status = 400


class Unauthorized(GatewayError):
    status = 401

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class NotFound(GatewayError):
    status = 404


class TooLarge(GatewayError):
    status = 413


class UnsupportedMediaType(GatewayError):
    status = 415


class MissingField(GatewayError):
    status = 422


class Overloaded(GatewayError):
    """Too many requests in flight: refused at once, with `Retry-After`."""

    status = 503

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)})


class PredictorError(GatewayError):
    """A predictor call failed; `reason` labels `predictor_errors_total`."""

    def __init__(
        self,
        predictor: str,
        reason: Reason,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, headers=headers)
        self.predictor = predictor
        self.reason = reason
        self.status = status
