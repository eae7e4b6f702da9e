"""The bench's one seam to the predictors' engines: which choices exist, and the two towers of one.

The bench forces every engine and kernel choice in turn (the in-process limit, `bench.choices`) and
also runs the default (`auto`), as the predictors choose it at load. Everything it needs from
`predictors.engines` goes through this module, so that a renamed function is fixed here only:

- `labels(settings)`: the forced choices, by `str(Choice)` (e.g. "onnxruntime fp32", "torch/onednn fp32");
- `load(settings, label, cores)`: a fresh model and its two towers for that choice, `AUTO` for the default.

A label crosses process boundaries as text; each process maps it back to its `Choice` itself.

Where `predictors.engines` is absent (before the engines branch is merged) a STAND-IN knows only what
the predictors have without it: torch's own kernels ("torch fp32"), oneDNN linear layers
("torch/onednn fp32"), their default (`--cpu_kernels`), and torch dynamic int8 linear layers.
"""

from __future__ import annotations

import importlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from predictors.loading import LoadedModel, load_model, resolve_precision
from predictors.settings import PRECISIONS, Settings, read_settings
from predictors.text_encoding import can_trim, encode_text
from predictors.threads import ThreadSplit

AUTO = "auto"
Encode = Callable[[torch.Tensor, bool], torch.Tensor]  # (batch, alone) -> features, not normalised


def _contract() -> Any | None:
    try:
        return importlib.import_module("predictors.engines")
    except ImportError:
        return None


@dataclass(frozen=True)
class Towers:
    """One choice's image and text towers: `image(pixels, alone)`, `text(token_ids, alone)`."""

    label: str  # the choice that runs (for AUTO: the one the predictors chose)
    loaded: LoadedModel
    image: Encode
    text: Encode


def settings(model_flags: str, device: str, precision: str = "auto") -> Settings:
    """The image predictor's settings for these model flags, device and precision."""
    argv = [*shlex.split(model_flags), "--device", device]
    if precision in PRECISIONS:
        argv += ["--precision", precision]
    s = read_settings("image", argv)
    return s if precision in PRECISIONS else replace(s, precision=precision)  # STAND-IN: int8 not a flag yet


def labels(s: Settings) -> list[str]:
    """Every choice that `auto` may pick from for these settings, each forced in turn by the bench."""
    engines = _contract()
    if engines is not None:
        return [str(c) for c in engines.candidates(s, torch.device(_device(s)))]
    if s.precision == "int8":
        return ["torch int8"]
    if _device(s) != "cpu" or s.precision not in ("auto", "fp32"):
        return [f"torch {resolve_precision(s.precision, torch.device(_device(s)))}"]
    return ["torch fp32", "torch/onednn fp32"]


def load(s: Settings, label: str, cores: int) -> Towers:
    """A freshly loaded model and its towers for `label` (AUTO: the predictors' own choice at load).

    The towers' threads: `cores` for a pass alone, one for a pass beside others."""
    engines = _contract()
    threads = ThreadSplit(workers=max(1, cores), total=cores, shared=1)
    if engines is not None:
        loaded = load_model(s)
        if label == AUTO:
            (image, trial), (text, _) = (engines.choose(s, loaded, k, threads) for k in ("image", "text"))
            chosen = str(getattr(trial, "choice", trial))
        else:
            choice = next(c for c in engines.candidates(s, loaded.device) if str(c) == label)
            image, text = (engines.build(choice, loaded, k, threads) for k in ("image", "text"))
            chosen = label
        return Towers(chosen, loaded, image.encode, text.encode)
    return _stand_in(s, label, threads)


def _device(s: Settings) -> str:
    return s.device if s.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")


def _stand_in(s: Settings, label: str, threads: ThreadSplit) -> Towers:
    """STAND-IN until the engines branch: torch eager, torch/oneDNN, torch dynamic int8."""
    int8 = s.precision == "int8"
    if int8:
        s = replace(s, precision="fp32", cpu_kernels="torch")
    elif label != AUTO:
        s = replace(s, cpu_kernels="onednn" if label.startswith("torch/onednn") else "torch")
    loaded = load_model(s)
    model = loaded.model
    if int8:
        # The transformer blocks' MLPs only: elsewhere open_clip reads Linear weights as tensors.
        for mlp in [m for name, m in model.named_modules() if name.endswith(".mlp")]:
            torch.ao.quantization.quantize_dynamic(mlp, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
        for transformer in [m for name, m in model.named_modules() if name.endswith("transformer")]:
            transformer.get_cast_dtype = lambda: torch.float32  # it reads an MLP weight, now a method
    trim = can_trim(model)
    precision = "int8" if int8 else resolve_precision(s.precision, loaded.device)

    def image(x: torch.Tensor, alone: bool) -> torch.Tensor:
        threads.before_pass(alone)
        with torch.inference_mode():
            return model.encode_image(x.to(loaded.device, loaded.dtype))  # type: ignore[operator]

    def text(tokens: torch.Tensor, alone: bool) -> torch.Tensor:
        threads.before_pass(alone)
        with torch.inference_mode():
            return encode_text(model, tokens.to(loaded.device), trim)

    kernels = "/onednn" if loaded.kernels == "onednn" else ""
    return Towers(f"torch{kernels} {precision}", loaded, image, text)
