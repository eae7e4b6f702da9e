"""How many forward passes run at once, and on how many torch threads each.

On a CPU two 1-thread passes beat one 2-thread pass under load (no OpenMP barrier waits): see
`predictors.settings`. A pass with nothing beside it gets every thread if the model is big enough to
gain from them: `ThreadSplit.fastest` times a 1-item pass on one thread at load.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

# On a CPU, two 1-thread passes beat one 2-thread pass (no barrier waits): see predictors.settings.
CPU_FORWARD_WORKERS = 2
# A pass alone keeps every thread only when a 1-item pass on one thread takes at least SHORT_PASS_S. In
# service the other predictor usually runs a pass at the same time; a short pass overlaps it entirely,
# and the hand-offs between threads then cost more than they save. Measured on 2 cores, image tower,
# 1-item pass on 1 / 2 threads: ViT-B-32 64 / 37 ms (all kept: /compare/ p50 at concurrency 1 67 vs
# 78 ms on 1 thread); the demo model 1.8 / 1.5 ms (cut to 1: p50 9.3 vs 12.5 ms on 2 threads). Only
# the 1-thread time is used, the fastest of PROBE_ROUNDS: other processes starting beside this one
# can only make a pass look longer, which keeps the threads (as before this probe), never cuts them.
SHORT_PASS_S = 0.02
PROBE_ROUNDS = 3


@dataclass(frozen=True)
class ThreadSplit:
    """Forward passes at once, and torch threads of each: `total` alone, else `shared`.

    `probe`: `total` is torch's default, not the user's; `fastest` may cut it to 1 after timing a pass.
    """

    workers: int
    total: int
    shared: int
    probe: bool = False

    @classmethod
    def of(cls, num_threads: int, forward_workers: int, device: torch.device) -> ThreadSplit:
        """`num_threads` (0: up to one per core) shared among `forward_workers` (0: auto)."""
        total = num_threads or torch.get_num_threads()
        workers = forward_workers or (1 if device.type == "cuda" else min(CPU_FORWARD_WORKERS, total))
        probe = num_threads == 0 and device.type == "cpu" and total > 1
        return cls(workers, total, max(1, total // workers), probe)

    def fastest(self, one_pass: Callable[[], object]) -> ThreadSplit:
        """This split, or 1 thread everywhere if `one_pass` on 1 thread is shorter than SHORT_PASS_S."""
        if not self.probe:
            return self
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            seconds = []
            for _ in range(PROBE_ROUNDS):
                started = time.perf_counter()
                one_pass()
                seconds.append(time.perf_counter() - started)
        finally:
            torch.set_num_threads(before)
        short = min(seconds) < SHORT_PASS_S
        logger.info(
            "a 1-item pass on 1 thread: %.1f ms; a pass alone gets %d thread(s)",
            min(seconds) * 1e3,
            1 if short else self.total,
        )
        return ThreadSplit(self.workers, 1, 1) if short else self

    def before_pass(self, alone: bool) -> None:
        """Set the calling worker thread's torch thread count for its next pass."""
        wanted = self.total if alone else self.shared
        if torch.get_num_threads() != wanted:  # per OS thread; setting it costs ~0.1 ms
            torch.set_num_threads(wanted)
