"""The bench's one seam to the predictors' engines: which choices exist, and the two towers of one.

The bench forces every engine and kernel choice in turn (the in-process limit, `bench.choices`) and
also runs the default (`auto`), as the predictors choose it at load. Everything it needs from
`predictors.engines` goes through this module, so that a renamed function is fixed here only:

- `labels(settings)`: the forced choices, by `str(Choice)` (e.g. "onnxruntime fp32", "torch/onednn fp32");
- `load(settings, label, cores)`: a fresh model and its two towers for that choice, `AUTO` for the default;
- `forcing_flags(label)`: the predictor flags that force that choice.

A label crosses process boundaries as text; each process maps it back to its `Choice` itself.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from predictors import engines
from predictors.loaded import LoadedModel
from predictors.loading import load_model
from predictors.settings import Settings, read_settings
from predictors.threads import ThreadSplit

AUTO = "auto"
Encode = Callable[[Any, bool], np.ndarray]  # (batch, alone) -> features, not normalised


@dataclass(frozen=True)
class Towers:
    """One choice's image and text towers: `image(pixels, alone)`, `text(token_ids, alone)`."""

    label: str  # the choice that runs (for AUTO: the one the predictors chose)
    loaded: LoadedModel
    image: Encode
    text: Encode


def settings(model_flags: str, device: str, precision: str = "auto") -> Settings:
    """The image predictor's settings for these model flags, device and precision."""
    return read_settings("image", [*shlex.split(model_flags), "--device", device, "--precision", precision])


def labels(s: Settings) -> list[str]:
    """Every choice that `auto` may pick from for these settings, each forced in turn by the bench."""
    return [str(c) for c in engines.candidates(s, torch.device(_device(s)))]


def load(s: Settings, label: str, cores: int) -> Towers:
    """A freshly loaded model and its towers for `label` (AUTO: the predictors' own choice at load).

    The towers' threads: `cores` for a pass alone, one for a pass beside others."""
    threads = ThreadSplit(workers=max(1, cores), total=cores, shared=1)
    loaded = load_model(s)
    if label == AUTO:
        (image, trial), (text, _) = (engines.choose(s, loaded, k, threads) for k in ("image", "text"))
        chosen = str(trial.choice)
    else:
        choice = next(c for c in engines.candidates(s, loaded.device) if str(c) == label)
        image, text = (engines.build(choice, loaded, k, threads) for k in ("image", "text"))
        chosen = label
    return Towers(chosen, loaded, image.encode, text.encode)


def forcing_flags(label: str) -> list[str]:
    """The predictor flags that force the choice `label`, e.g. "torch/onednn fp32"."""
    name, precision = label.rsplit(" ", 1)
    engine, _, kernels = name.partition("/")
    kernels = kernels or ("torch" if engine == "torch" else "auto")
    return ["--engine", engine, "--cpu_kernels", kernels, "--precision", precision]


def _device(s: Settings) -> str:
    return s.device if s.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
