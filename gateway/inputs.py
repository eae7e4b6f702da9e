"""Turn a multipart or JSON request into checked inputs, before any predictor is called."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

from gateway import cpu
from gateway.body import capped
from gateway.errors import BadInput, MissingField, TooLarge, UnsupportedMediaType
from gateway.settings import Settings
from gateway.uploads import check_image

# Headers, boundaries, JSON punctuation and a data: URI prefix.
BODY_SLACK = 64 * 1024
_URLSAFE = str.maketrans("-_", "+/")


@dataclass(frozen=True)
class Limits:
    """The request limits from Settings, and the body caps they imply."""

    max_image_bytes: int
    max_image_pixels: int
    max_texts: int
    max_text_chars: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            settings.gateway_max_image_bytes,
            settings.gateway_max_image_pixels,
            settings.gateway_max_texts,
            settings.gateway_max_text_chars,
        )

    def body_limit(self, image: bool, text: bool) -> int:
        size = BODY_SLACK
        if image:
            size += (self.max_image_bytes + 2) // 3 * 4  # as base64 in JSON
        if text:
            # JSON may escape a character as up to 12 bytes (a \uXXXX surrogate pair).
            size += self.max_texts * (self.max_text_chars * 12 + 16)
        return size


@dataclass(frozen=True)
class Inputs:
    """A checked image (the original file bytes) and/or texts; `many` when texts came as a list."""

    image: bytes | None = None
    texts: list[str] | None = None
    many: bool = False


async def read_inputs(request: Request, limits: Limits, *, image: bool, text: bool) -> Inputs:
    """Read and check the fields an endpoint needs: `image` (a file) and/or `text` (one or several)."""
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
        return await cpu.run(len(raw), _from_json, raw, limits, image, text)
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
            max_files=1 if image else 0,
            max_fields=max_fields,
            max_part_size=max_part_size,
        )
        # The upload stays in memory (the body cap bounds it): no temporary files, so no disk needed.
        # `spool_max_size` is an undocumented class attribute, checked against starlette 1.10.0.
        parser.spool_max_size = limits.max_image_bytes + 1
        return await parser.parse()
    except MultiPartException as exc:
        raise BadInput(
            f"invalid form body: {exc.message} (fields: {'one image file, ' if image else ''}"
            f"up to {limits.max_texts} 'text' values)"
        ) from None


async def _from_form(form: FormData, limits: Limits, *, image: bool, text: bool) -> Inputs:
    data = None
    if image:
        upload = form.get("image")
        if upload is None:
            raise MissingField("missing field 'image': send the image as a multipart file field")
        if not isinstance(upload, UploadFile):
            raise MissingField("field 'image' must be a file upload, not a plain form value")
        if upload.size is not None and upload.size > limits.max_image_bytes:
            raise TooLarge(
                f"the image is {upload.size} bytes, over the limit of {limits.max_image_bytes} bytes"
            )
        data = await upload.read()
        check_image(data, limits.max_image_bytes, limits.max_image_pixels)
    texts, many = None, False
    if text:
        values = form.getlist("text")
        if not values:
            raise MissingField("missing field 'text': send one or more 'text' form fields")
        if not all(isinstance(v, str) for v in values):
            raise MissingField("field 'text' must be a plain form value, not a file")
        texts, many = _check_texts([str(v) for v in values], limits), len(values) > 1
    return Inputs(image=data, texts=texts, many=many)


def _from_json(raw: bytes, limits: Limits, image: bool, text: bool) -> Inputs:
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadInput("the JSON body is nested too deeply") from None
    if not isinstance(payload, dict):
        raise MissingField("the JSON body must be an object")
    data = None
    if image:
        if "image" not in payload:
            raise MissingField("missing field 'image': a base64 string or a data: URI")
        if not isinstance(payload["image"], str):
            raise MissingField("field 'image' must be a string (base64 or a data: URI)")
        data = _decode_base64(payload["image"], limits.max_image_bytes)
        check_image(data, limits.max_image_bytes, limits.max_image_pixels)
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
    return Inputs(image=data, texts=texts, many=many)


def _decode_base64(value: str, max_bytes: int) -> bytes:
    if value.startswith("data:"):
        header, sep, value = value.partition(",")
        if not sep or not header.endswith(";base64"):
            raise BadInput("the image data: URI must be base64 encoded ('data:<type>;base64,...')")
    if (len(value) * 3) // 4 > max_bytes + 2:
        raise TooLarge(f"the image is over the limit of {max_bytes} bytes")
    # Tolerate line breaks and the URL-safe alphabet; anything else outside base64 is an error.
    compact = "".join(value.split()).translate(_URLSAFE)
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("field 'image' is not valid base64") from None


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
