"""Turn a multipart or JSON request into checked inputs, before any predictor is called."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

from gateway import cpu
from gateway.body import capped
from gateway.errors import BadInput, MissingField, TooLarge, UnsupportedMediaType
from gateway.imagefields import check_count, check_images, json_images, named
from gateway.settings import Settings
from gateway.uploads import check_image

# Headers, boundaries, JSON punctuation and a data: URI prefix; and per image, its part's headers.
BODY_SLACK = 64 * 1024
IMAGE_SLACK = 1024

# Fetches the image URLs among image sources (`gateway.imageurls`), an error naming the image by its
# label (None: the request's only image); None when GATEWAY_IMAGE_URLS is off.
FetchImages = Callable[[list[bytes | str], list[str | None]], Awaitable[list[bytes]]]


@dataclass(frozen=True)
class Limits:
    """The request limits from Settings, and the body caps they imply."""

    max_image_bytes: int
    max_image_pixels: int
    max_texts: int
    max_text_chars: int
    max_images: int = 1

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.gateway_max_image_bytes,
            settings.gateway_max_image_pixels,
            settings.gateway_max_texts,
            settings.gateway_max_text_chars,
            settings.gateway_max_images,
        )

    def body_limit(self, image: bool, text: bool) -> int:
        size = BODY_SLACK
        if image:  # each image as base64 in JSON
            size += self.max_images * ((self.max_image_bytes + 2) // 3 * 4 + IMAGE_SLACK)
        if text:
            # JSON may escape a character as up to 12 bytes (a \uXXXX surrogate pair).
            size += self.max_texts * (self.max_text_chars * 12 + 16)
        return size


@dataclass(frozen=True)
class Inputs:
    """Checked images (the original file bytes) and/or texts; `many` when texts came as a list (or a
    repeated field), `many_images` likewise for images."""

    images: list[bytes] | None = None
    texts: list[str] | None = None
    many: bool = False
    many_images: bool = False


def json_object(raw: bytes) -> dict[str, Any]:
    """A JSON body that must be an object; 400 (or 422 for another JSON value) saying what is wrong."""
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadInput("the JSON body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise MissingField("the JSON body must be an object")
    return payload


async def read_inputs(
    request: Request, limits: Limits, *, image: bool, text: bool, fetch: FetchImages | None = None
) -> Inputs:
    """Read and check the fields an endpoint needs: `image` (one file or several) and/or `text` (one
    or several). Image URLs in a JSON body are fetched with `fetch`, and refused without it."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    what = "an image and texts" if image and text else "an image" if image else "texts"
    body = capped(request, limits.body_limit(image, text), what)
    if media_type == "multipart/form-data" or (
        media_type == "application/x-www-form-urlencoded" and not image
    ):
        form = await _read_form(body, media_type, limits, image)
        try:
            return await _from_form(form, limits, image=image, text=text)
        finally:
            await form.close()
    if media_type == "application/json" or media_type.endswith("+json"):
        raw = await body.body()
        parsed, sources = await cpu.run(len(raw), _from_json, raw, limits, image, text, fetch is not None)
        if not any(isinstance(source, str) for source in sources):
            return parsed
        assert fetch is not None
        labels = [f"image[{i}]" if parsed.many_images else None for i in range(len(sources))]
        images = await fetch(sources, labels)  # each checked as it is fetched
        return Inputs(images, parsed.texts, parsed.many, parsed.many_images)
    accepted = "multipart/form-data or application/json"
    if not image:
        accepted += " or application/x-www-form-urlencoded"
    raise UnsupportedMediaType(f"unsupported content type {media_type or '(none)'!r}: send {accepted}")


async def _read_form(body: Request, media_type: str, limits: Limits, image: bool) -> FormData:
    # Starlette's form parsers are used directly (Request.form() cannot set max_part_size or the
    # spool size): an undocumented API, checked against starlette 1.10.0.
    max_fields, max_part_size = limits.max_texts + 4, limits.max_text_chars * 4 + 64
    try:
        if media_type != "multipart/form-data":
            return await FormParser(
                body.headers, body.stream(), max_fields=max_fields, max_part_size=max_part_size
            ).parse()
        parser = MultiPartParser(
            body.headers,
            body.stream(),
            max_files=limits.max_images if image else 0,
            max_fields=max_fields,
            max_part_size=max_part_size,
        )
        # The upload stays in memory (the body cap bounds it): no temporary files, so no disk needed.
        # `spool_max_size` is an undocumented class attribute, checked against starlette 1.10.0.
        parser.spool_max_size = limits.max_image_bytes + 1
        return await parser.parse()
    except MultiPartException as exc:
        if image and exc.message.startswith("Too many files"):
            raise TooLarge(
                f"more than {limits.max_images} images sent, at most {limits.max_images} are allowed "
                "per request (GATEWAY_MAX_IMAGES)"
            ) from None
        raise BadInput(
            f"invalid form body: {exc.message} (fields: {'image files, ' if image else ''}"
            f"up to {limits.max_texts} 'text' values)"
        ) from None


async def _from_form(form: FormData, limits: Limits, *, image: bool, text: bool) -> Inputs:
    images, many_images = None, False
    if image:
        uploads = form.getlist("image")
        if not uploads:
            raise MissingField("missing field 'image': send the image as a multipart file field")
        check_count(len(uploads), limits.max_images)
        many_images = len(uploads) > 1
        images = []
        for i, upload in enumerate(uploads):
            where = f"field 'image' (number {i})" if many_images else "field 'image'"
            if not isinstance(upload, UploadFile):
                raise MissingField(f"{where} must be a file upload, not a plain form value")
            if upload.size is not None and upload.size > limits.max_image_bytes:
                raise TooLarge(
                    f"{f'image[{i}]: ' if many_images else ''}the image is {upload.size} bytes, "
                    f"over the limit of {limits.max_image_bytes} bytes"
                )
            images.append(await upload.read())
        check_images(images, many_images, limits.max_image_bytes, limits.max_image_pixels)
    texts, many = None, False
    if text:
        values = form.getlist("text")
        if not values:
            raise MissingField("missing field 'text': send one or more 'text' form fields")
        if not all(isinstance(v, str) for v in values):
            raise MissingField("field 'text' must be a plain form value, not a file")
        texts, many = _check_texts([str(v) for v in values], limits), len(values) > 1
    return Inputs(images=images, texts=texts, many=many, many_images=many_images)


def _from_json(
    raw: bytes, limits: Limits, image: bool, text: bool, urls: bool
) -> tuple[Inputs, list[bytes | str]]:
    """The inputs, and the image sources: checked files, and URLs still to fetch (then `Inputs.images`
    is None)."""
    payload = json_object(raw)
    sources: list[bytes | str] = []
    images, many_images = None, False
    if image:
        if "image" not in payload:
            raise MissingField("missing field 'image': a base64 string or a data: URI, or a list of them")
        sources, many_images = json_images(payload["image"], limits.max_images, limits.max_image_bytes, urls)
        for i, source in enumerate(sources):
            if isinstance(source, bytes):
                label = f"image[{i}]" if many_images else None
                named(label, check_image, source, limits.max_image_bytes, limits.max_image_pixels)
        files = [source for source in sources if isinstance(source, bytes)]
        if len(files) == len(sources):
            images = files
    texts, many = None, False
    if text:
        if "text" not in payload:
            raise MissingField("missing field 'text': a string or a list of strings")
        value = payload["text"]
        if isinstance(value, str):
            texts = _check_texts([value], limits)
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            texts, many = _check_texts(value, limits), True
        else:
            raise MissingField("field 'text' must be a string or a list of strings")
    return Inputs(images=images, texts=texts, many=many, many_images=many_images), sources


def _check_texts(texts: list[str], limits: Limits) -> list[str]:
    if not texts:
        raise BadInput("field 'text' is an empty list: send at least one text")
    if len(texts) > limits.max_texts:
        raise BadInput(f"{len(texts)} texts sent, at most {limits.max_texts} are allowed per request")
    for i, t in enumerate(texts):
        where = "text" if len(texts) == 1 else f"text[{i}]"
        if not t.strip():
            raise BadInput(f"{where} is empty")
        if len(t) > limits.max_text_chars:
            raise BadInput(f"{where} has {len(t)} characters, at most {limits.max_text_chars} are allowed")
    return texts
