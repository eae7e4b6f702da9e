"""The towers on torch: open_clip's model as loaded, with torch's own or oneDNN linear kernels.

`tower_module(model, kind, trim)` is the forward a tower runs, and the one the other engines convert
(`predictors.engines.onnx_export`): `encode_image`, or the text encoding at the ids' length
(`predictors.text_encoding.encode_at_length`, or open_clip's `encode_text` where that is not exact).

The oneDNN variant runs on a copy of the model's modules that shares every parameter and buffer with
the loaded model (no second copy of the weights), so the loaded model itself keeps torch's kernels.
Threads follow torch's per-OS-thread count: each pass sets it (`ThreadSplit.before_pass`).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .. import onednn
from ..text_encoding import encode_at_length
from ..threads import ThreadSplit
from .choice import Choice
from .tower import Tower


class ImageForward(nn.Module):
    """Image features of pixels."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(pixels)  # type: ignore[operator]


class TextForward(nn.Module):
    """Text features of token ids: at their length when `trim`, else at the full context."""

    def __init__(self, model: nn.Module, trim: bool) -> None:
        super().__init__()
        self.model = model
        self.trim = trim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.trim:
            return encode_at_length(self.model, tokens)
        return self.model.encode_text(tokens)  # type: ignore[operator]


def tower_module(model: nn.Module, kind: str, trim: bool) -> nn.Module:
    return ImageForward(model) if kind == "image" else TextForward(model, trim)


def shared_copy(model: nn.Module) -> nn.Module:
    """A copy of `model`'s modules that shares its parameters and buffers (the weights are not copied),
    so that re-classing its layers leaves `model` as it is."""
    shared = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return copy.deepcopy(model, memo=shared)


def onednn_view(model: nn.Module) -> nn.Module:
    """`model` on oneDNN linear kernels, sharing its weights."""
    view = shared_copy(model)
    onednn.use_onednn(view)
    return view


class TorchTower(Tower):
    """A tower run by torch on the loaded model's device and dtype."""

    def __init__(
        self,
        choice: Choice,
        kind: str,
        trim: bool,
        split: ThreadSplit,
        model: nn.Module,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        super().__init__(choice, kind, trim, split)
        self.module = tower_module(onednn_view(model) if choice.kernels == "onednn" else model, kind, trim)
        self.device = device
        self.dtype = dtype

    def run(self, x: np.ndarray, alone: bool) -> np.ndarray:
        self.split.before_pass(alone)
        t = torch.from_numpy(x)
        t = t.to(self.device, self.dtype) if self.kind == "image" else t.to(self.device)
        with torch.inference_mode():
            return self.module(t).float().cpu().numpy()
