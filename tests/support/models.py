"""Small open_clip model directories, built here because no weights can be downloaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from devtools.procs import ROOT

DEMO_MODEL_DIR = ROOT / "models" / "clip-shapes"  # the committed demo model (demo/, `make demo-model`)

TINY_VIT: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {
        "image_size": 32,
        "patch_size": 8,
        "width": 64,
        "layers": 2,
        "head_width": 32,
        "mlp_ratio": 2,
    },
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 64,
        "heads": 2,
        "layers": 2,
        "mlp_ratio": 2,
    },
}


def write_model_dir(
    path: Path, model_cfg: dict[str, Any], seed: int = 0, preprocess_cfg: dict[str, Any] | None = None
) -> Path:
    """Write an open_clip model directory (Hugging Face hub layout) with seeded random fp32 weights."""
    import open_clip
    import torch

    from demo.model import write_dir

    torch.manual_seed(seed)
    model = open_clip.CLIP(**model_cfg)
    default_preprocess = {
        "size": model_cfg["vision_cfg"]["image_size"],
        "mean": list(open_clip.OPENAI_DATASET_MEAN),
        "std": list(open_clip.OPENAI_DATASET_STD),
        "interpolation": "bicubic",
        "resize_mode": "shortest",
    }
    return write_dir(path, model, model_cfg, preprocess_cfg or default_preprocess, fp16=False)


def write_tiny_model(path: Path, seed: int = 0) -> Path:
    """A ~3 M parameter ViT CLIP (64-d embeddings, 32 px input, 16-token context)."""
    return write_model_dir(path, TINY_VIT, seed=seed)


def write_vit_b_32(path: Path, seed: int = 0) -> Path:
    """open_clip's ViT-B-32 with random weights: the real architecture's shapes and cost."""
    import open_clip

    cfg = open_clip.get_model_config("ViT-B-32")
    assert cfg is not None
    return write_model_dir(path, cfg, seed=seed)
