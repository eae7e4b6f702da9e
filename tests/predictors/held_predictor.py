"""A real `clip-text` predictor whose forward passes a test can slow down or hold, for liveness tests.

    python -m tests.predictors.held_predictor --model_dir DIR ...   (the flags of predictors.text)

Each forward pass first sleeps PASS_DELAY_S seconds (env; default 0), then waits as long as the file
named by HOLD_FILE (env) exists: a test wedges the predictor by creating that file and frees it by
removing it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from predictors.server import run
from predictors.text import ClipTextModel


class HeldTextModel(ClipTextModel):
    """`ClipTextModel` whose passes are delayed, and held while HOLD_FILE exists."""

    def encode(self, items: list[str], alone: bool) -> torch.Tensor:
        time.sleep(float(os.environ.get("PASS_DELAY_S", "0")))
        hold = Path(os.environ["HOLD_FILE"])
        while hold.exists():
            time.sleep(0.05)
        return super().encode(items, alone)


if __name__ == "__main__":
    run("text", HeldTextModel)
