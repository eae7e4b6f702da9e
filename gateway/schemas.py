"""Request and response shapes, for the OpenAPI schema (/docs) and for clients that read it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, RootModel


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, for a person.", examples=["invalid API key"])


class Similarity(BaseModel):
    similarity: float = Field(description="Cosine similarity of the image and the text, in [-1, 1].")


class Similarities(BaseModel):
    similarities: list[float] = Field(description="Cosine similarity to each text, in input order.")
    probabilities: list[float] = Field(description="softmax(logit_scale · similarities): CLIP zero-shot.")


class Results(BaseModel):
    results: list[Similarity | Similarities] = Field(
        description="For each image, in input order, what /compare/ answers for that image alone."
    )


class CompareResponse(RootModel[Similarity | Similarities | Results]):
    """One text gives `similarity`; a list of texts gives `similarities` and `probabilities`; several
    images (a list, or a repeated field) give `results`, one such answer per image."""


class Embedding(BaseModel):
    embedding: list[float] = Field(description="L2-normalised embedding.")


class Embeddings(BaseModel):
    embeddings: list[list[float]] = Field(description="One L2-normalised embedding per input, in order.")


class EmbedResponse(RootModel[Embedding | Embeddings]):
    """One image gives `embedding`; several images (a list, or a repeated field) give `embeddings`."""


class EmbedTextResponse(RootModel[Embedding | Embeddings]):
    """One text gives `embedding`; a list of texts gives `embeddings`."""


class Ready(BaseModel):
    ready: bool
    predictors: dict[str, str] = Field(description="'ready' or why not, per predictor.")


_ONE_IMAGE = {"type": "string", "minLength": 1}
_IMAGE_JSON = {
    "anyOf": [_ONE_IMAGE, {"type": "array", "items": _ONE_IMAGE, "minItems": 1}],
    "description": "The image file as base64 or a data: URI (or an http(s) URL when GATEWAY_IMAGE_URLS "
    "is on); a list of them for several images (at most GATEWAY_MAX_IMAGES).",
}
_IMAGE_FILE = {
    "type": "array",
    "items": {"type": "string", "format": "binary"},
    "minItems": 1,
    "description": "The image file (JPEG, PNG, WebP, ...); repeat the field for several images.",
}
_ONE_TEXT = {"type": "string", "minLength": 1, "pattern": r"\S"}  # not empty, not only spaces
_TEXT_JSON = {
    "anyOf": [_ONE_TEXT, {"type": "array", "items": _ONE_TEXT, "minItems": 1}],
    "description": "One text, or a list of texts.",
}
_TEXT_FORM = {
    "type": "array",
    "items": _ONE_TEXT,
    "minItems": 1,
    "description": "One text; repeat the field for several.",
}


def request_body(*fields: str, form_urlencoded: bool = False) -> dict[str, Any]:
    """`openapi_extra` declaring the multipart and JSON bodies an endpoint reads by hand."""

    def schema(props: dict[str, Any]) -> dict[str, Any]:
        return {"type": "object", "required": list(fields), "properties": {f: props[f] for f in fields}}

    content: dict[str, Any] = {
        "multipart/form-data": {"schema": schema({"image": _IMAGE_FILE, "text": _TEXT_FORM})},
        "application/json": {"schema": schema({"image": _IMAGE_JSON, "text": _TEXT_JSON})},
    }
    if form_urlencoded:
        content["application/x-www-form-urlencoded"] = {"schema": schema({"text": _TEXT_FORM})}
    return {"requestBody": {"required": True, "content": content}}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses` entries for the error codes an endpoint can answer."""
    meaning = {
        400: "Bad input: undecodable image, empty text, too many texts, a bad or refused image URL, "
        "or rejected by a predictor.",
        401: "API keys are configured and the request has none or a wrong one.",
        413: "Body or image over GATEWAY_MAX_IMAGE_BYTES, image over GATEWAY_MAX_IMAGE_PIXELS, "
        "or more images than GATEWAY_MAX_IMAGES.",
        415: "Unsupported content type or image format.",
        422: "A required field is missing or has the wrong type.",
        502: "A predictor answered with an error, or fetching an image URL failed.",
        503: "A predictor is unreachable or not ready.",
        504: "A predictor did not answer within PREDICTOR_TIMEOUT_S, or an image URL in time.",
    }
    return {code: {"model": ErrorBody, "description": meaning[code]} for code in codes}


class OpenAIErrorDetail(BaseModel):
    message: str = Field(description="What went wrong, for a person.")
    type: str = Field(description="invalid_request_error, authentication_error or server_error.")
    param: str | None = Field(description="The request field at fault, if one is.")
    code: str | None = Field(description="A machine-readable reason, e.g. model_not_found.")


class OpenAIError(BaseModel):
    """OpenAI's error shape, used on /v1/* so OpenAI's SDKs raise their typed errors."""

    error: OpenAIErrorDetail


class EmbeddingObject(BaseModel):
    object: str = Field(examples=["embedding"])
    index: int = Field(description="The item's place in `input`.")
    embedding: list[float] | str = Field(
        description="L2-normalised; with encoding_format=base64, little-endian float32 bytes in base64."
    )


class Usage(BaseModel):
    prompt_tokens: int = Field(description="Tokens the text model read (start and end tokens included).")
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    object: str = Field(examples=["list"])
    data: list[EmbeddingObject]
    model: str = Field(examples=["ViT-B-32/laion2b_s34b_b79k"])
    usage: Usage

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "object": "list",
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.0132, -0.0871, 0.0412]}],
                    "model": "ViT-B-32/laion2b_s34b_b79k",
                    "usage": {"prompt_tokens": 5, "total_tokens": 5},
                }
            ]
        }
    }


class ModelObject(BaseModel):
    id: str = Field(description="The architecture and the weights.", examples=["ViT-B-32/laion2b_s34b_b79k"])
    object: str = Field(examples=["model"])
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: str = Field(examples=["list"])
    data: list[ModelObject]


_V1_INPUT = {"type": "string", "minLength": 1}
EMBEDDINGS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "input"],
                    "properties": {
                        "model": {"type": "string", "description": "The id GET /v1/models lists."},
                        "input": {
                            "anyOf": [_V1_INPUT, {"type": "array", "items": _V1_INPUT, "minItems": 1}],
                            "description": "Texts, and images as data:image/...;base64, URIs (or, with "
                            "modality=image, base64 or URLs when GATEWAY_IMAGE_URLS is on).",
                        },
                        "encoding_format": {
                            "type": "string",
                            "enum": ["float", "base64"],
                            "default": "float",
                        },
                        "modality": {
                            "type": "string",
                            "enum": ["text", "image"],
                            "description": "Treat every item as this; without it data:image URIs are images.",
                        },
                        "dimensions": {"type": "integer", "description": "Must equal the model's, if given."},
                        "user": {"type": "string", "description": "Accepted and ignored."},
                    },
                },
                "examples": {
                    "texts": {"value": {"model": "ViT-B-32/laion2b_s34b_b79k", "input": ["a cat", "a dog"]}},
                    "text and image": {
                        "value": {
                            "model": "ViT-B-32/laion2b_s34b_b79k",
                            "input": ["a cat", "data:image/png;base64,iVBORw0KGgo..."],
                            "encoding_format": "base64",
                        }
                    },
                },
            }
        },
    }
}


def openai_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses` entries for the error codes a /v1 endpoint can answer, in OpenAI's shape."""
    meaning = {
        404: "No such model (the body's `model` is not the id GET /v1/models lists).",
        **{
            code: entry["description"]
            for code, entry in errors(400, 401, 413, 415, 422, 502, 503, 504).items()
        },
    }
    return {code: {"model": OpenAIError, "description": meaning[code]} for code in codes}
