"""Export one CLIP tower to an fp32 ONNX file with dynamic axes, for ONNX Runtime and its int8 quantizer.

- image: input `image` [batch, 3, H, W] -> output `features` [batch, D], the batch axis dynamic.
- text: input `tokens` [batch, length] int64, already cut to the batch's real token length
  (`text_encoding.token_length`) -> `features` [batch, D], batch and length dynamic, so one file serves
  every batch at its own length, exactly as the trimmed torch path.

The features are not normalised, as `encode_image` / `encode_text`. The exporter is torch's TorchScript
one at opset 17; torch's fused attention fast path has no ONNX form, so it is off while tracing.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from predictors.quantize import swap_attention
from predictors.text_encoding import encode_at_length

OPSET = 17
Kind = Literal["image", "text"]


class ImageTower(nn.Module):
    """`model.encode_image` as a module of its own."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        return self.model.encode_image(image)  # type: ignore[operator]


class TextTower(nn.Module):
    """The text encoder at the length of its input tokens (`encode_at_length`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor) -> Tensor:
        return encode_at_length(self.model, tokens)


def export_tower(model: nn.Module, kind: Kind, path: Path) -> Path:
    """Write `model`'s image or text tower (fp32, CPU, eval mode) to `path`; returns `path`."""
    model = swap_attention(copy.deepcopy(model))
    if kind == "image":
        visual: Any = model.visual
        size = visual.image_size
        height, width = (size, size) if isinstance(size, int) else size
        tower: nn.Module = ImageTower(model)
        example = torch.zeros(2, 3, height, width)
        names, axes = ["image"], {"image": {0: "batch"}, "features": {0: "batch"}}
    else:
        tower = TextTower(model)
        example = torch.ones(2, 3, dtype=torch.long)
        names, axes = ["tokens"], {"tokens": {0: "batch", 1: "length"}, "features": {0: "batch"}}
    fast_path = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        with torch.no_grad():
            torch.onnx.export(
                tower.eval(), (example,), str(path), dynamo=False, opset_version=OPSET,
                input_names=names, output_names=["features"], dynamic_axes=axes,
            )  # fmt: skip
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
    return path
