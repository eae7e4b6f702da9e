"""The gateway's endpoints."""

from __future__ import annotations

import asyncio
import math

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import v2wire
from gateway.admission import limit_concurrency
from gateway.auth import require_api_key
from gateway.errors import PredictorError
from gateway.inputs import read_inputs
from gateway.requestid import request_id
from gateway.schemas import (
    CompareResponse,
    Embedding,
    EmbedTextResponse,
    ErrorBody,
    Ready,
    errors,
    request_body,
)
from gateway.services import Services
from gateway.similarity import cosine, zero_shot
from gateway.timings import Timings

PREDICTOR_ERRORS = (502, 503, 504)

api = APIRouter(dependencies=[Depends(require_api_key), Depends(limit_concurrency)])
ops = APIRouter()


@api.post(
    "/compare/",
    summary="How well an image matches one or several texts",
    response_model=CompareResponse,
    responses=errors(400, 401, 413, 415, 422, *PREDICTOR_ERRORS),
    openapi_extra=request_body("image", "text"),
)
async def compare(request: Request) -> Response:
    svc = Services.of(request)
    inputs = await read_inputs(request, svc.limits, image=True, text=True)
    assert inputs.image is not None and inputs.texts is not None
    rid, timings = request_id(request), Timings()
    image_body = v2wire.image_request(inputs.image, rid)  # one copy of the file: no thread hop needed
    try:
        async with asyncio.TaskGroup() as group:  # both at once; the first failure cancels the other
            image_call = group.create_task(
                timings.time("image", svc.image_predictor.infer(image_body, 1, rid))
            )
            text_call = group.create_task(svc.text_encoder.embed(inputs.texts, rid, image_call, timings))
    except BaseExceptionGroup as group_error:
        raise group_error.exceptions[0] from None
    image, texts = image_call.result(), text_call.result()
    if len(image.rows[0]) != len(texts.rows[0]):
        raise PredictorError(
            "text",
            "bad_response",
            502,
            f"the predictors serve different models: image embeddings have {len(image.rows[0])} "
            f"dimensions, text embeddings {len(texts.rows[0])}",
        )
    sims = [cosine(image.rows[0], row) for row in texts.rows]
    if not inputs.many:
        return JSONResponse({"similarity": sims[0]}, headers=timings.header())
    scale = texts.parameters.get("logit_scale")
    if not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
        raise PredictorError(
            "text", "bad_response", 502, "the text predictor did not report a usable logit_scale"
        )
    return JSONResponse(
        {"similarities": sims, "probabilities": zero_shot(sims, float(scale))}, headers=timings.header()
    )


@api.post(
    "/embed/",
    summary="The image's CLIP embedding",
    response_model=Embedding,
    responses=errors(400, 401, 413, 415, 422, *PREDICTOR_ERRORS),
    openapi_extra=request_body("image"),
)
async def embed(request: Request) -> Response:
    svc = Services.of(request)
    inputs = await read_inputs(request, svc.limits, image=True, text=False)
    assert inputs.image is not None
    rid, timings = request_id(request), Timings()
    body = v2wire.image_request(inputs.image, rid)
    image = await timings.time("image", svc.image_predictor.infer(body, 1, rid))
    return JSONResponse({"embedding": image.rows[0]}, headers=timings.header())


@api.post(
    "/embed_text/",
    summary="The CLIP embedding of one text, or of each of several",
    response_model=EmbedTextResponse,
    responses=errors(400, 401, 413, 415, 422, *PREDICTOR_ERRORS),
    openapi_extra=request_body("text", form_urlencoded=True),
)
async def embed_text(request: Request) -> Response:
    svc = Services.of(request)
    inputs = await read_inputs(request, svc.limits, image=False, text=True)
    assert inputs.texts is not None
    rid, timings = request_id(request), Timings()
    # No image call: the texts go alone, at once, past the cache (`TextEncoder` says why).
    texts = await svc.text_encoder.embed(inputs.texts, rid, timings=timings)
    content = {"embeddings": texts.rows} if inputs.many else {"embedding": texts.rows[0]}
    return JSONResponse(content, headers=timings.header())


@ops.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@ops.get(
    "/readyz",
    summary="Both predictors report their model ready",
    response_model=Ready,
    responses={503: {"model": ErrorBody, "description": "A predictor is not ready."}},
)
async def readyz(request: Request) -> Response:
    reasons = await Services.of(request).readiness.check()
    states = {name: reason or "ready" for name, reason in reasons.items()}
    not_ready = [f"{name} predictor {reason}" for name, reason in reasons.items() if reason]
    if not_ready:
        return JSONResponse({"error": "; ".join(not_ready), "ready": False, "predictors": states}, 503)
    return JSONResponse({"ready": True, "predictors": states})


@ops.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    data = generate_latest(Services.of(request).metrics.registry)
    return Response(data, media_type=CONTENT_TYPE_LATEST)
