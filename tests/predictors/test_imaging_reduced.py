"""Big images are decoded at reduced scale (JPEG draft mode, box reduction), keeping what CLIP sees."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from demo.shapes import draw
from predictors.loading import load_model
from predictors.preprocess import decode_image
from predictors.settings import read_settings

LIMIT = 40_000_000
DEMO_DIR = Path(__file__).resolve().parents[2] / "models" / "clip-shapes"


def photo(size: tuple[int, int], fmt: str = "JPEG", seed: int = 1, **save: object) -> bytes:
    buf = io.BytesIO()
    small = draw("red", "star", seed, (size[0] // 8, size[1] // 8))  # drawing is slow at full size
    small.resize(size, Image.Resampling.BICUBIC).save(buf, fmt, **save)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_12_megapixel_image_shrinks_but_keeps_twice_the_input_side(fmt: str) -> None:
    out = decode_image(photo((4000, 3000), fmt), LIMIT, min_side=448)
    assert out.mode == "RGB"
    assert 448 <= min(out.size) < 2 * 448
    assert abs(out.size[0] / out.size[1] - 4 / 3) < 0.01


def test_images_already_small_are_decoded_exactly_as_without_it() -> None:
    data = photo((640, 480))
    small = decode_image(data, LIMIT, min_side=448)
    assert small.size == (640, 480)
    np.testing.assert_array_equal(np.asarray(small), np.asarray(decode_image(data, LIMIT)))


def test_exif_orientation_still_applies_to_a_reduced_jpeg() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = decode_image(photo((4000, 3000), exif=exif.tobytes()), LIMIT, min_side=448)
    assert out.size[0] < out.size[1]


def test_the_model_sees_the_same_picture() -> None:
    loaded = load_model(read_settings("image", ["--model_dir", str(DEMO_DIR)]))
    files = [photo((4000, 3000), seed=s) for s in range(3)] + [photo((3000, 4000), "PNG", seed=9)]

    def embed(min_side: int | None) -> torch.Tensor:
        batch = torch.stack([loaded.preprocess(decode_image(f, LIMIT, min_side=min_side)) for f in files])
        with torch.inference_mode():
            return torch.nn.functional.normalize(loaded.model.encode_image(batch), dim=-1)  # type: ignore[operator]

    cosines = (embed(128) * embed(None)).sum(dim=-1)
    assert bool((cosines >= 0.99).all()), cosines
