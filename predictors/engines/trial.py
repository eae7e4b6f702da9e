"""Which candidate serves a tower: each one timed on the model itself at load.

What is timed is a pass as under load: the forward workers' passes at once (`split.workers` of them,
each on `split.shared` threads), each of the batch one worker takes from a full queue
(`ceil(max_batch_size / workers)` items), made smaller when a pass that big would take more than
PASS_S, so that the trial of a big model on few cores stays short, but not below MIN_ITEMS. Images
are random pixels at the model's input size; texts are captions of a usual length, run at their token
length as served. After one untimed step each (first passes allocate), every round times every
candidate once, the order rotating from round to round so that the machine's drift hits all alike;
each candidate keeps its best round (another process can only make a pass slower). A candidate whose
best is OUT_OF_RACE times the leader's after a round is not timed again: it cannot win, and the trial
of a big model stays short.

Before any timing, each candidate's features are compared with torch's own on the same inputs (two text
batches of different lengths, so that a length frozen into a converted graph shows): one whose cosine
falls below MIN_COSINE is dropped with a warning, as is one that fails to build or to run.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from ..loading import LoadedModel
from ..threads import ThreadSplit
from .choice import Choice
from .tower import Tower

ROUNDS = 3
PASS_S = 0.4
MIN_ITEMS = 2  # a 1-item pass is mostly fixed costs and can rank the engines otherwise than a batch
OUT_OF_RACE = 1.3  # a candidate this many times slower than the best after a round is timed no more
MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "bf16": 0.99, "int8": 0.99}
CAPTIONS = [
    "a photo of a dog playing with a red ball on the grass",
    "two people riding bicycles along a river at sunset",
    "a close-up of a bowl of ramen with an egg",
    "a diagram of the solar system",
    "an old wooden boat tied to a pier in the fog",
    "a cat sleeping on a laptop keyboard",
]
PARITY_TEXTS = (["a photo of a cat", CAPTIONS[1]], ["a diagram"])

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    """The choice, and how it was made: each timed candidate's best seconds, those dropped and why."""

    choice: Choice
    seconds: dict[Choice, float] = field(default_factory=dict)
    dropped: dict[Choice, str] = field(default_factory=dict)
    workload: str = ""  # what one timed step was
    how: str = "trial"  # "trial", or why there was none

    def __str__(self) -> str:
        """e.g. "onnxruntime fp32 41.2 ms, torch/onednn fp32 45.0 ms, openvino fp32 dropped"."""
        parts = [f"{c} {s * 1e3:.1f} ms" for c, s in sorted(self.seconds.items(), key=lambda cs: cs[1])]
        parts += [f"{c} dropped" for c in self.dropped]
        return ", ".join(parts) if len(self.seconds) > 1 else f"none ({self.how})"


def input_size(loaded: LoadedModel) -> tuple[int, int]:
    size: Any = loaded.model.visual.preprocess_cfg["size"]  # type: ignore[union-attr,index]
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


def inputs(loaded: LoadedModel, kind: str, n: int, seed: int = 0) -> torch.Tensor:
    """`n` items as the tower takes them: pixels, or the tokenizer's ids of captions."""
    if kind == "image":
        generator = torch.Generator().manual_seed(seed)
        return torch.randn(n, 3, *input_size(loaded), generator=generator)
    return loaded.tokenizer([CAPTIONS[(seed + i) % len(CAPTIONS)] for i in range(n)])


def parity_inputs(loaded: LoadedModel, kind: str) -> list[torch.Tensor]:
    if kind == "image":
        return [inputs(loaded, kind, 2, seed=1)]
    return [loaded.tokenizer(texts) for texts in PARITY_TEXTS]


class Parity:
    """Checks towers against `reference` (torch's own) on the parity inputs, whose reference features
    are computed once."""

    def __init__(self, reference: Tower, loaded: LoadedModel) -> None:
        self.reference = reference
        self.batches = parity_inputs(loaded, reference.kind)
        self._want: list[torch.Tensor] | None = None

    def min_cosine(self, tower: Tower) -> float:
        """The lowest cosine between `tower`'s and the reference's features (passes as in the trial:
        on the shared threads)."""
        if self._want is None:
            self._want = [self.reference.encode(x, False).float() for x in self.batches]
        lowest = 1.0
        for x, want in zip(self.batches, self._want, strict=True):
            got = tower.encode(x, False).float()
            if got.shape != want.shape:
                raise ValueError(f"features of shape {tuple(got.shape)}, torch's are {tuple(want.shape)}")
            lowest = min(lowest, float(torch.nn.functional.cosine_similarity(got, want, dim=-1).min()))
        return lowest

    def check(self, tower: Tower) -> None:
        """Raise ValueError when `tower`'s features are not torch's (`MIN_COSINE` of its precision)."""
        if tower is self.reference:
            return
        cosine = self.min_cosine(tower)
        floor = MIN_COSINE[tower.choice.precision]
        if not cosine >= floor:  # also NaN
            raise ValueError(f"its features differ from torch's (cosine {cosine:.6f} < {floor})")


def batch_size(reference: Tower, loaded: LoadedModel, split: ThreadSplit, per_worker: int) -> int:
    """The per-worker batch, or fewer items (at least MIN_ITEMS) where a pass of it would take more than
    PASS_S (judged from the reference's faster of two passes of a few items)."""
    k = min(per_worker, MIN_ITEMS)
    x = inputs(loaded, reference.kind, k)
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        reference.encode(x, False)
        seconds.append(time.perf_counter() - started)
    per_item = min(seconds) / k
    return min(per_worker, max(MIN_ITEMS, int(PASS_S / max(per_item, 1e-6))))


def time_towers(
    towers: dict[Choice, Tower], x: torch.Tensor, workers: int, rounds: int = ROUNDS
) -> dict[Choice, float]:
    """Each tower's best time of a step (`workers` passes of `x` at once) over `rounds` interleaved
    rounds, or over the rounds it ran before it fell out of the race."""
    order = list(towers)
    best = {c: float("inf") for c in order}
    pool = ThreadPoolExecutor(workers, thread_name_prefix="engine-trial") if workers > 1 else None

    def timed(tower: Tower) -> float:
        """`workers` passes at once; they overlap, so each runs on the shared threads."""
        started = time.perf_counter()
        if pool is None:
            tower.encode(x, False)
        else:
            for done in [pool.submit(tower.encode, x, False) for _ in range(workers)]:
                done.result()
        return time.perf_counter() - started

    try:
        for choice in order:  # untimed: a first pass on each session or stream allocates its buffers
            timed(towers[choice])
        for r in range(rounds):
            for choice in order[r % len(order) :] + order[: r % len(order)]:
                best[choice] = min(best[choice], timed(towers[choice]))
            leader = min(best.values())
            order = [c for c in order if best[c] <= OUT_OF_RACE * leader]
    finally:
        if pool is not None:
            pool.shutdown()
    return best
