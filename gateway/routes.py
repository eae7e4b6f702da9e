"""The gateway's endpoints."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway.admission import admitted
from gateway.auth import require_api_key
from gateway.errors import PredictorError
from gateway.inputs import read_inputs
from gateway.requestid import request_id
from gateway.schemas import (
    CompareResponse,
    EmbedResponse,
    EmbedTextResponse,
    ErrorBody,
    Ready,
    errors,
    request_body,
)
from gateway.services import Services
from gateway.similarity import cosine, zero_shot
from gateway.timings import Timings
from gateway.v2wire import InferResult

PREDICTOR_ERRORS = (502, 503, 504)

# Every API endpoint checks the API key (a dependency), then holds a slot of the concurrency bound
# (`with admitted(request)`) while it works.
api = APIRouter(dependencies=[Depends(require_api_key)])
ops = APIRouter()


@api.post(
    "/compare/",
    summary="How well an image (or each of several) matches one or several texts",
    response_model=CompareResponse,
    responses=errors(400, 401, 413, 415, 422, *PREDICTOR_ERRORS),
    openapi_extra=request_body("image", "text"),
)
async def compare(request: Request) -> Response:
    with admitted(request):
        svc = Services.of(request)
        inputs = await read_inputs(request, svc.limits, image=True, text=True, fetch=svc.fetch_images)
        assert inputs.images is not None and inputs.texts is not None
        rid, timings = request_id(request), Timings()
        images = inputs.images
        try:
            async with asyncio.TaskGroup() as group:  # both at once; the first failure cancels the other
                image_call = group.create_task(timings.time("image", svc.images.fetch(images, rid)))
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
        results = [_comparison(row, texts, inputs.many) for row in image.rows]
        content = {"results": results} if inputs.many_images else results[0]
        return JSONResponse(content, headers=timings.header())


def _comparison(image: list[float], texts: InferResult, many: bool) -> dict[str, Any]:
    """What `/compare/` answers for one image: one similarity, or similarities and probabilities."""
    sims = [cosine(image, row) for row in texts.rows]
    if not many:
        return {"similarity": sims[0]}
    scale = texts.parameters.get("logit_scale")
    if not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
        raise PredictorError(
            "text", "bad_response", 502, "the text predictor did not report a usable logit_scale"
        )
    return {"similarities": sims, "probabilities": zero_shot(sims, float(scale))}


@api.post(
    "/embed/",
    summary="The CLIP embedding of one image, or of each of several",
    response_model=EmbedResponse,
    responses=errors(400, 401, 413, 415, 422, *PREDICTOR_ERRORS),
    openapi_extra=request_body("image"),
)
async def embed(request: Request) -> Response:
    with admitted(request):
        svc = Services.of(request)
        inputs = await read_inputs(request, svc.limits, image=True, text=False, fetch=svc.fetch_images)
        assert inputs.images is not None
        rid, timings = request_id(request), Timings()
        image = await timings.time("image", svc.images.fetch(inputs.images, rid))
        content = {"embeddings": image.rows} if inputs.many_images else {"embedding": image.rows[0]}
        return JSONResponse(content, headers=timings.header())


@api.post(
    "/embed_text/",
    summary="The CLIP embedding of one text, or of each of several",
    response_model=EmbedTextResponse,
    responses=errors(400, 401, 413, 415, 422, *PREDICTOR_ERRORS),
    openapi_extra=request_body("text", form_urlencoded=True),
)
async def embed_text(request: Request) -> Response:
    with admitted(request):
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
