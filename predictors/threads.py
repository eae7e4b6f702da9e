"""How many forward passes run at once, and on how many torch threads each.

On a CPU two 1-thread passes beat one 2-thread pass under load (no OpenMP barrier waits): see
`predictors.settings`. A pass with nothing beside it gets every thread, if that pays for the model:
`ThreadSplit.fastest` times both at load.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

# On a CPU, two 1-thread passes beat one 2-thread pass (no barrier waits): see predictors.settings.
CPU_FORWARD_WORKERS = 2
# A pass alone keeps every thread only when a 1-item pass takes at least SHORT_PASS_S on one thread and
# is at least THREADS_PAY_OFF times faster on all of them. At load nothing else runs; in service the
# other predictor usually runs a pass at the same time, and a short pass overlaps it entirely: then the
# hand-offs between threads cost more than they save. Measured on 2 cores, image tower, 1-item pass:
# ViT-B-32 125 vs 76 ms (kept: /compare/ p50 at concurrency 1 119 vs 127 ms on 1 thread);
# the demo model 1.8 vs 1.5 ms (cut: /compare/ p50 9.1 vs 12.7 ms on 2 threads).
SHORT_PASS_S = 0.02
THREADS_PAY_OFF = 1.2
PROBE_ROUNDS = 3


@dataclass(frozen=True)
class ThreadSplit:
    """Forward passes at once, and torch threads of each: `total` alone, else `shared`.

    `probe`: `total` is torch's default, not the user's; `fastest` may cut it to 1 after timing passes.
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
        """This split, or 1 thread everywhere if `one_pass` is short or not much faster on `total`
        threads (see SHORT_PASS_S)."""
        if not self.probe:
            return self
        seconds: dict[int, list[float]] = {1: [], self.total: []}
        before = torch.get_num_threads()
        try:
            for _ in range(PROBE_ROUNDS):
                for threads, times in seconds.items():
                    torch.set_num_threads(threads)
                    started = time.perf_counter()
                    one_pass()
                    times.append(time.perf_counter() - started)
        finally:
            torch.set_num_threads(before)
        one, every = (statistics.median(seconds[n]) for n in (1, self.total))
        logger.info(
            "a 1-item pass alone: %.1f ms on 1 thread, %.1f ms on %d", one * 1e3, every * 1e3, self.total
        )
        pays = one >= SHORT_PASS_S and one >= THREADS_PAY_OFF * every
        return self if pays else ThreadSplit(self.workers, 1, 1)

    def before_pass(self, alone: bool) -> None:
        """Set the calling worker thread's torch thread count for its next pass."""
        wanted = self.total if alone else self.shared
        if torch.get_num_threads() != wanted:  # per OS thread; setting it costs ~0.1 ms
            torch.set_num_threads(wanted)
