"""The model's own open_clip image transform, its tensor steps done in one numpy pass: the same values.

open_clip's eval transform ends with RGB conversion, `ToTensor` and `Normalize` after its PIL steps
(resize, crop). `model_transform` keeps the PIL steps as the model's own modules and replaces the tail
with the same float32 arithmetic on numpy (x / 255, minus mean, divided by std), without torchvision's
copies and per-op dispatch; the values equal the full transform's to the last bit. A transform that does
not end that way is used as it is, its tensor read as a float32 array: the predictors batch arrays.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from open_clip.transform import MaybeConvertMode, MaybeToTensor
from PIL import Image
from torchvision.transforms import Normalize, ToTensor

Transform = Callable[[Image.Image], Any]


def _is_rgb_step(step: Any) -> bool:
    if isinstance(step, MaybeConvertMode):
        return step.mode == "RGB"
    return getattr(step, "__name__", None) == "_convert_to_rgb"


def model_transform(transform: Transform) -> Callable[[Image.Image], np.ndarray]:
    """`transform` with its RGB → tensor → normalise tail on numpy, or `transform` with its tensor read
    as an array when its steps are not of that shape: pixels [3, H, W] as a float32 array either way."""
    steps: Sequence[Any] = getattr(transform, "transforms", ())
    if len(steps) < 3:
        return _as_array(transform)
    *pil_steps, rgb, to_tensor, normalize = steps
    if not (
        _is_rgb_step(rgb) and type(to_tensor) in (ToTensor, MaybeToTensor) and type(normalize) is Normalize
    ):
        return _as_array(transform)
    mean = np.asarray(normalize.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(normalize.std, dtype=np.float32).reshape(-1, 1, 1)
    if mean.shape != (3, 1, 1) or std.shape != (3, 1, 1):
        return _as_array(transform)

    def apply(img: Image.Image) -> np.ndarray:
        for step in pil_steps:
            img = step(img)
        if not isinstance(img, Image.Image):  # a step that already made a tensor: the full tail
            return np.asarray(normalize(to_tensor(img)), dtype=np.float32)
        if img.mode != "RGB":
            img = img.convert("RGB")
        pixels = np.asarray(img).transpose(2, 0, 1).astype(np.float32, order="C")  # 3 x H x W, new
        np.divide(pixels, np.float32(255), out=pixels)
        np.subtract(pixels, mean, out=pixels)
        np.divide(pixels, std, out=pixels)
        return pixels

    return apply


def _as_array(transform: Transform) -> Callable[[Image.Image], np.ndarray]:
    def apply(img: Image.Image) -> np.ndarray:
        out = transform(img)
        return np.asarray(out.float() if isinstance(out, torch.Tensor) else out, dtype=np.float32)

    return apply
