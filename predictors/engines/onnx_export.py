"""A tower converted to ONNX at load, for the engines that run ONNX (ONNX Runtime, and OpenVINO reads it).

The export is torch's TorchScript-based exporter (`dynamo=False`, opset 17) of the torch tower's own
forward (`predictors.engines.torch_tower.tower_module`), fp32, with dynamic axes: the batch for the image
tower; the batch and the token length for the text tower, whose forward reads the length from the ids'
shape only, so any length up to the context runs the same graph. One change, on a copy of the model:
`nn.MultiheadAttention`'s self-attention is traced as its two projections around
`scaled_dot_product_attention` (`predictors.quantize.LinearSelfAttention`, the same arithmetic, which
int8 also quantizes), because torch's own fixes the traced example's sequence length into a reshape.

Converting a big model takes a while, so the file is kept next to the model when that is possible: in
`.engine-cache/` of the directory the weights came from, when it is writable, named by a hash of the
weight and config files' contents, the torch and open_clip versions, the opset, the tower and its dynamic
axes; a later load of the same model finds it. A read-only model directory (a mounted volume), random
weights or a hub tag convert into a temporary directory of the process instead, removed at exit. Files
are written whole or not at all (a temporary name, then a rename), so replicas sharing a volume cannot
read a half-written one. Weights that come from no file (random weights) have no contents to key on:
each such model gets a file of its own, however many of them a process loads.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import logging
import os
import shutil
import tempfile
import threading
import time
import uuid
import warnings
import weakref
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..loaded import LoadedModel
from ..quantize import swap_attention
from ..text_encoding import token_length
from .torch_tower import shared_copy, tower_module
from .tower import INPUT, OUTPUT

OPSET = 17
FORMAT = "1"  # bumped when this module exports a different graph from the same model
CACHE_DIR = ".engine-cache"
# The caption the text tower is traced with: any ids do, the length stays a dynamic axis.
TRACE_TEXTS = ["a photo of a cat", "a diagram"]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_done: dict[str, Path] = {}  # cache key: the exported file, once per process
_temp: Path | None = None
# A key part for each live model whose weights come from no file (see `cache_key`).
_fileless: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()


def traceable(model: nn.Module) -> nn.Module:
    """A copy of `model`'s modules, sharing its weights, whose transformer blocks' self-attention is
    `quantize.LinearSelfAttention`: `model` itself is left as it is, and no weight is copied."""
    return swap_attention(shared_copy(model))


def dynamic_axes(kind: str, trim: bool) -> dict[str, dict[int, str]]:
    axes = {0: "batch", 1: "length"} if kind == "text" and trim else {0: "batch"}
    return {INPUT: axes, OUTPUT: {0: "batch"}}


def cache_key(loaded: LoadedModel, kind: str, trim: bool) -> str:
    """What the exported file depends on, hashed; the files' contents are read only when there are any.
    A model loaded from no file is told apart by a token of its own: its weights are its alone."""
    import open_clip

    digest = hashlib.sha256()
    axes = repr(dynamic_axes(kind, trim))
    parts = [FORMAT, str(OPSET), torch.__version__, open_clip.__version__, kind, axes]
    digest.update("\0".join(parts).encode())
    for path in loaded.source_files:
        stat = path.stat()
        digest.update(_file_digest(path, stat.st_size, stat.st_mtime_ns))
    if not loaded.source_files:
        digest.update(_fileless.setdefault(loaded.model, uuid.uuid4().hex).encode())
    return digest.hexdigest()[:24]


@functools.lru_cache(maxsize=8)
def _file_digest(path: Path, size: int, mtime_ns: int) -> bytes:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").digest()


def _temp_dir() -> Path:
    global _temp
    if _temp is None:
        _temp = Path(tempfile.mkdtemp(prefix="clip-engines-"))
        atexit.register(shutil.rmtree, _temp, ignore_errors=True)
    return _temp


def cache_dir(loaded: LoadedModel) -> Path | None:
    """`.engine-cache/` next to the model's weights, when it exists or can be made and is writable."""
    if not loaded.source_files:
        return None
    directory = loaded.source_files[-1].parent / CACHE_DIR
    try:
        directory.mkdir(exist_ok=True)
    except OSError:
        return None
    return directory if os.access(directory, os.W_OK) else None


def _example(model: nn.Module, tokenizer: Any, kind: str, trim: bool) -> torch.Tensor:
    if kind == "image":
        visual: Any = model.visual
        size: Any = getattr(visual, "image_size", None) or visual.preprocess_cfg["size"]
        height, width = (size, size) if isinstance(size, int) else size
        return torch.zeros(2, 3, height, width)
    tokens: torch.Tensor = tokenizer(TRACE_TEXTS)
    return tokens[:, : token_length(tokens)] if trim else tokens


def export(loaded: LoadedModel, kind: str, trim: bool, path: Path) -> None:
    """Write the loaded model's tower as ONNX to `path` (through a temporary file next to it)."""
    export_model(loaded.model, loaded.tokenizer, kind, trim, path)


def export_model(model: nn.Module, tokenizer: Any, kind: str, trim: bool, path: Path) -> Path:
    """Write `model`'s `kind` tower as ONNX to `path` (input `input`, output `features`; for text with
    `trim` the ids come cut to their real length, that axis dynamic); returns `path`."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    module = tower_module(traceable(model), kind, trim).eval()
    try:
        # The exporter warns about every Python number it traces as a constant; the shapes it must keep
        # dynamic are checked by the trial's parity inputs instead (`predictors.engines.trial`).
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (_example(model, tokenizer, kind, trim),),
                str(partial),
                dynamo=False,
                opset_version=OPSET,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes=dynamic_axes(kind, trim),
            )
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def onnx_file(loaded: LoadedModel, kind: str, trim: bool) -> Path:
    """The tower as an ONNX file: from the cache next to the model, else converted now (and cached)."""
    if loaded.dtype != torch.float32 or loaded.device.type != "cpu":
        raise ValueError(f"ONNX export takes a CPU fp32 model, not {loaded.device.type} {loaded.dtype}")
    key = cache_key(loaded, kind, trim)
    with _lock:
        if key in _done:
            return _done[key]
        cached = cache_dir(loaded)
        path = (cached or _temp_dir()) / f"{kind}-{key}.onnx"
        if path.is_file():
            logger.info("%s tower: ONNX from the cache, %s", kind, path)
        else:
            started = time.monotonic()
            try:
                export(loaded, kind, trim, path)
            except OSError:
                if cached is None:
                    raise
                path = _temp_dir() / path.name  # e.g. the volume filled up: convert for this process only
                export(loaded, kind, trim, path)
            where = "cached at" if cached is not None and path.parent == cached else "not cached, in"
            logger.info("%s tower converted to ONNX in %.1f s (%s %s)", kind, time.monotonic() - started,
                        where, path.parent)  # fmt: skip
        _done[key] = path
        return path


def int8_file(loaded: LoadedModel, kind: str, trim: bool) -> Path:
    """The tower's ONNX file quantized to int8 (`predictors.quantize.quantize_onnx`), beside the fp32 one
    (cached where that is)."""
    from ..quantize import quantize_onnx

    fp32 = onnx_file(loaded, kind, trim)
    path = fp32.with_name(f"{fp32.stem}-int8.onnx")
    with _lock:
        if not path.is_file():
            partial = path.with_name(f"{path.name}.{os.getpid()}.partial.onnx")
            try:
                quantize_onnx(fp32, partial)
                partial.replace(path)
            finally:
                partial.unlink(missing_ok=True)
    return path
