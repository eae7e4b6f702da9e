"""Decode one encoded image file into the RGB picture CLIP expects, refusing what it should not open.

EXIF orientation is applied; palette, RGBA/LA (composited on white), CMYK, 16-bit and greyscale images
become RGB; animated images contribute their first frame. Images whose header declares more than
`max_pixels` pixels are refused before any pixel is decoded.

With `min_side` (twice the model's input side), big images are shrunk while their shorter side stays at
least `min_side`: a JPEG is decoded at 1/2, 1/4 or 1/8 scale (PIL draft mode, far less work than a full
decode), any image is then box-reduced by an integer factor. The model's own bicubic resize follows.
"""

from __future__ import annotations

import io

import numpy as np
from kserve.errors import InvalidInput
from PIL import Image, ImageOps, UnidentifiedImageError

# Our own pixel limit applies before decoding; PIL's global one would only warn or raise differently.
Image.MAX_IMAGE_PIXELS = None

WHITE = (255, 255, 255)


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGB", rgba.size, WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if img.mode.startswith("I;16") or img.mode == "I":
        # 16-bit greyscale: keep the high byte instead of clipping everything above 255 to white.
        grey = (np.asarray(img).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    return img.convert("RGB")


def _reduce(img: Image.Image, min_side: int) -> Image.Image:
    factor = min(img.size) // min_side
    return img.reduce(factor) if factor >= 2 else img


def decode_image(data: bytes, max_pixels: int, index: int = 0, min_side: int | None = None) -> Image.Image:
    """Return `data` decoded as an RGB image, or raise `InvalidInput` saying what is wrong with it.

    With `min_side`, the result may be smaller than the file, never below `min_side` on its shorter side
    (unless the file itself is)."""
    where = f"image[{index}]"
    if not data:
        raise InvalidInput(f"{where} is empty (0 bytes)")
    try:
        opened = Image.open(io.BytesIO(data))
        width, height = opened.size
        if width * height > max_pixels:
            raise InvalidInput(
                f"{where} is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}"
            )
        opened.seek(0)
        if min_side and opened.format == "JPEG":
            opened.draft(opened.mode, (min_side, min_side))
        opened.load()
        ImageOps.exif_transpose(opened, in_place=True)  # in place: no copy of an upright image
        rgb = _to_rgb(opened)
        return _reduce(rgb, min_side) if min_side else rgb
    except InvalidInput:
        raise
    except UnidentifiedImageError:
        raise InvalidInput(f"{where} is not a supported image file ({len(data)} bytes)") from None
    except Exception as e:  # decoders of untrusted bytes raise many types; all mean a bad file
        raise InvalidInput(f"{where} could not be decoded (truncated or corrupt image: {e})") from None
