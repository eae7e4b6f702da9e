"""open_clip's eval image transform rebuilt from a preprocess config with PIL and numpy alone.

open_clip 3.3.0 (`open_clip.transform.image_transform(..., is_train=False)`) runs torchvision's PIL steps
(resize, centre crop, crop-or-pad), converts to RGB, then `ToTensor` and `Normalize`. This module makes the
same PIL calls with the same arguments (output sizes, resampling filters, crop boxes, padding) and the same
float32 arithmetic, so its arrays equal that transform's tensors to the last bit, without torch,
torchvision or open_clip. Settings it does not reproduce raise `ValueError`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from PIL import Image, ImageOps

PixelTransform = Callable[[Image.Image], np.ndarray]

# open_clip.constants.OPENAI_DATASET_MEAN / _STD: its defaults when a config gives none.
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

# open_clip maps "bilinear" to bilinear and everything else it accepts ("bicubic", "random") to bicubic at
# eval; torchvision hands PIL these filters.
_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "random": Image.Resampling.BICUBIC,
}
_RESIZE_MODES = ("shortest", "longest", "squash")


def input_side(cfg: Mapping[str, Any]) -> int:
    """The largest side of the transform's output: the input side a model with this config expects."""
    return max(_size(cfg))


def image_transform(cfg: Mapping[str, Any]) -> PixelTransform:
    """The eval transform of open_clip's `preprocess_cfg` `cfg`: a PIL image (any mode, any size) to a new
    float32, C-contiguous [3, H, W] array equal to open_clip's output.

    Keys absent or None take `PreprocessCfg`'s defaults, except `size`, which is required; keys open_clip
    does not read are ignored. Raises `ValueError` naming the setting for a config it does not reproduce.
    """
    height, width = _size(cfg)
    if (mode := cfg.get("mode")) not in (None, "RGB"):
        raise ValueError(f"unsupported preprocess mode {mode!r}: only 'RGB'")
    interpolation = cfg.get("interpolation") or "bicubic"
    if not isinstance(interpolation, str) or interpolation not in _RESAMPLE:
        raise ValueError(
            f"unsupported preprocess interpolation {interpolation!r}: one of {sorted(_RESAMPLE)}"
        )
    resize_mode = cfg.get("resize_mode") or "shortest"
    if not isinstance(resize_mode, str) or resize_mode not in _RESIZE_MODES:
        raise ValueError(f"unsupported preprocess resize_mode {resize_mode!r}: one of {list(_RESIZE_MODES)}")
    mean = _channel_values(cfg.get("mean") or OPENAI_MEAN, "mean")
    std = _channel_values(cfg.get("std") or OPENAI_STD, "std")
    if not std.all():
        raise ValueError(f"unsupported preprocess std {cfg.get('std')!r}: zero in float32")
    fill = cfg.get("fill_color", 0)
    if fill is not None and not isinstance(fill, numbers.Real | list | tuple):
        raise ValueError(f"unsupported preprocess fill_color {fill!r}: a number or a sequence of numbers")
    resample = _RESAMPLE[interpolation]
    target = (height, width)

    def geometry(img: Image.Image) -> Image.Image:
        if resize_mode == "longest":
            img = _resize(img, _keep_ratio_size(img, target, longest=1.0), resample)
            return _center_crop_or_pad(img, target, fill)
        if resize_mode == "squash":
            return _resize(img, target, resample)
        if height == width:  # torchvision's Resize(int): shortest edge to the side
            img = _resize(img, _shortest_edge_size(img, height), resample)
        else:  # open_clip's ResizeKeepRatio(size), whose filter is always bicubic
            img = _resize(img, _keep_ratio_size(img, target, longest=0.0), Image.Resampling.BICUBIC)
        return _center_crop_or_pad(img, target, 0)

    def apply(img: Image.Image) -> np.ndarray:
        img = geometry(img)
        if img.mode != "RGB":
            img = img.convert("RGB")
        # ToTensor then Normalize: x / 255, minus mean, divided by std, each in float32.
        pixels = np.asarray(img).transpose(2, 0, 1).astype(np.float32, order="C")
        np.divide(pixels, np.float32(255), out=pixels)
        np.subtract(pixels, mean, out=pixels)
        np.divide(pixels, std, out=pixels)
        return pixels

    return apply


def _size(cfg: Mapping[str, Any]) -> tuple[int, int]:
    """(height, width) from `size`: a positive int, or [height, width]."""
    size: Any = cfg.get("size")
    sides = list(size) if isinstance(size, list | tuple) else [size, size]
    if len(sides) != 2 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in sides):
        raise ValueError(f"unsupported preprocess size {size!r}: a positive int or [height, width]")
    return sides[0], sides[1]


def _channel_values(values: Any, name: str) -> np.ndarray:
    """Per-channel `Normalize` values as torchvision keeps them: float32, broadcast over [3, H, W]."""
    seq = list(values) if isinstance(values, list | tuple) else [values]
    if len(seq) not in (1, 3) or not all(isinstance(v, numbers.Real) for v in seq):
        raise ValueError(f"unsupported preprocess {name} {values!r}: one number or three")
    return np.asarray(seq, dtype=np.float32).reshape(-1, 1, 1)


def _shortest_edge_size(img: Image.Image, side: int) -> tuple[int, int]:
    """torchvision's output (height, width) for `Resize(side)`: the short edge to `side`, the long one
    scaled and truncated."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = side, int(side * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    return new_h, new_w


def _keep_ratio_size(img: Image.Image, target: tuple[int, int], longest: float) -> tuple[int, int]:
    """open_clip's `ResizeKeepRatio` output (height, width) without its random factors: both sides divided
    by the shortest (longest=0) or longest (longest=1) side's ratio to the target, rounded half to even."""
    h, w = img.height, img.width
    ratio_h, ratio_w = h / target[0], w / target[1]
    ratio = max(ratio_h, ratio_w) * longest + min(ratio_h, ratio_w) * (1.0 - longest)
    return round(h * 1.0 / ratio), round(w * 1.0 / ratio)


def _resize(img: Image.Image, size: tuple[int, int], resample: Image.Resampling) -> Image.Image:
    """torchvision's `resize` of a PIL image to (height, width): the image itself when already that size."""
    if (img.height, img.width) == size:
        return img
    return img.resize((size[1], size[0]), resample)


def _center_crop_or_pad(img: Image.Image, size: tuple[int, int], fill: Any) -> Image.Image:
    """torchvision's `center_crop` (fill 0) and open_clip's `center_crop_or_pad`: pad a side shorter than
    the crop evenly (the extra pixel on the right / bottom), then crop at the rounded centre offset."""
    crop_h, crop_w = size
    if crop_w > img.width or crop_h > img.height:
        pad_w, pad_h = max(crop_w - img.width, 0), max(crop_h - img.height, 0)
        img = _pad(img, (pad_w // 2, pad_h // 2, (pad_w + 1) // 2, (pad_h + 1) // 2), fill)
        if (img.height, img.width) == size:
            return img
    top = round((img.height - crop_h) / 2.0)
    left = round((img.width - crop_w) / 2.0)
    return img.crop((left, top, left + crop_w, top + crop_h))


def _pad(img: Image.Image, ltrb: tuple[int, int, int, int], fill: Any) -> Image.Image:
    """torchvision's constant `pad` of a PIL image, with its fill parsing and palette handling."""
    color = _parse_fill(fill, img)
    if img.mode == "P":
        palette = img.getpalette()
        padded = ImageOps.expand(img, border=ltrb, fill=color)
        padded.putpalette(palette)  # type: ignore[arg-type]
        return padded
    return ImageOps.expand(img, border=ltrb, fill=color)


def _parse_fill(fill: Any, img: Image.Image) -> Any:
    """torchvision's `_parse_fill`: one value per band, ints unless the image is float ("F")."""
    bands = len(img.getbands())
    if fill is None:
        fill = 0
    if isinstance(fill, int | float) and bands > 1:
        fill = (fill,) * bands
    if isinstance(fill, list | tuple):
        if len(fill) == 1:
            fill = tuple(fill) * bands
        elif len(fill) != bands:
            raise ValueError(f"fill_color {fill!r} has {len(fill)} values for an image with {bands} bands")
        fill = tuple(fill)
    if img.mode != "F":
        fill = tuple(int(x) for x in fill) if isinstance(fill, tuple) else int(fill)
    return fill
