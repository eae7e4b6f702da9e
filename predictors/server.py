"""Start one CLIP predictor: read settings, load and warm up the model, serve REST and gRPC.

Quiet by default: one log line at start (model, device, engine and precision, batching, ports), after
the lines of what was decided at load (the engine trial, the thread probe, a conversion), then warnings
and errors only. `--enable_latency_logging true` adds KServe's per-request timing and access lines;
`--log_config_file` replaces the whole logging configuration.

Liveness (`GET /v2/health/live`, which the chart's liveness and startup probes use, and KServe's `GET /`)
answers 503 `{"live": false, "error": <why>}` while forward passes are wedged (see
`predictors.liveness`, `--stall_timeout_s`), so Kubernetes restarts the pod; a busy predictor stays live.
gRPC `ServerLive` then fails with UNAVAILABLE.

Besides KServe's v2 routes, `GET /v2/models/{name}/config` answers a Triton-style model configuration
whose `parameters` hold `arch`, `pretrained`, `embed_dim`, `logit_scale`, the device, the engine, its
kernels and precision and the trial that chose them (`predictors.engines`), threads and limits
(`tritonclient.http.InferenceServerClient.get_model_config(name)` reads it).

Infer calls with the binary tensor extension (the gateway's) take a shorter road past FastAPI's
middlewares and routing (`predictors.fastinfer`), unless `--enable_latency_logging` or
`--access_log_format` asks for those middlewares' per-request output.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import logging.config
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from kserve import logging as kserve_logging
from kserve import model_server
from kserve.errors import InvalidInput, ModelNotFound

from . import fastinfer
from .admission import Overloaded
from .dataplane import ClipDataPlane, Wedged
from .loaded import ModelLoadError
from .memory import keep_freed_memory
from .model import ClipModel
from .settings import Kind, Settings, read_settings

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]; asyncio serves without it
    uvloop = None  # type: ignore[assignment]

logger = logging.getLogger("predictors")


class ClientErrorFilter(logging.Filter):
    """Drops KServe's ERROR-with-traceback records for bad requests: the client gets the 400 instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InvalidInput))


def configure_logging(settings: Settings) -> None:
    if settings.log_config_file:
        kserve_logging.configure_logging(settings.log_config_file)
        return
    config = copy.deepcopy(kserve_logging.KSERVE_LOG_CONFIG)
    per_request = "INFO" if settings.enable_latency_logging else "WARNING"
    loggers = config["loggers"]
    loggers["kserve"]["level"] = "WARNING"
    loggers["kserve.trace"]["level"] = per_request
    loggers["uvicorn"]["level"] = "WARNING"
    loggers["uvicorn.error"]["level"] = "WARNING"
    loggers["uvicorn.access"]["level"] = per_request
    loggers["predictors"] = {"handlers": ["kserve"], "level": "INFO", "propagate": False}
    config["root"] = {"handlers": ["kserve"], "level": "WARNING"}
    config["filters"] = {"client_errors": {"()": ClientErrorFilter}}
    config["handlers"]["kserve"]["filters"] = ["client_errors"]
    logging.config.dictConfig(config)
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")


class ClipModelServer(model_server.ModelServer):
    """KServe's `ModelServer` with `ClipDataPlane`, the model config route and the binary infer fast path."""

    def __init__(self, model: ClipModel[Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataplane = ClipDataPlane(model_registry=self.registered_models, stall=model.stall)
        _add_config_route(model_server.app, model)
        if not (self.enable_latency_logging or self.access_log_format):
            # Both ask for per-request output from KServe's middlewares, which the fast path skips.
            fastinfer.install(model_server.app, self.dataplane)
        model_server.app.add_exception_handler(Overloaded, _overloaded)
        model_server.app.add_exception_handler(Wedged, _wedged)
        model_server.app.add_exception_handler(RequestValidationError, _malformed)

    async def _serve(self) -> None:
        # KServe's setup_event_loop() configures the loop that is current before its asyncio.run(), not
        # the one asyncio.run() makes: the exception handler and `--max_asyncio_workers` go on this one.
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(self._custom_exception_handler or self.default_exception_handler)
        loop.set_default_executor(ThreadPoolExecutor(max_workers=self.max_asyncio_workers))
        await super()._serve()


async def _overloaded(request: Request, exc: Exception) -> JSONResponse:
    # A handled 503 keeps the keep-alive connection (KServe's generic handler would drop it).
    assert isinstance(exc, Overloaded)
    return JSONResponse({"error": exc.message}, 503, headers={"retry-after": str(exc.retry_after_s)})


async def _wedged(request: Request, exc: Exception) -> JSONResponse:
    # Logged once when the stall begins (ClipModel.stall), not on every probe as KServe's handler would.
    return JSONResponse({"live": False, "error": str(exc)}, 503)


async def _malformed(request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's default 422 echoes the whole offending body back; name the places, not the content.
    assert isinstance(exc, RequestValidationError)
    where = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
    )
    return JSONResponse({"error": f"malformed v2 inference request: {where}"}, 422)


def _add_config_route(app: FastAPI, model: ClipModel[Any]) -> None:
    async def model_config(model_name: str) -> dict[str, Any]:
        if model_name != model.name:
            raise ModelNotFound(model_name)
        return model.config()

    app.add_api_route("/v2/models/{model_name}/config", model_config, methods=["GET"], tags=["V2"])


def _fail(message: str) -> None:
    logger.error(message)
    sys.exit(1)


def use_event_loop(choice: str) -> str:
    """Make `--event-loop` the loop KServe serves on, and name it.

    KServe's `ModelServer.start` serves under `asyncio.run()` with the default policy, so its flag
    never reaches the serving loop; the policy set here does (auto: uvloop when installed, as uvicorn
    reads it). A current loop keeps KServe's `setup_event_loop()` from failing under uvloop's policy.
    """
    if choice == "asyncio" or uvloop is None:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())
    return "uvloop"


def run(kind: Kind, model_cls: type[ClipModel[Any]]) -> None:
    """Entry point of `python -m predictors.<kind>`."""
    settings = read_settings(kind)
    configure_logging(settings)
    if settings.workers != 1:
        _fail("--workers must be 1: batching needs one process per model; scale with replicas instead")
    keep_freed_memory()
    model = model_cls(settings)
    try:
        model.load()
    except ModelLoadError as e:
        _fail(f"cannot serve {settings.model_name}: {e}")
        return
    loaded = model.loaded
    if loaded.pretrained == "none":
        logger.warning("--pretrained none: serving RANDOM weights, useful only to measure compute cost")
    event_loop = use_event_loop(settings.event_loop)
    logger.info(
        "serving %s: arch=%s pretrained=%s embed_dim=%d on %s with %s (by %s), batches up to %d items "
        "within %g ms, up to %d forward pass(es) at once on %d threads (%d each when they overlap; "
        "threads from %s), at most %d items held, stall bound %g s, HTTP :%d gRPC :%s on %s",
        settings.model_name, loaded.arch, loaded.pretrained, loaded.embed_dim, loaded.device,
        model.tower.choice, model.trial.how, settings.max_batch_size, settings.max_batch_delay_ms,
        model.threads.workers, model.threads.total, model.threads.shared, model.threads.source,
        settings.max_queue_items, settings.stall_timeout_s, settings.http_port,
        settings.grpc_port if settings.enable_grpc else "off", event_loop,
    )  # fmt: skip
    server = ClipModelServer(
        model,
        http_port=settings.http_port,
        grpc_port=settings.grpc_port,
        workers=1,
        max_threads=settings.max_threads,
        max_asyncio_workers=settings.max_asyncio_workers,
        enable_grpc=settings.enable_grpc,
        enable_docs_url=settings.enable_docs_url,
        enable_latency_logging=settings.enable_latency_logging,
        access_log_format=settings.access_log_format,
        event_loop=settings.event_loop,
        timeout_keep_alive=settings.timeout_keep_alive,
        # SIGTERM: REST stops accepting and drains (uvicorn), then gRPC does; each within the grace.
        grace_period=settings.shutdown_grace_s,
    )
    server.start([model])
