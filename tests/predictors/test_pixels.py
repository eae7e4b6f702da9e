"""The PIL + numpy transform gives exactly the values of open_clip's own eval transform, for any image."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import pytest
import torch
from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
from open_clip.transform import PreprocessCfg, image_transform_v2
from open_clip.transform import image_transform as open_clip_transform
from PIL import Image

from devtools.procs import ROOT
from predictors.pixels import OPENAI_MEAN, OPENAI_STD, image_transform, input_side
from tests.support.models import DEMO_MODEL_DIR

DEMO_CFG: dict[str, Any] = json.loads((DEMO_MODEL_DIR / "open_clip_config.json").read_text())[
    "preprocess_cfg"
]
VIT_B_32_CFG: dict[str, Any] = asdict(PreprocessCfg(size=224))  # ViT-B-32's: 224, OpenAI mean / std
CFGS = {"demo": DEMO_CFG, "vit-b-32": VIT_B_32_CFG}

# (width, height): tiny, thin both ways, odd, exactly the side, just off it, large, portrait and landscape.
SIZES = [
    (1, 1),
    (2, 3),
    (7, 300),
    (300, 7),
    (17, 9),
    (31, 33),
    (63, 65),
    (64, 64),
    (65, 64),
    (64, 129),
    (223, 225),
    (224, 224),
    (225, 224),
    (320, 240),
    (240, 320),
    (1000, 700),
    (700, 1000),
]
RANDOM_SIZES = [tuple(int(s) for s in wh) for wh in np.random.default_rng(7).integers(1, 500, (24, 2))]


def image(size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    rgb = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    return rgb.convert(mode)


def reference(cfg: dict[str, Any]) -> Callable[[Image.Image], np.ndarray]:
    """open_clip's own eval transform for `cfg`, its tensor as numpy."""
    full = open_clip_transform(
        cfg["size"],
        is_train=False,
        mean=cfg.get("mean"),
        std=cfg.get("std"),
        resize_mode=cfg.get("resize_mode"),
        interpolation=cfg.get("interpolation"),
        fill_color=cfg.get("fill_color", 0),
    )

    def apply(img: Image.Image) -> np.ndarray:
        out: torch.Tensor = full(img)
        return out.numpy()

    return apply


def assert_same(cfg: dict[str, Any], images: list[Image.Image]) -> None:
    got_fn, want_fn = image_transform(cfg), reference(cfg)
    for img in images:
        try:
            want = want_fn(img)
        except ValueError as e:  # longest: a side that rounds to 0 pixels, which PIL refuses
            with pytest.raises(ValueError, match=f"^{e}$"):
                got_fn(img)
            continue
        got = got_fn(img)
        assert got.dtype == np.float32 and got.flags.c_contiguous, (img.size, img.mode)
        assert got.shape == want.shape, (img.size, img.mode, got.shape, want.shape)
        assert np.array_equal(got, want), (img.size, img.mode)


@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear", "random"])
@pytest.mark.parametrize("resize_mode", ["shortest", "squash", "longest"])
@pytest.mark.parametrize("name", list(CFGS))
def test_same_values_as_open_clip_for_every_image_size(
    name: str, resize_mode: str, interpolation: str
) -> None:
    cfg = {**CFGS[name], "resize_mode": resize_mode, "interpolation": interpolation}
    sizes = SIZES + RANDOM_SIZES
    assert_same(cfg, [image(size, seed=i) for i, size in enumerate(sizes)])


@pytest.mark.parametrize("resize_mode", ["shortest", "squash", "longest"])
@pytest.mark.parametrize("size", [[64, 96], [96, 64], [64, 64]])
def test_same_values_for_a_non_square_size(resize_mode: str, size: list[int]) -> None:
    # shortest: open_clip's ResizeKeepRatio (always bicubic) then CenterCrop, so bilinear is asked for too
    for interpolation in ("bicubic", "bilinear"):
        cfg = {**DEMO_CFG, "size": size, "resize_mode": resize_mode, "interpolation": interpolation}
        assert_same(cfg, [image(wh, seed=i) for i, wh in enumerate(SIZES + RANDOM_SIZES[:8])])


def test_same_values_as_image_transform_v2_for_vit_b_32() -> None:
    full = image_transform_v2(PreprocessCfg(**VIT_B_32_CFG), is_train=False)
    fast = image_transform(VIT_B_32_CFG)
    for i, size in enumerate(SIZES):
        img = image(size, seed=100 + i)
        assert np.array_equal(fast(img), full(img).numpy()), size


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA", "P", "CMYK", "1", "I", "F"])
@pytest.mark.parametrize("resize_mode", ["shortest", "squash", "longest"])
def test_same_values_for_other_modes_given_as_they_are_or_converted_first(
    mode: str, resize_mode: str
) -> None:
    cfg = {**DEMO_CFG, "resize_mode": resize_mode}
    imgs = [image(size, mode, seed=i) for i, size in enumerate([(50, 300), (300, 200), (17, 9), (64, 64)])]
    assert_same(cfg, imgs + [img.convert("RGB") for img in imgs])


@pytest.mark.parametrize("fill_color", [0, 128, [10, 200, 30], None])
def test_longest_pads_with_the_fill_color(fill_color: Any) -> None:
    cfg = {**DEMO_CFG, "resize_mode": "longest", "fill_color": fill_color}
    imgs = [image(size, seed=i) for i, size in enumerate([(50, 300), (300, 50), (99, 100), (640, 480)])]
    assert_same(cfg, imgs)
    one_band = [imgs[0].convert("P"), imgs[1].convert("L")]
    if isinstance(fill_color, list):  # three values for one band: torchvision refuses, and so does this
        for img in one_band:
            with pytest.raises(ValueError):
                reference(cfg)(img)
            with pytest.raises(ValueError):
                image_transform(cfg)(img)
    else:
        assert_same(cfg, one_band)
    if fill_color == 128:
        padded = image_transform(cfg)(imgs[0])  # 11 x 64 after the resize, padded to 64 x 64
        gray = (np.float32(128) / np.float32(255) - np.float32(0.5)) / np.float32(0.5)
        assert np.all(padded[:, :, :26] == gray) and np.all(padded[:, :, -27:] == gray)
        assert not np.all(padded[:, :, 26:-27] == gray)


def test_an_image_that_resizes_to_nothing_fails_as_open_clips_does() -> None:
    cfg = {**DEMO_CFG, "resize_mode": "longest"}
    thin = image((1, 1000))
    with pytest.raises(ValueError) as want:
        reference(cfg)(thin)
    with pytest.raises(ValueError) as got:
        image_transform(cfg)(thin)
    assert str(got.value) == str(want.value)


def test_defaults_are_open_clips() -> None:
    assert (OPENAI_MEAN, OPENAI_STD) == (OPENAI_DATASET_MEAN, OPENAI_DATASET_STD)
    img = image((300, 200))
    bare = image_transform({"size": 224})(img)
    assert np.array_equal(bare, image_transform(VIT_B_32_CFG)(img))
    assert np.array_equal(bare, reference({"size": 224})(img))


def test_input_side_is_the_larger_side() -> None:
    assert input_side(DEMO_CFG) == 64
    assert input_side(VIT_B_32_CFG) == 224
    assert input_side({"size": [96, 128]}) == 128
    assert input_side({"size": (240, 200)}) == 240


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("resize_mode", "crop"),
        ("interpolation", "lanczos"),
        ("interpolation", ["bicubic"]),
        ("mode", "L"),
        ("size", None),
        ("size", 0),
        ("size", [224]),
        ("size", [1, 2, 3]),
        ("size", 224.0),
        ("mean", [0.5, 0.5]),
        ("std", [0.5, 0.0, 0.5]),
        ("std", "0.5"),
        ("fill_color", "white"),
    ],
)
def test_an_unsupported_setting_raises_value_error_naming_it(key: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"unsupported preprocess {key} "):
        image_transform({**DEMO_CFG, key: value})


@pytest.mark.usefixtures("starts_processes")
def test_importing_and_transforming_loads_neither_torch_torchvision_nor_open_clip() -> None:
    code = (
        "import sys\n"
        "from PIL import Image\n"
        "from predictors.pixels import image_transform\n"
        "out = image_transform({'size': 64})(Image.new('RGB', (30, 90)))\n"
        "assert out.shape == (3, 64, 64), out.shape\n"
        "print(','.join(m for m in ('torch', 'torchvision', 'open_clip') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
