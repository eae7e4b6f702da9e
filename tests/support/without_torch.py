"""Run a module as `python -m MODULE ARGS...` does, in a process where torch, torchvision and open_clip
cannot be imported, as in the CPU predictor image, which does not install them:

    python tests/support/without_torch.py predictors.image --model_dir BUNDLE_DIR

A `None` in `sys.modules` makes `import` raise ImportError and `importlib.util.find_spec` answer None,
which is how the predictors find out whether torch is installed.
"""

import runpy
import sys
from pathlib import Path

BLOCKED = ("torch", "torchvision", "open_clip")

if __name__ == "__main__":
    sys.path[0] = str(Path(__file__).resolve().parents[2])  # the repository, as `python -m` from it
    for name in BLOCKED:
        sys.modules[name] = None  # type: ignore[assignment]
    module, *args = sys.argv[1:]
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)
