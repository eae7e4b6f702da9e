"""Image files of every common kind decode to the RGB picture a person would see."""

from __future__ import annotations

import re

import numpy as np
import pytest
from kserve.errors import InvalidInput
from PIL import Image

from predictors.preprocess import decode_image

from .media import distinct_image, encode, exif_rotated_png, png_header_only, rgba_on_white

LIMIT = 40_000_000


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


def test_exif_orientation_is_applied() -> None:
    img = distinct_image(1, (40, 20))
    out = decode_image(exif_rotated_png(img), LIMIT)
    assert out.size == (40, 20)
    np.testing.assert_array_equal(pixels(out), pixels(img))


def test_rgba_is_composited_on_white() -> None:
    data, expected = rgba_on_white(distinct_image(2))
    out = decode_image(data, LIMIT)
    assert out.mode == "RGB"
    np.testing.assert_array_equal(pixels(out), pixels(expected))


def test_la_and_palette_transparency_become_white() -> None:
    la = Image.new("LA", (8, 8), (0, 0))
    assert decode_image(encode(la), LIMIT).getpixel((3, 3)) == (255, 255, 255)
    pal = Image.new("P", (8, 8), 1)
    pal.putpalette([0, 0, 0, 255, 0, 0])
    pal.info["transparency"] = 1
    assert decode_image(encode(pal, "PNG", transparency=1), LIMIT).getpixel((3, 3)) == (255, 255, 255)


def test_cmyk_greyscale_and_palette_become_rgb() -> None:
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))  # red
    r, g, b = decode_image(encode(cmyk, "JPEG", quality=100), LIMIT).getpixel((4, 4))
    assert r > 240 and g < 20 and b < 20
    assert decode_image(encode(Image.new("L", (8, 8), 77)), LIMIT).getpixel((0, 0)) == (77, 77, 77)
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([10, 20, 30])
    assert decode_image(encode(pal, "GIF"), LIMIT).getpixel((0, 0)) == (10, 20, 30)


def test_16_bit_greyscale_keeps_its_range() -> None:
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    img = Image.fromarray(values)
    assert img.mode.startswith("I;16")
    out = decode_image(encode(img), LIMIT)
    assert [out.getpixel((x, 0)) for x in range(3)] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]


def test_animated_gif_uses_its_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert decode_image(data, LIMIT).getpixel((4, 4)) == (255, 0, 0)


def test_pixel_limit_is_checked_before_decoding() -> None:
    # The header claims 100 MP but the data is a 1x1 image's: decoding would fail, so the
    # refusal naming the pixel count shows the header alone decided.
    with pytest.raises(InvalidInput, match="10000x10000 = 100000000 pixels, over the limit of 40000000"):
        decode_image(png_header_only(10_000, 10_000), LIMIT)
    assert decode_image(encode(distinct_image(3, (100, 100))), 10_000).size == (100, 100)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "image[4] is empty"),
        (b"GIF89a nonsense", "image[4]"),
        (encode(distinct_image(4, (64, 64)), "JPEG")[:300], "image[4] could not be decoded"),
    ],
)
def test_bad_files_name_the_element(data: bytes, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        decode_image(data, LIMIT, index=4)
