"""The gateway's ASGI app: `create_app(settings)`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from gateway.admission import ConcurrencyLimit
from gateway.auth import ApiKeys
from gateway.errors import GatewayError, PredictorError
from gateway.errorshape import error_body
from gateway.imagefetch import ImageFetcher
from gateway.metrics import Metrics, MetricsMiddleware
from gateway.requestid import RequestIdMiddleware, current
from gateway.routes import api, ops
from gateway.services import Services
from gateway.settings import Settings
from gateway.v1routes import v1

log = logging.getLogger("gateway")


def create_app(
    settings: Settings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    image_fetcher: ImageFetcher | None = None,
) -> FastAPI:
    """The gateway app; `transport` replaces the network to the predictors and `image_fetcher` the one
    to image URLs (tests)."""
    settings = settings or Settings()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = Services.start(settings, metrics, transport, image_fetcher)
        try:
            yield
        finally:
            await app.state.services.aclose()

    app = FastAPI(
        title="clip-similarity gateway",
        summary="How well an image and a text match, with CLIP.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.api_keys = ApiKeys(settings.gateway_api_keys)
    app.state.concurrency = ConcurrencyLimit(settings.gateway_max_concurrency, metrics)
    app.include_router(api)
    app.include_router(v1)
    app.include_router(ops)
    # The API routes' request series start at 0 for 200 and each 5xx they answer: 500 (unexpected)
    # and the predictor errors they declare.
    metrics.declare_routes(
        (method, route.path, [500, *(int(code) for code in route.responses if int(code) >= 500)])
        for route in [*api.routes, *v1.routes]
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    )
    app.add_exception_handler(GatewayError, _gateway_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.add_middleware(RequestIdMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app


async def _gateway_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GatewayError)
    if exc.status >= 500 or isinstance(exc, PredictorError):
        log.warning(
            "%s %s -> %d: %s (request_id=%s)",
            request.method,
            request.url.path,
            exc.status,
            exc.message,
            current.get(),
        )
    return JSONResponse(
        error_body(request, exc.status, exc.message, exc.param, exc.code), exc.status, headers=exc.headers
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    message = str(exc.detail)
    if exc.status_code == 404:
        message = f"no endpoint at {request.url.path} (the API is described at /docs)"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return JSONResponse(error_body(request, exc.status_code, message), exc.status_code, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return JSONResponse(error_body(request, 422, problems), 422)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # Runs outside the request-id middleware (Starlette's outermost layer); the scope still has the id.
    request_id = str(getattr(request.state, "request_id", "-"))
    log.error(
        "unexpected %s on %s %s (request_id=%s)",
        type(exc).__name__,
        request.method,
        request.url.path,
        request_id,
    )
    message = f"internal error; quote request id {request_id}"
    return JSONResponse(error_body(request, 500, message), 500, headers={"x-request-id": request_id})
