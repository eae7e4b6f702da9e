"""What a loaded model is to the rest of the predictor, whichever way it was loaded: open_clip's model
(`predictors.loading`) or an engine bundle (`predictors.bundle`, no torch). Nothing here imports torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

WEIGHT_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")  # of a model directory


class ModelLoadError(RuntimeError):
    """The configured model cannot be served."""


@dataclass(frozen=True)
class Cpu:
    """The device of a bundle's towers; answers `.type` and `str()` as a `torch.device("cpu")` does."""

    type: str = "cpu"

    def __str__(self) -> str:
        return self.type


@dataclass(frozen=True)
class LoadedModel:
    """A model ready for inference and what a client may want to know about it.

    `model` is open_clip's torch module, or None for a bundle (its towers are ONNX files in `bundle`).
    `preprocess` turns a PIL image into pixels and `tokenizer` texts into ids [N, context] (a torch
    tensor from open_clip's, a numpy array from a bundle's); `preprocess_cfg` is open_clip's
    preprocessing config. `trim`: the text tower runs exactly at the batch's real token length
    (`predictors.text_encoding.can_trim`).
    """

    model: Any
    preprocess: Any
    tokenizer: Any
    arch: str
    pretrained: str
    embed_dim: int
    logit_scale: float
    device: Any  # torch.device, or `Cpu` for a bundle
    dtype: Any  # torch.dtype, or "float32" for a bundle
    # The files the weights and architecture were read from (empty for random weights or a hub tag):
    # what a converted tower cached on disk is keyed by (`predictors.engines.onnx_export`).
    source_files: tuple[Path, ...] = ()
    preprocess_cfg: dict[str, Any] | None = None
    trim: bool = False
    bundle: Path | None = None  # the directory of a bundle's files

    @property
    def image_size(self) -> tuple[int, int]:
        """The image tower's input (height, width)."""
        cfg = self.preprocess_cfg
        if cfg is None:
            cfg = self.model.visual.preprocess_cfg
        size = cfg["size"]
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def resolve_precision(requested: str, device: Any) -> str:
    """`auto`: fp16 on a GPU, fp32 on a CPU."""
    if requested == "auto":
        return "fp16" if device.type == "cuda" else "fp32"
    return requested
