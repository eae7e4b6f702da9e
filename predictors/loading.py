"""Load an open_clip model from a model directory or an architecture plus pretrained weights.

Every way a model can fail to load raises `ModelLoadError` with one sentence saying why, promptly:
a directory without weights is refused (open_clip would fill it with random numbers), and a pretrained
tag is fetched only when the Hugging Face hub answers within a few seconds (else only from the cache).
Random weights (`--pretrained none`) are drawn from a fixed seed, so every load of an architecture holds
the same model: the image and the text predictor agree, and so do two loads in one process.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch

from . import gpu
from .loaded import WEIGHT_FILES, LoadedModel, ModelLoadError, resolve_precision
from .settings import Settings

HUB_PROBE_TIMEOUT_S = 3.0

logger = logging.getLogger(__name__)


def resolve_device(requested: str) -> torch.device:
    """`auto`: cuda when available, else cpu. `cuda` where CUDA is not usable: `ModelLoadError` naming
    the driver/CUDA mismatch. A CUDA device is logged (GPU, compute capability, CUDA and driver)."""
    if requested == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    elif requested == "cuda" and (problem := gpu.cuda_problem()) is not None:
        raise ModelLoadError(problem)
    else:
        device = torch.device(requested)
    if device.type == "cuda":
        logger.info("%s", gpu.describe_cuda(device))
    return device


def _read_dir_config(model_dir: Path) -> dict[str, Any]:
    if not model_dir.is_dir():
        raise ModelLoadError(f"model dir {model_dir} does not exist or is not a directory")
    config_path = model_dir / "open_clip_config.json"
    if not config_path.is_file():
        raise ModelLoadError(f"model dir {model_dir} has no open_clip_config.json")
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot read {config_path}: {e}") from e
    if not isinstance(config, dict) or not isinstance(config.get("model_cfg"), dict):
        raise ModelLoadError(f"{config_path} has no 'model_cfg' object")
    if not any((model_dir / name).is_file() for name in WEIGHT_FILES):
        raise ModelLoadError(
            f"model dir {model_dir} has a config but no weights ({' or '.join(WEIGHT_FILES)}); "
            "refusing to serve randomly initialised weights"
        )
    return config


def _builtin_arch(model_cfg: dict[str, Any]) -> str:
    import open_clip

    for name in open_clip.list_models():
        if open_clip.get_model_config(name) == model_cfg:
            return str(name)
    return "custom"


def _hub_reachable() -> bool:
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname or "", url.port or 443), timeout=HUB_PROBE_TIMEOUT_S):
            return True
    except OSError:
        return False


@dataclass(frozen=True)
class _Source:
    name: str  # what open_clip.create_model takes
    pretrained: str | None  # its `pretrained` argument
    arch: str  # reported to clients
    reported: str  # reported to clients as `pretrained`
    model_cfg: dict[str, Any]
    files: tuple[Path, ...] = ()  # see LoadedModel.source_files


def _source(settings: Settings) -> _Source:
    import open_clip

    if settings.model_dir is not None:
        config = _read_dir_config(settings.model_dir)
        model_cfg = config["model_cfg"]
        arch = str(config.get("arch") or _builtin_arch(model_cfg))
        model_dir = settings.model_dir
        weights = tuple(model_dir / name for name in WEIGHT_FILES if (model_dir / name).is_file())
        files = (model_dir / "open_clip_config.json", *weights)
        return _Source(f"local-dir:{model_dir}", None, arch, str(model_dir), model_cfg, files)
    if settings.arch is None:
        raise ModelLoadError("no model: pass --model_dir (or mount one at /mnt/models) or --arch")
    model_cfg = open_clip.get_model_config(settings.arch)
    if model_cfg is None:
        raise ModelLoadError(f"unknown open_clip architecture {settings.arch!r}")
    pretrained = settings.pretrained
    if pretrained is None:
        raise ModelLoadError(f"--arch {settings.arch} needs --pretrained TAG, a checkpoint file, or 'none'")
    if pretrained == "none":
        return _Source(settings.arch, None, settings.arch, "none", model_cfg)
    if Path(pretrained).is_file():
        return _Source(settings.arch, pretrained, settings.arch, pretrained, model_cfg, (Path(pretrained),))
    tags = open_clip.list_pretrained_tags_by_model(settings.arch)
    if pretrained not in tags:
        raise ModelLoadError(
            f"{pretrained!r} is neither a checkpoint file nor a pretrained tag of {settings.arch} "
            f"(tags: {', '.join(tags) or 'none'})"
        )
    if not _hub_reachable():
        from huggingface_hub import constants

        constants.HF_HUB_OFFLINE = True  # use the local cache only; fail at once instead of retrying
    return _Source(settings.arch, pretrained, settings.arch, pretrained, model_cfg)


@contextmanager
def _open_clip_logs_muted() -> Iterator[None]:
    """open_clip and the hub client log on the root logger; failures reach the caller as exceptions."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        root.setLevel(level)


RANDOM_WEIGHTS_SEED = 0


def load_model(settings: Settings) -> LoadedModel:
    """Build the model in eval mode on the configured device and precision."""
    import open_clip
    from open_clip.transform import PreprocessCfg, image_transform_v2

    from .text_encoding import can_trim

    device = resolve_device(settings.device)
    precision = resolve_precision(settings.precision, device)
    if precision == "int8" and device.type != "cpu":
        raise ModelLoadError(f"--precision int8 runs on a CPU only, not {device.type}")
    src = _source(settings)
    try:
        with _open_clip_logs_muted(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_WEIGHTS_SEED)  # what `--pretrained none` draws; the caller's RNG is kept
            model = open_clip.create_model(
                src.name,
                pretrained=src.pretrained,
                precision="fp32" if precision == "int8" else precision,  # quantized by the engine
                device=device,
            )
            tokenizer = open_clip.get_tokenizer(src.name)
    except Exception as e:
        raise ModelLoadError(f"cannot load {src.name} (pretrained={src.reported}): {e}") from e
    model.eval()
    dtype = next(model.parameters()).dtype
    preprocess = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
    with torch.inference_mode():
        logit_scale = float(model.logit_scale.float().exp().item())
    return LoadedModel(
        model=model,
        preprocess=preprocess,
        tokenizer=tokenizer,
        arch=src.arch,
        pretrained=src.reported,
        embed_dim=int(src.model_cfg["embed_dim"]),
        logit_scale=logit_scale,
        device=device,
        dtype=dtype,
        source_files=src.files,
        preprocess_cfg=dict(model.visual.preprocess_cfg),
        trim=can_trim(model),
    )
