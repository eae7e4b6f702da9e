"""The OpenAI-compatible API: `POST /v1/embeddings` (texts and images) and `GET /v1/models`.

OpenAI's SDK, LangChain's `OpenAIEmbeddings` and LlamaIndex's OpenAI embeddings work against it
unchanged (base URL `http://gateway/v1`). Errors here use OpenAI's shape (`gateway.errorshape`).
"""

from __future__ import annotations

import asyncio
import base64
import sys
from array import array
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from gateway import v2wire
from gateway.admission import admitted
from gateway.auth import require_api_key
from gateway.errors import BadInput, NotFound, PredictorError
from gateway.modelinfo import Model
from gateway.requestid import request_id
from gateway.schemas import EMBEDDINGS_BODY, EmbeddingsResponse, ModelList, ModelObject, openai_errors
from gateway.services import Services
from gateway.timings import Timings
from gateway.v1inputs import read_embeddings_request
from gateway.v2wire import InferResult, MalformedResponse

v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)], tags=["OpenAI-compatible"])


@v1.post(
    "/embeddings",
    summary="OpenAI-style embeddings of texts and images (data: URIs), in input order",
    response_model=EmbeddingsResponse,
    responses=openai_errors(400, 401, 404, 413, 415, 422, 502, 503, 504),
    openapi_extra=EMBEDDINGS_BODY,
)
async def embeddings(request: Request) -> Response:
    with admitted(request):
        svc = Services.of(request)
        body = await read_embeddings_request(request, svc.limits, svc.fetch_images is not None)
        served = await svc.model_info.model()
        if body.model != served.id:
            raise _model_not_found(body.model, served)
        if (
            body.dimensions is not None
            and served.embed_dim is not None
            and body.dimensions != served.embed_dim
        ):
            error = BadInput(
                f"model {served.id!r} gives {served.embed_dim} dimensions, not {body.dimensions}"
            )
            error.param = "dimensions"
            raise error
        images: list[bytes] = [s for s in body.images if isinstance(s, bytes)]
        if len(images) < len(body.images):
            assert svc.fetch_images is not None
            images = await svc.fetch_images(body.images, body.image_labels())
        rid, timings = request_id(request), Timings()
        try:
            async with asyncio.TaskGroup() as group:  # both at once; the first failure cancels the other
                image_call = (
                    group.create_task(timings.time("image", svc.images.fetch(images, rid)))
                    if images
                    else None
                )
                text_call = (
                    group.create_task(
                        svc.text_encoder.embed(body.texts, rid, timings=timings, token_counts=True)
                    )
                    if body.texts
                    else None
                )
        except BaseExceptionGroup as group_error:
            raise group_error.exceptions[0] from None
        rows: list[list[float]] = [[] for _ in range(body.size)]
        tokens = 0
        if image_call is not None:
            for at, row in zip(body.image_at, image_call.result().rows, strict=True):
                rows[at] = row
        if text_call is not None:
            texts = text_call.result()
            tokens = sum(_token_counts(texts))
            for at, row in zip(body.text_at, texts.rows, strict=True):
                rows[at] = row
        data = [
            {"object": "embedding", "index": i, "embedding": _encoded(row) if body.base64 else row}
            for i, row in enumerate(rows)
        ]
        content = {
            "object": "list",
            "data": data,
            "model": served.id,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return JSONResponse(content, headers=timings.header())


@v1.get(
    "/models", summary="The served model", response_model=ModelList, responses=openai_errors(401, 502, 503)
)
async def models(request: Request) -> dict[str, Any]:
    svc = Services.of(request)
    return {"object": "list", "data": [_model_object(await svc.model_info.model(), svc.model_info.created)]}


@v1.get(
    "/models/{model_id:path}",
    summary="One model, by id",
    response_model=ModelObject,
    responses=openai_errors(401, 404, 502, 503),
)
async def model(request: Request, model_id: str) -> dict[str, Any]:
    svc = Services.of(request)
    served = await svc.model_info.model()
    if model_id != served.id:
        raise _model_not_found(model_id, served)
    return _model_object(served, svc.model_info.created)


def _model_object(served: Model, created: int) -> dict[str, Any]:
    return {"id": served.id, "object": "model", "created": created, "owned_by": "clip-similarity"}


def _model_not_found(name: str, served: Model) -> NotFound:
    error = NotFound(f"the model {name!r} does not exist: this gateway serves {served.id!r} (GET /v1/models)")
    error.param, error.code = "model", "model_not_found"
    return error


def _token_counts(texts: InferResult) -> list[int]:
    try:
        return v2wire.token_counts(texts)
    except MalformedResponse as exc:
        raise PredictorError(
            "text", "bad_response", 502, f"the text predictor sent a bad response: {exc}"
        ) from exc


def _encoded(row: list[float]) -> str:
    """The embedding as base64 of little-endian float32, which OpenAI's SDK decodes."""
    values = array("f", row)
    if sys.byteorder == "big":
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode()
