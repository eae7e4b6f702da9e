"""What runs a CLIP tower: torch, ONNX Runtime or OpenVINO, chosen at load by timing them on the model.

Which engine is fastest depends on the CPU (its vector extensions, its vendor's BLAS) and on the model,
so no choice is frozen in the code: at load, `choose` times every candidate the flags allow
(`choice.candidates`: torch with oneDNN or its own linear kernels, ONNX Runtime, OpenVINO) on the model
itself, on a pass like one under load (`trial`), checks that each gives torch's features, and keeps the
fastest. `--engine` and `--cpu_kernels` force a choice; a GPU, fp16 and bf16 run torch.

- `candidates(settings, device)`: the `Choice`s auto picks from, e.g. "onnxruntime fp32";
- `choose(settings, loaded, kind, threads)`: (the chosen `Tower`, the `Trial` that chose it);
- `build(choice, loaded, kind, threads)`: the `Tower` of one choice, untimed;
- `Tower.encode(x, alone)`: features of one batch (pixels, or the tokenizer's ids), not normalised.

ONNX Runtime and OpenVINO run the tower converted to ONNX at load (`onnx_export`, cached next to the
model where it can be).
"""

from __future__ import annotations

from .choice import Choice, candidates
from .load import build, choose, register
from .tower import Tower
from .trial import Trial

__all__ = ["Choice", "Tower", "Trial", "build", "candidates", "choose", "register"]
