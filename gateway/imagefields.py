"""The images of one request: each from base64, a data: URI or (when enabled) a URL, checked alone."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any, TypeVar

from gateway.errors import BadInput, GatewayError, MissingField, TooLarge
from gateway.uploads import check_image

T = TypeVar("T")
_URLSAFE = str.maketrans("-_", "+/")
URL_PREFIXES = ("http://", "https://")


def is_url(value: str) -> bool:
    """Whether a JSON image string is an http(s) URL rather than base64 or a data: URI."""
    return value[:8].lower().startswith(URL_PREFIXES)


def json_images(value: object, max_images: int, max_bytes: int, urls: bool) -> tuple[list[bytes | str], bool]:
    """The JSON `image` field as a list of decoded files and URL strings (fetched later), and whether
    it came as a list. URLs are accepted only when `urls` is set. Raises the error a user should get
    for a wrong type or too many images."""
    many = isinstance(value, list)
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise MissingField(
            "field 'image' must be a string (base64, a data: URI or a URL) or a list of such strings"
        )
    if not items:
        raise BadInput("field 'image' is an empty list: send at least one image")
    check_count(len(items), max_images)
    out: list[bytes | str] = []
    for i, item in enumerate(items):
        assert isinstance(item, str)
        if is_url(item):
            if not urls:
                raise BadInput(
                    "image URLs are not accepted by this gateway (GATEWAY_IMAGE_URLS is off): "
                    "send the image as base64 or a data: URI"
                )
            out.append(item)
        else:
            out.append(named(f"image[{i}]" if many else None, decode_base64, item, max_bytes))
    return out, many


def check_count(count: int, max_images: int) -> None:
    """413 when a request carries more than `max_images` images."""
    if count > max_images:
        raise TooLarge(
            f"{count} images sent, at most {max_images} are allowed per request (GATEWAY_MAX_IMAGES)"
        )


def check_images(images: list[bytes], many: bool, max_bytes: int, max_pixels: int) -> None:
    """Check each image from its header; a bad one's error names it (`image[i]`) when there are several."""
    for i, data in enumerate(images):
        named(f"image[{i}]" if many else None, check_image, data, max_bytes, max_pixels)


def named(label: str | None, step: Callable[..., T], *args: Any) -> T:
    """`step(*args)`, whose error message starts with `label: ` (which image of several it is about)."""
    try:
        return step(*args)
    except GatewayError as exc:
        if label is None:
            raise
        raise type(exc)(f"{label}: {exc.message}") from exc


def decode_base64(value: str, max_bytes: int) -> bytes:
    """The file in a base64 string or a `data:<type>;base64,` URI (line breaks and the URL-safe
    alphabet tolerated)."""
    if value.startswith("data:"):
        header, sep, value = value.partition(",")
        if not sep or not header.endswith(";base64"):
            raise BadInput("the image data: URI must be base64 encoded ('data:<type>;base64,...')")
    if (len(value) * 3) // 4 > max_bytes + 2:
        raise TooLarge(f"the image is over the limit of {max_bytes} bytes")
    try:  # the usual case, strict standard base64, in one pass in C
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        pass
    compact = "".join(value.split()).translate(_URLSAFE)
    try:
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadInput("field 'image' is not valid base64") from None
