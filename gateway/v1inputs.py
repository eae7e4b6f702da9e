"""Read and check an OpenAI-style embeddings request (`POST /v1/embeddings`) before any predictor call.

`input` is a string or a list of strings. Without `modality`, an item that is a `data:image/...;base64,`
URI is an image and every other item a text (Infinity's and vLLM's convention); `modality: "image"`
makes every item an image (base64, a data: URI, or a URL when GATEWAY_IMAGE_URLS is on), `"text"`
every item a text. Texts and images obey the limits of the other endpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from gateway import cpu
from gateway.body import capped
from gateway.errors import BadInput, GatewayError, MissingField, UnsupportedMediaType
from gateway.imagefields import check_count, decode_base64, is_url, named
from gateway.inputs import Limits, json_object
from gateway.uploads import check_image

ENCODINGS = ("float", "base64")
MODALITIES = ("text", "image")


@dataclass(frozen=True)
class EmbeddingsRequest:
    """A checked request: the texts and the images (files, or URLs still to fetch), each with its
    position in `input`."""

    model: str
    base64: bool
    dimensions: int | None
    size: int
    texts: list[str]
    text_at: list[int]
    images: list[bytes | str]
    image_at: list[int]

    def image_labels(self) -> list[str | None]:
        """How an error names each image: by its place in `input`."""
        return [f"input[{i}]" for i in self.image_at]


async def read_embeddings_request(request: Request, limits: Limits, urls: bool) -> EmbeddingsRequest:
    """Read the JSON body (within the body cap of the other endpoints) and check every field."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"unsupported content type {media_type or '(none)'!r}: send application/json"
        )
    raw = await capped(request, limits.body_limit(image=True, text=True), "embedding inputs").body()
    return await cpu.run(len(raw), _parse, raw, limits, urls)


def _parse(raw: bytes, limits: Limits, urls: bool) -> EmbeddingsRequest:
    payload = json_object(raw)
    model = _field(payload, "model", str, "the model's id (GET /v1/models lists it)")
    value = _field(payload, "input", (str, list), "a string or a list of strings")
    encoding = payload.get("encoding_format") or "float"
    modality = payload.get("modality")
    dimensions = payload.get("dimensions")
    if encoding not in ENCODINGS:
        raise _at(
            BadInput(f"encoding_format must be 'float' or 'base64', got {encoding!r}"), "encoding_format"
        )
    if modality is not None and modality not in MODALITIES:
        raise _at(BadInput(f"modality must be 'text' or 'image', got {modality!r}"), "modality")
    if dimensions is not None and (type(dimensions) is not int or dimensions <= 0):
        raise _at(BadInput(f"dimensions must be a positive integer, got {dimensions!r}"), "dimensions")
    items = [value] if isinstance(value, str) else value
    if not all(isinstance(item, str) for item in items):
        raise _at(
            MissingField(
                "input must be a string or a list of strings (token id arrays are not accepted: "
                "LangChain's OpenAIEmbeddings needs check_embedding_ctx_length=False)"
            ),
            "input",
        )
    if not items:
        raise _at(BadInput("input is an empty list: send at least one item"), "input")
    try:
        return _split(
            model, encoding == "base64", dimensions, items, isinstance(value, list), modality, limits, urls
        )
    except GatewayError as exc:
        raise _at(exc, "input") from None


def _split(
    model: str,
    b64: bool,
    dimensions: int | None,
    items: list[str],
    many: bool,
    modality: str | None,
    limits: Limits,
    urls: bool,
) -> EmbeddingsRequest:
    texts: list[str] = []
    text_at: list[int] = []
    images: list[bytes | str] = []
    image_at: list[int] = []
    for i, item in enumerate(items):
        label = f"input[{i}]" if many else "input"
        if modality == "image" or (modality is None and item[:11].lower() == "data:image/"):
            images.append(_image(item, label, limits, urls))
            image_at.append(i)
            continue
        if not item.strip():
            raise BadInput(f"{label} is empty")
        if len(item) > limits.max_text_chars:
            raise BadInput(f"{label} has {len(item)} characters, at most {limits.max_text_chars} are allowed")
        texts.append(item)
        text_at.append(i)
    if len(texts) > limits.max_texts:
        raise BadInput(f"{len(texts)} texts sent, at most {limits.max_texts} are allowed per request")
    check_count(len(images), limits.max_images)
    return EmbeddingsRequest(model, b64, dimensions, len(items), texts, text_at, images, image_at)


def _image(item: str, label: str, limits: Limits, urls: bool) -> bytes | str:
    if is_url(item):
        if not urls:
            raise BadInput(
                f"{label}: image URLs are not accepted by this gateway (GATEWAY_IMAGE_URLS is off): "
                "send the image as a data: URI"
            )
        return item
    data = named(label, decode_base64, item, limits.max_image_bytes)
    named(label, check_image, data, limits.max_image_bytes, limits.max_image_pixels)
    return data


def _field(payload: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if name not in payload:
        raise _at(MissingField(f"missing field '{name}': {what}"), name)
    if not isinstance(payload[name], kind):
        raise _at(MissingField(f"field '{name}' must be {what}"), name)
    return payload[name]


def _at(exc: GatewayError, param: str) -> GatewayError:
    """`exc`, naming the request field at fault (OpenAI's `param`)."""
    if exc.param is None:
        exc.param = param
    return exc
