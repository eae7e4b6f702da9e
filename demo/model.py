"""The demo CLIP's architecture and its open_clip model directory (Hugging Face hub layout)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.transform import PreprocessCfg, image_transform_v2
from safetensors.torch import save_file

CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_model.safetensors"

# A ResNet-style vision tower (convolutions learn shape quickly on a CPU) and a 2-layer text tower.
MODEL_CFG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "width": 16, "layers": [1, 1, 1, 1], "head_width": 32},
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
        "mlp_ratio": 2,
    },
}
PREPROCESS_CFG: dict[str, Any] = {
    "size": 64,
    "mode": "RGB",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "interpolation": "bicubic",
    "resize_mode": "shortest",
}


def build() -> open_clip.CLIP:
    """A freshly initialised demo CLIP (seed torch first for repeatable weights)."""
    return open_clip.CLIP(**MODEL_CFG)


def preprocess() -> Any:
    """The eval image transform that `local-dir:` loading builds from `PREPROCESS_CFG`."""
    return image_transform_v2(PreprocessCfg(**PREPROCESS_CFG), is_train=False)


def write_dir(
    out: Path,
    model: torch.nn.Module,
    model_cfg: dict[str, Any],
    preprocess_cfg: dict[str, Any],
    *,
    fp16: bool,
) -> Path:
    """Write an open_clip model directory: JSON config plus safetensors weights (fp16 or as they are)."""
    out.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess_cfg}
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    weights = out / WEIGHTS_FILE
    state = {
        k: (v.detach().to(torch.float16) if fp16 and v.is_floating_point() else v.detach()).contiguous()
        for k, v in model.state_dict().items()
    }
    save_file(state, str(weights))
    os.chmod(weights, 0o644)  # safetensors writes 0600; a server running as another user must read it
    return out


def save(model: torch.nn.Module, out: Path) -> Path:
    """Write the demo `model` as an open_clip model directory, weights in fp16, mode 0644."""
    return write_dir(out, model, MODEL_CFG, PREPROCESS_CFG, fp16=True)


def load(model_dir: Path) -> tuple[open_clip.CLIP, Any, Any]:
    """Load a model directory the way the predictors do: (model in eval mode, preprocess, tokenizer)."""
    ident = f"local-dir:{model_dir}"
    model, _, transform = open_clip.create_model_and_transforms(ident)
    return model.eval(), transform, open_clip.get_tokenizer(ident)
