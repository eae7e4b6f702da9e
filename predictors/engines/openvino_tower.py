"""A tower on OpenVINO's CPU plugin, compiled from the tower's ONNX file.

A compiled model fixes its threads when it is compiled: `INFERENCE_NUM_THREADS` shared among
`NUM_STREAMS` streams, each stream running one inference at a time. The tower compiles one model per
thread count it runs at (`split.total` for a pass alone, with one stream; `split.shared` for passes that
overlap, with a stream per forward worker), each inference on an infer request of its own, and drops a
compiled model when a new split no longer uses its count. The streams of one compiled model share its
weights. Inference is fp32 (`INFERENCE_PRECISION_HINT`, accuracy mode): on CPUs with bf16 or AMX,
OpenVINO would otherwise lower the precision by itself.

`import openvino` imports its model-conversion tools, which send usage telemetry to Intel from a forked
process unless a consent file in the home directory says no. A model server sends nothing anywhere, so
the telemetry package is blocked before that import (the tools then take their built-in stub).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..threads import ThreadSplit
from .choice import Choice
from .tower import Pool, Tower

_core: Any = None
_core_lock = threading.Lock()


def openvino() -> ModuleType:
    """`import openvino`, with its usage telemetry blocked (see above)."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
    import openvino

    return openvino


def core() -> Any:
    """The process's one OpenVINO runtime."""
    global _core
    with _core_lock:
        if _core is None:
            _core = openvino().Core()
        return _core


class OpenVinoTower(Tower):
    """A tower on OpenVINO's CPU plugin."""

    def __init__(self, choice: Choice, kind: str, trim: bool, split: ThreadSplit, path: Path) -> None:
        core()  # fails here, at build, where OpenVINO is not installed
        super().__init__(choice, kind, trim, split)
        self.path = path
        self._compiled: dict[tuple[int, int], tuple[Any, Pool]] = {}  # (threads, streams)
        self._lock = threading.Lock()

    def _requests(self, threads: int) -> Pool:
        streams = self.passes_at_once()[threads]
        with self._lock:
            if (threads, streams) not in self._compiled:
                config = {
                    "NUM_STREAMS": streams,
                    "INFERENCE_NUM_THREADS": threads * streams,
                    "INFERENCE_PRECISION_HINT": "f32",
                    "EXECUTION_MODE_HINT": "ACCURACY",
                    "ENABLE_CPU_PINNING": False,  # the cores are shared with the other passes and processes
                }
                compiled = core().compile_model(core().read_model(str(self.path)), "CPU", config)
                self._compiled[threads, streams] = (compiled, Pool(compiled.create_infer_request, False))
            return self._compiled[threads, streams][1]

    def run(self, x: np.ndarray, alone: bool) -> np.ndarray:
        feed = self.numpy_input(x)
        with self._requests(self.threads(alone)).session() as request:
            request.infer({0: feed}, share_inputs=True)
            out = request.get_output_tensor(0).data.copy()  # the request's buffer is reused by its next call
        return out

    def prepare(self) -> None:
        for threads, passes in self.passes_at_once().items():
            self._requests(threads).fill(passes)

    def use(self, split: ThreadSplit) -> None:
        super().use(split)
        with self._lock:
            for key in set(self._compiled) - set(self.passes_at_once().items()):
                del self._compiled[key]

    def close(self) -> None:
        with self._lock:
            self._compiled.clear()
