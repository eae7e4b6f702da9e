"""The numpy tail of the image transform gives exactly the values of the model's own open_clip transform,
as a float32 array."""

from __future__ import annotations

import numpy as np
import pytest
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image
from torchvision.transforms import Compose, Resize, ToTensor

from predictors.imagetensor import model_transform

OPENAI_MEAN, OPENAI_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)


def image(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    return rgb.convert(mode)


@pytest.mark.parametrize("resize_mode", ["shortest", "squash", "longest"])
@pytest.mark.parametrize("side", [64, 224])
def test_same_values_as_open_clips_transform(resize_mode: str, side: int) -> None:
    cfg = PreprocessCfg(size=side, mean=OPENAI_MEAN, std=OPENAI_STD, resize_mode=resize_mode)
    full = image_transform_v2(cfg, is_train=False)
    fast = model_transform(full)
    assert fast is not full
    for i, (size, mode) in enumerate(
        [((320, 240), "RGB"), ((50, 300), "RGB"), ((17, 9), "RGB"), ((640, 640), "L"), ((300, 200), "RGBA")]
    ):
        img = image(size, mode, seed=i)
        got, want = fast(img), full(img).numpy()
        assert got.shape == want.shape and got.dtype == want.dtype and got.flags.c_contiguous
        assert np.array_equal(got, want), (size, mode)


def test_a_transform_of_another_shape_gives_its_own_values_as_an_array() -> None:
    img = image((50, 40))
    for other in (Compose([Resize(32), ToTensor()]), ToTensor()):
        got = model_transform(other)(img)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        assert np.array_equal(got, other(img).numpy())
