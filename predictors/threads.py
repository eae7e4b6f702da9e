"""How many forward passes run at once, and on how many threads each (torch's, or the engine's:
`predictors.engines` runs a tower on `ThreadSplit.total` or `shared` threads).

The thread count is `--num_threads`, or else one per CPU the process may use: torch's default (one
per physical core, or OMP_NUM_THREADS) capped by the CPUs of `predictors.cpus` (affinity and the
container's CPU limit). On a CPU two passes, each on a share of the threads, beat one pass on all of
them under load (no OpenMP barrier waits): see `predictors.settings`. A pass with nothing beside it
gets every thread if the model is big enough to gain from them: `ThreadSplit.one_thread_if_short`
times a 1-item pass on one thread at load.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .cpus import CpuBudget, available_cpus

logger = logging.getLogger(__name__)

# On a CPU, two passes each on a share of the threads beat one pass on all of them: predictors.settings.
CPU_FORWARD_WORKERS = 2
# A pass alone keeps every thread only when a 1-item pass on one thread takes at least SHORT_PASS_S. In
# service the other predictor usually runs a pass at the same time; a short pass overlaps it entirely,
# and the hand-offs between threads then cost more than they save. The bound lies between the demo
# model's pass and ViT-B-32's (bench/results/predictor-measurements.md). Only the 1-thread time is
# used, the fastest of PROBE_ROUNDS: other processes starting beside this one can only make a pass look
# longer, which keeps the threads, never cuts them.
SHORT_PASS_S = 0.02
PROBE_ROUNDS = 3


@functools.cache
def torch_module() -> Any:
    """torch, or None where it is not installed (an engine bundle's image: the engines set their own
    threads per session, and there are no torch threads to set)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def set_torch_threads(count: int) -> None:
    """Set the calling OS thread's torch thread count, where torch is installed."""
    torch = torch_module()
    if torch is not None and torch.get_num_threads() != count:  # setting it is not free
        torch.set_num_threads(count)


def torch_threads() -> int | None:
    """The calling OS thread's torch thread count, or None without torch."""
    torch = torch_module()
    return None if torch is None else int(torch.get_num_threads())


@dataclass(frozen=True)
class ThreadCount:
    """Torch threads for the forward passes, and what set the number (logged, and in the model config)."""

    count: int
    source: str


def thread_count(num_threads: int, cpus: CpuBudget | None = None) -> ThreadCount:
    """`num_threads` as given, or for 0 torch's default capped by the CPUs this process may use."""
    if num_threads > 0:
        return ThreadCount(num_threads, "--num_threads")
    cpus = cpus or available_cpus()
    default = torch_threads()
    if default is None or cpus.count < default:
        return ThreadCount(cpus.count, cpus.source)
    return ThreadCount(default, "torch's default (one per physical core, or OMP_NUM_THREADS)")


@dataclass(frozen=True)
class ThreadSplit:
    """Forward passes at once, and torch threads of each: `total` alone, else `shared`.

    `probe`: `total` is a default, not the user's; `one_thread_if_short` may cut it to 1 after timing
    a pass. `source` says what set `total` (it does not take part in comparisons).
    """

    workers: int
    total: int
    shared: int
    probe: bool = False
    source: str = field(default="--num_threads", compare=False)

    @classmethod
    def of(
        cls, num_threads: int, forward_workers: int, device: Any, threads: ThreadCount | None = None
    ) -> ThreadSplit:
        """`threads` (default: `thread_count(num_threads)`) shared among `forward_workers` (0: auto)."""
        threads = threads or thread_count(num_threads)
        total = threads.count
        workers = forward_workers or (1 if device.type == "cuda" else min(CPU_FORWARD_WORKERS, total))
        probe = num_threads == 0 and device.type == "cpu" and total > 1
        return cls(workers, total, max(1, total // workers), probe, threads.source)

    def one_thread_if_short(self, one_pass: Callable[[], object]) -> ThreadSplit:
        """This split, or 1 thread everywhere if `one_pass` on 1 thread is shorter than SHORT_PASS_S."""
        if not self.probe:
            return self
        before = torch_threads()
        set_torch_threads(1)
        try:
            seconds = []
            for _ in range(PROBE_ROUNDS):
                started = time.perf_counter()
                one_pass()
                seconds.append(time.perf_counter() - started)
        finally:
            if before is not None:
                set_torch_threads(before)
        short = min(seconds) < SHORT_PASS_S
        logger.info(
            "a 1-item pass on 1 thread: %.1f ms; a pass alone gets %d thread(s)",
            min(seconds) * 1e3,
            1 if short else self.total,
        )
        source = f"{self.source}, cut to 1: a pass on one thread is short" if short else self.source
        return ThreadSplit(self.workers, 1, 1, source=source) if short else self

    def before_pass(self, alone: bool) -> None:
        """Set the calling worker thread's torch thread count for its next pass."""
        set_torch_threads(self.total if alone else self.shared)  # the count is per OS thread
