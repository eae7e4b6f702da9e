"""Identify an uploaded image from its header alone: the pixels are decoded once, in the predictor."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from gateway.errors import BadInput, TooLarge, UnsupportedMediaType

# What the image predictor decodes (docs/protocol.md); PIL knows more formats than that.
FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"})

# The gateway enforces its own pixel limit below; PIL's warning would only add noise to the logs.
warnings.simplefilter("ignore", Image.DecompressionBombWarning)


def check_image(data: bytes, max_bytes: int, max_pixels: int) -> tuple[str, int, int]:
    """Return (format, width, height) of an encoded image, or raise the error a user should get."""
    if not data:
        raise BadInput("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise TooLarge(f"the image is {len(data)} bytes, over the limit of {max_bytes} bytes")
    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header, not the pixels
            fmt, (width, height) = image.format or "?", image.size
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"the image has too many pixels ({exc})") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise BadInput(
            "the upload is not an image file that can be decoded (send JPEG, PNG, WebP, GIF, BMP or TIFF)"
        ) from exc
    if fmt not in FORMATS:
        raise UnsupportedMediaType(
            f"image format {fmt} is not supported (send JPEG, PNG, WebP, GIF, BMP or TIFF)"
        )
    if width * height > max_pixels:
        raise TooLarge(
            f"the image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}"
        )
    return fmt, width, height
