"""A short road for binary infer requests: `POST /v2/models/{name}/infer` past FastAPI's layers.

The gateway calls a predictor with the binary tensor data extension on every request, and KServe's
FastAPI app spends more CPU on such a call (six middlewares, route matching, dependency solving, a
sub-response) than a small model does. `FastInfer` sits outermost in the app's middleware stack and
answers these calls itself with the very steps of KServe's v2 infer endpoint (model ready, decode,
`Model.__call__` with its latency histograms, encode), so the model's admission, batching and metrics
run as before. An error goes through the handler the app has registered for its type, so the status
and JSON body are those of the full app; an unexpected one answers KServe's 500 and is re-raised, so
the server logs it and drops the connection, as it does for the full app. Any other request (JSON
bodies, other routes and methods, a versioned path) goes to the full app unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from kserve.constants.constants import PredictorProtocol
from kserve.errors import ModelNotReady
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.rest.v2_datamodels import InferenceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .dataplane import INFERENCE_HEADER

INFER_PATH = re.compile(r"/v2/models/([^/]+)/infer")
_BINARY_HEADER = INFERENCE_HEADER.encode()
_DROPPED_HEADERS = ("content-length", "content-type")


class ClientGone(Exception):
    """The client disconnected before its body was read: nothing to answer."""


class FastInfer:
    """ASGI app: binary-extension infer calls answered directly, everything else passed to `app`.

    `handlers` is the full app's `exception_handlers` (looked up when an error happens, so handlers
    added later count too)."""

    def __init__(self, app: ASGIApp, dataplane: DataPlane, handlers: dict[Any, Callable[..., Any]]) -> None:
        self.app = app
        self.dataplane = dataplane
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = INFER_PATH.fullmatch(scope["path"]) if scope["type"] == "http" else None
        if match is None or scope["method"] != "POST" or not _has_binary_header(scope):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        try:
            body = await _read_body(receive)
            response = await self._infer(match.group(1), body, headers)
        except ClientGone:
            return
        except Exception as exc:
            await self._answer_error(exc, scope, receive, send)
            return
        await response(scope, receive, send)

    async def _infer(self, model_name: str, body: bytes, headers: dict[str, str]) -> Response:
        # The steps of kserve.protocol.rest.v2_endpoints.V2Endpoints.infer (kserve==0.21.0).
        dp = self.dataplane
        if not await dp.model_ready(model_name, True):
            raise ModelNotReady(model_name)
        request, _ = dp.decode(body, headers, PredictorProtocol.REST_V2.value, model_name)
        result, response_headers = await dp.infer(model_name=model_name, request=request, headers=headers)
        result, more_headers = dp.encode(
            model_name=model_name, response=result, headers=headers, req_attributes={}
        )
        response_headers.update(more_headers)
        for name in _DROPPED_HEADERS:
            response_headers.pop(name, None)
        if isinstance(result, bytes):
            return Response(result, headers=response_headers)
        # What KServe's default response class (ORJSONResponse) renders for the endpoint's model.
        content = jsonable_encoder(InferenceResponse.model_validate(result))
        body = orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        return Response(body, headers=response_headers, media_type="application/json")

    async def _answer_error(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        handler = next(
            (self.handlers[c] for c in type(exc).__mro__ if c is not Exception and c in self.handlers), None
        )
        if handler is not None:
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)
            return
        fallback = self.handlers.get(Exception)
        if fallback is not None:
            await (await fallback(Request(scope, receive), exc))(scope, receive, send)
        raise exc


def _headers(scope: Scope) -> dict[str, str]:
    # As `dict(starlette.requests.Request.headers)`, which KServe's endpoint passes on: a repeated
    # header keeps its first value.
    headers: dict[str, str] = {}
    for key, value in scope["headers"]:
        headers.setdefault(key.decode("latin-1"), value.decode("latin-1"))
    return headers


def _has_binary_header(scope: Scope) -> bool:
    return any(k == _BINARY_HEADER for k, _ in scope["headers"])


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def install(app: FastAPI, dataplane: DataPlane) -> None:
    """Put `FastInfer` outermost in `app`'s middleware stack (inside FastAPI's own telemetry wrapper)."""
    build = app.build_middleware_stack

    def build_with_fast_infer() -> ASGIApp:
        return FastInfer(build(), dataplane, app.exception_handlers)

    app.build_middleware_stack = build_with_fast_infer  # type: ignore[method-assign]
