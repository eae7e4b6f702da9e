"""A tower of the loaded model on one engine: what every engine's tower answers to.

Inputs are numpy arrays (or anything `np.asarray` takes, a CPU tensor included), as the predictors hand
them over: for the image tower pixels [N, 3, H, W] as its preprocessing makes them, for the text tower
the tokenizer's ids [N, context]. The text tower runs at the batch's real
token length when `trim` (`predictors.text_encoding`): the ids are cut here, before any engine sees
them, so every engine runs the same length. Outputs are float32 arrays of features [N, D], not
normalised. Only the torch engine's tower imports torch.

Threads: a tower runs a pass on `split.total` threads when it is `alone`, else on `split.shared`
(`predictors.threads`); `use(split)` changes the split (the thread probe at load runs on one thread).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from ..threads import ThreadSplit
from ..tokens import token_length
from .choice import Choice

INPUT, OUTPUT = "input", "features"  # the names of an ONNX tower's input and output


class Tower(ABC):
    """One tower (`kind` "image" or "text") of one model, run by one `Choice`."""

    def __init__(self, choice: Choice, kind: str, trim: bool, split: ThreadSplit) -> None:
        self.choice = choice
        self.kind = kind
        self.trim = trim and kind == "text"
        self.split = split

    def encode(self, x: Any, alone: bool) -> np.ndarray:
        """Features of one batch; safe to call from several threads at once."""
        x = np.asarray(x)
        if self.trim:
            x = x[:, : token_length(x)]
        return self.run(x, alone)

    @abstractmethod
    def run(self, x: np.ndarray, alone: bool) -> np.ndarray:
        """Features of a batch as this engine takes it (text ids already cut to their length)."""

    def use(self, split: ThreadSplit) -> None:
        """Run the next passes with `split`."""
        self.split = split

    def prepare(self) -> None:  # noqa: B027 (a tower that makes nothing ahead has nothing to do)
        """Make now what the split's passes run on (sessions, compiled models), not at a request."""

    def close(self) -> None:  # noqa: B027 (a tower that holds nothing has nothing to release)
        """Release what the tower holds (sessions, compiled models); it is not used after."""

    def numpy_input(self, x: np.ndarray) -> np.ndarray:
        """`x` as the contiguous array an ONNX engine takes: token ids as int64, pixels as fp32."""
        return np.ascontiguousarray(x, dtype=np.int64 if self.kind == "text" else np.float32)

    def threads(self, alone: bool) -> int:
        return self.split.total if alone else self.split.shared

    def passes_at_once(self) -> dict[int, int]:
        """Thread count: how many passes may run at once on it (a pass alone is alone)."""
        if self.split.total == self.split.shared:
            return {self.split.total: self.split.workers}
        return {self.split.total: 1, self.split.shared: self.split.workers}


class Pool:
    """Sessions (or infer requests) made by `make`: one for every caller when `shared`, else one per
    concurrent pass, made when none is idle."""

    def __init__(self, make: Callable[[], Any], shared: bool) -> None:
        self._make = make
        self._shared = shared
        self._one: Any = None
        self._idle: list[Any] = []
        self._lock = threading.Lock()

    @contextmanager
    def session(self) -> Iterator[Any]:
        with self._lock:
            if self._shared:
                self._one = self._one or self._make()  # made under the lock: the others wait for it
                session = self._one
            else:
                session = self._idle.pop() if self._idle else None
        if session is None:
            session = self._make()
        try:
            yield session
        finally:
            if not self._shared:
                with self._lock:
                    self._idle.append(session)

    def fill(self, n: int) -> None:
        """Make sessions until `n` callers at once find one (one when shared)."""
        with self._lock:
            if self._shared:
                self._one = self._one or self._make()
                return
            missing = n - len(self._idle)
        made = [self._make() for _ in range(missing)]
        with self._lock:
            self._idle.extend(made)
