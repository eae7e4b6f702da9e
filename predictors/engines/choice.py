"""What may run a tower: an engine, the kernels of its linear layers and a precision, as the flags allow.

`candidates(settings, device)` lists the choices `--engine auto` times at load (`predictors.engines.trial`);
`--engine` and `--cpu_kernels` each narrow their own part of the list, so naming one forces it and
the rest is still chosen. Only what can run here is listed: an engine that is not installed, or oneDNN
in a torch build without it, is left out. The CPU fp32 path has every engine; a GPU, fp16 and bf16 run
torch; int8 (`--precision int8`, never the default) has the engines that quantize.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from ..loaded import resolve_precision
from ..settings import Settings

ENGINES = ("torch", "onnxruntime", "openvino")
INT8_ENGINES = ("torch", "onnxruntime")
PACKAGES = {"torch": "torch", "onnxruntime": "onnxruntime", "openvino": "openvino"}  # engine: its module


@dataclass(frozen=True)
class Choice:
    """One way to run a tower. `str()` is its label, e.g. "onnxruntime fp32", "torch/onednn fp32".

    `kernels`: what runs the linear layers: under torch "onednn" or "torch" (its own BLAS); under
    another engine the engine itself (its name)."""

    engine: str
    kernels: str
    precision: str  # fp32, fp16, bf16 or int8

    def __str__(self) -> str:
        name = f"torch/{self.kernels}" if self.engine == "torch" and self.kernels != "torch" else self.engine
        return f"{name} {self.precision}"


def installed(engine: str) -> bool:
    """Whether `engine` can be imported here."""
    return importlib.util.find_spec(PACKAGES[engine]) is not None


def _onednn() -> bool:
    from .. import onednn

    return onednn.available()


def candidates(settings: Settings, device: Any, torch_model: bool = True) -> list[Choice]:
    """Every choice `--engine auto` may pick from for these settings on `device`, as narrowed by
    `--engine` and `--cpu_kernels`; empty when the flags ask for what cannot run (see `why_none`).
    Without `torch_model` (an engine bundle) torch is no candidate: there is no torch model to run."""
    precision = resolve_precision(settings.precision, device)
    if device.type != "cpu" or precision in ("fp16", "bf16"):
        return [Choice("torch", "torch", precision)] if settings.engine in ("auto", "torch") else []
    out: list[Choice] = []
    for engine in INT8_ENGINES if precision == "int8" else ENGINES:
        if settings.engine not in ("auto", engine) or not installed(engine):
            continue
        if engine == "torch" and not torch_model:
            continue
        if engine != "torch":
            out.append(Choice(engine, engine, precision))
        elif precision != "fp32":
            out.append(Choice("torch", "torch", precision))
        else:
            for kernels in ("onednn", "torch"):
                if settings.cpu_kernels in ("auto", kernels) and (kernels == "torch" or _onednn()):
                    out.append(Choice("torch", kernels, precision))
    return out


def why_none(settings: Settings, device: Any, torch_model: bool = True) -> str:
    """One sentence on why `candidates` is empty for these settings."""
    precision = resolve_precision(settings.precision, device)
    engine = settings.engine
    if not torch_model and engine in ("auto", "torch"):
        if engine == "torch":
            return "--engine torch needs open_clip's model: an engine bundle runs on onnxruntime or openvino"
        return "an engine bundle runs on onnxruntime or openvino, and neither is installed"
    if device.type != "cpu" or precision in ("fp16", "bf16"):
        return f"--engine {engine} runs on a CPU at fp32 or int8 only; {device.type} {precision} runs torch"
    if precision == "int8" and engine not in INT8_ENGINES:
        return f"--engine {engine} has no int8 path (int8: {', '.join(INT8_ENGINES)})"
    if not installed(engine):
        return f"--engine {engine}: the {PACKAGES[engine]} package is not installed"
    return f"--cpu_kernels {settings.cpu_kernels}: this torch build lacks oneDNN"
