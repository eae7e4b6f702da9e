"""A tower on ONNX Runtime (CPU execution provider), from the tower's ONNX file.

An ONNX Runtime session fixes its intra-op thread count when it is made, so the tower keeps sessions
per thread count (`split.total` for a pass alone, `split.shared` for passes that overlap), made when
first needed and dropped when a new split no longer uses their count. A one-thread session runs each
call on the calling thread, so it serves any number of passes at once; a session with more threads owns
one pool of them, so each pass that runs beside another takes a session of its own. Each session holds
its own copy of the weights (ONNX Runtime repacks them per session); `use` keeps only the counts in use.
ONNX Runtime's usage telemetry is turned off before the first session, as OpenVINO's is
(`openvino_tower`): a predictor sends nothing anywhere but its answers.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..threads import ThreadSplit
from .choice import Choice
from .tower import INPUT, OUTPUT, Pool, Tower


class OrtTower(Tower):
    """A tower on ONNX Runtime's CPU execution provider."""

    def __init__(self, choice: Choice, kind: str, trim: bool, split: ThreadSplit, path: Path) -> None:
        import onnxruntime  # fails here, at build, where it is not installed

        onnxruntime.disable_telemetry_events()
        super().__init__(choice, kind, trim, split)
        self.path = path
        self._pools: dict[int, Pool] = {}
        self._lock = threading.Lock()

    def _session(self, threads: int) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only: it warns about initializers it folds away
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def _pool(self, threads: int) -> Pool:
        with self._lock:
            pool = self._pools.get(threads)
            if pool is None:
                pool = Pool(lambda: self._session(threads), shared=threads == 1)
                self._pools[threads] = pool
            return pool

    def run(self, x: np.ndarray, alone: bool) -> np.ndarray:
        feed = self.numpy_input(x)
        with self._pool(self.threads(alone)).session() as session:
            (out,) = session.run([OUTPUT], {INPUT: feed})
        return out

    def prepare(self) -> None:
        for threads, passes in self.passes_at_once().items():
            self._pool(threads).fill(passes)

    def use(self, split: ThreadSplit) -> None:
        super().use(split)
        with self._lock:
            for count in set(self._pools) - {split.total, split.shared}:
                del self._pools[count]

    def close(self) -> None:
        with self._lock:
            self._pools.clear()
