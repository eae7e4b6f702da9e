"""Which candidate serves a tower: each one timed on the model itself at load, on two workloads.

- **under load**: the forward workers' passes at once (`split.workers` of them, each on `split.shared`
  threads), each of the batch one worker takes from a full queue (`ceil(max_batch_size / workers)`
  items), made smaller when a pass that big would take more than PASS_S, so that the trial of a big
  model on few cores stays short, but not below MIN_ITEMS;
- **alone**: one item, a pass with nothing beside it (on `split.total` threads), as a lone request
  runs; repeated within a step until the step lasts about ALONE_STEP_S, after one untimed pass. A
  short pass right after another candidate's passes, or after a batch of another shape, runs on cold
  caches, and engines differ in how much that costs them; in service a lone request follows the same
  engine's passes, so the trial times each candidate warm.

Images are random pixels at the model's input size; texts are captions of a usual length, run at their
token length as served. After one untimed step each (first passes allocate), every round times every
candidate once on each workload, the order rotating from round to round so that the machine's drift
hits all alike; each candidate keeps its best round per workload (another process can only make a
pass slower). Engines rank differently at one item and at a batch, so the winner is the candidate
whose worse workload is the least behind that workload's fastest (its `regret`): no workload the
predictor serves is left far from its best. A candidate whose regret is OUT_OF_RACE times the least
after a round, from the second on, is timed no more: it cannot win (its best of two rounds, so that
one round slowed by the machine does not put the fastest out). When the two best are within CLOSE of
each other after the rounds, or the workloads have different leaders, up to EXTRA_ROUNDS more rounds
time only those (`contenders`), so that neither a near tie nor a split is settled by one noisy round.
A round that other processes took the trial's CPUs in is timed again once they leave (`quiet`): best
of rounds discards a slow round, but not a trial whose every round overlaps another predictor's.

Before any timing, each candidate's features are compared with torch's own on the same inputs (two text
batches of different lengths, so that a length frozen into a converted graph shows): one whose cosine
falls below MIN_COSINE is dropped with a warning, as is one that fails to build or to run. An engine
bundle has no torch model: its reference is ONNX Runtime on the bundle's files, which were checked
against torch when the bundle was made.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..loaded import LoadedModel
from ..threads import ThreadSplit
from ..tokens import token_ids
from .choice import Choice
from .quiet import Quiet
from .tower import Tower

ROUNDS = 3
EXTRA_ROUNDS = 3
CLOSE = 1.03  # regrets this close to the best one's get the extra rounds
PASS_S = 0.4
ALONE_STEP_S = 0.02
MIN_ITEMS = 2  # a 1-item pass is mostly fixed costs and can rank the engines otherwise than a batch
OUT_OF_RACE = 1.3  # a candidate this many times slower than the best after a round is timed no more
RACE_FROM = 2  # the first round after which OUT_OF_RACE applies
MIN_COSINE = {"fp32": 0.9999, "fp16": 0.999, "bf16": 0.99, "int8": 0.99}
CAPTIONS = [
    "a photo of a dog playing with a red ball on the grass",
    "two people riding bicycles along a river at sunset",
    "a close-up of a bowl of ramen with an egg",
    "a diagram of the solar system",
    "an old wooden boat tied to a pier in the fog",
    "a cat sleeping on a laptop keyboard",
]
UNDER_LOAD, ALONE = "under load", "alone"  # the two workloads' names
PARITY_TEXTS = (["a photo of a cat", CAPTIONS[1]], ["a diagram"])

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    """The choice, and how it was made: each timed candidate's best seconds of a step under load and
    alone, those dropped and why."""

    choice: Choice
    seconds: dict[Choice, float] = field(default_factory=dict)  # under load
    dropped: dict[Choice, str] = field(default_factory=dict)
    workload: str = ""  # what one timed step was
    how: str = "trial"  # "trial", or why there was none
    alone_seconds: dict[Choice, float] = field(default_factory=dict)
    contention: str = ""  # how other processes on its CPUs delayed the timing (`Quiet`), if they did

    def __str__(self) -> str:
        """e.g. "onnxruntime fp32 41.2 ms (alone 3.10 ms), openvino fp32 45.0 ms (alone 3.02 ms),
        torch fp32 dropped": the least regret first (the one chosen); then the contention, if any."""
        times = {UNDER_LOAD: self.seconds, ALONE: self.alone_seconds}
        times = {w: t for w, t in times.items() if t}
        parts = [
            f"{c} {s * 1e3:.1f} ms"
            + (f" (alone {self.alone_seconds[c] * 1e3:.2f} ms)" if c in self.alone_seconds else "")
            for c, s in sorted(self.seconds.items(), key=lambda cs: regret(times, cs[0]))
        ]
        parts += [f"{c} dropped" for c in self.dropped]
        if len(self.seconds) <= 1:
            return f"none ({self.how})"
        return ", ".join(parts) + (f"; {self.contention}" if self.contention else "")


@dataclass(frozen=True)
class Workload:
    """One timed step: `workers` passes of `x` at once on the shared threads, or, `alone`, `repeat`
    passes of `x` one after another on every thread."""

    name: str
    x: np.ndarray
    workers: int = 1
    alone: bool = False
    repeat: int = 1


def regret(times: dict[str, dict[Choice, float]], choice: Choice) -> float:
    """How far `choice` is behind the fastest on its worse workload: 1.0 when it leads both."""
    return max(t[choice] / min(t.values()) for t in times.values())


def inputs(loaded: LoadedModel, kind: str, n: int, seed: int = 0) -> np.ndarray:
    """`n` items as the tower takes them: pixels, or the tokenizer's ids of captions."""
    if kind == "image":
        rng = np.random.default_rng(seed)
        return rng.standard_normal((n, 3, *loaded.image_size), dtype=np.float32)
    return token_ids(loaded.tokenizer, [CAPTIONS[(seed + i) % len(CAPTIONS)] for i in range(n)])


def parity_inputs(loaded: LoadedModel, kind: str) -> list[np.ndarray]:
    if kind == "image":
        return [inputs(loaded, kind, 2, seed=1)]
    return [token_ids(loaded.tokenizer, texts) for texts in PARITY_TEXTS]


def min_cosine(got: np.ndarray, want: np.ndarray) -> float:
    """The lowest cosine between matching rows of `got` and `want`."""
    got, want = got.astype(np.float64), want.astype(np.float64)
    norms = np.linalg.norm(got, axis=-1) * np.linalg.norm(want, axis=-1)
    return float(np.min((got * want).sum(axis=-1) / np.maximum(norms, 1e-12)))


class Parity:
    """Checks towers against `reference` (torch's own, or ONNX Runtime's for a bundle) on the parity
    inputs, whose reference features are computed once."""

    def __init__(self, reference: Tower, loaded: LoadedModel) -> None:
        self.reference = reference
        self.batches = parity_inputs(loaded, reference.kind)
        self._want: list[np.ndarray] | None = None

    def min_cosine(self, tower: Tower) -> float:
        """The lowest cosine between `tower`'s and the reference's features (passes as in the trial:
        on the shared threads)."""
        if self._want is None:
            self._want = [self.reference.encode(x, False) for x in self.batches]
        lowest = 1.0
        for x, want in zip(self.batches, self._want, strict=True):
            got = tower.encode(x, False)
            if got.shape != want.shape:
                raise ValueError(
                    f"features of shape {tuple(got.shape)}, {self.reference.choice}'s are {tuple(want.shape)}"
                )
            lowest = min(lowest, min_cosine(got, want))
        return lowest

    def check(self, tower: Tower) -> None:
        """Raise ValueError when `tower`'s features are not the reference's (`MIN_COSINE` of its
        precision)."""
        if tower is self.reference:
            return
        cosine = self.min_cosine(tower)
        floor = MIN_COSINE[tower.choice.precision]
        if not cosine >= floor:  # also NaN
            raise ValueError(
                f"its features differ from {self.reference.choice}'s (cosine {cosine:.6f} < {floor})"
            )


def batch_size(reference: Tower, loaded: LoadedModel, split: ThreadSplit, per_worker: int) -> int:
    """The per-worker batch, or fewer items (at least MIN_ITEMS) where a pass of it would take more than
    PASS_S (judged from the reference's faster of two passes of a few items)."""
    k = min(per_worker, MIN_ITEMS)
    per_item = _fastest(reference, inputs(loaded, reference.kind, k), False) / k
    return min(per_worker, max(MIN_ITEMS, int(PASS_S / max(per_item, 1e-6))))


def alone_repeat(reference: Tower, x: np.ndarray) -> int:
    """Passes of `x` alone in one step, so that the step lasts about ALONE_STEP_S (1 to 16)."""
    return min(16, max(1, round(ALONE_STEP_S / max(_fastest(reference, x, True), 1e-6))))


def _fastest(tower: Tower, x: np.ndarray, alone: bool) -> float:
    seconds = []
    for _ in range(2):
        started = time.perf_counter()
        tower.encode(x, alone)
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def time_towers(
    towers: dict[Choice, Tower], workloads: list[Workload], rounds: int = ROUNDS, quiet: Quiet | None = None
) -> dict[str, dict[Choice, float]]:
    """Per workload, each tower's best time of a step over `rounds` interleaved rounds (and the extra
    rounds of a near tie), or over the rounds it ran before it fell out of the race. A round that
    other processes intruded on is timed again once they leave (`quiet`; none: no check)."""
    quiet = quiet or Quiet(None)
    order = list(towers)
    best = {w.name: {c: float("inf") for c in order} for w in workloads}
    most = max(w.workers for w in workloads)
    pool = ThreadPoolExecutor(most, thread_name_prefix="engine-trial") if most > 1 else None

    def timed(tower: Tower, w: Workload) -> float:
        """One step; passes at once overlap, so each runs on the shared threads. A step alone follows
        one untimed pass of its own, as a lone request in service follows the engine's own passes."""
        if w.alone:
            tower.encode(w.x, w.alone)
        started = time.perf_counter()
        if pool is None or w.workers == 1:
            for _ in range(w.repeat):
                tower.encode(w.x, w.alone)
        else:
            for done in [pool.submit(tower.encode, w.x, w.alone) for _ in range(w.workers)]:
                done.result()
        return time.perf_counter() - started

    def one_round(r: int, racing: list[Choice]) -> None:
        while (times := clean_round(r, racing)) is None:
            pass
        for name, choice, seconds in times:
            best[name][choice] = min(best[name][choice], seconds)

    def clean_round(r: int, racing: list[Choice]) -> list[tuple[str, Choice, float]] | None:
        """The round's steps, or None when others intruded on a step, or on the round as a whole (many
        short steps, each too short for the counters to tell)."""
        start = quiet.start()
        times = []
        for choice in racing[r % len(racing) :] + racing[: r % len(racing)]:
            for w in workloads:
                step = quiet.start()
                times.append((w.name, choice, timed(towers[choice], w)))
                if quiet.again(step):
                    return None
        return None if quiet.again(start) else times

    try:
        start = quiet.start()
        for choice in order:  # untimed: a first pass on each session or stream allocates its buffers
            for w in workloads:
                timed(towers[choice], w)
        quiet.settle(start)
        for r in range(rounds):
            one_round(r, order)
            if r + 1 >= RACE_FROM:
                least = min(regret(best, c) for c in order)
                order = [c for c in order if regret(best, c) <= OUT_OF_RACE * least]
        for r in range(EXTRA_ROUNDS):
            close = contenders(best, order)
            if len(close) < 2:
                break
            one_round(r, close)
    finally:
        if pool is not None:
            pool.shutdown()
    return best


def contenders(times: dict[str, dict[Choice, float]], racing: list[Choice]) -> list[Choice]:
    """Those of `racing` the extra rounds time: the least regret and those within CLOSE of it, and the
    fastest on each workload. A split (one candidate leads under load, another alone) is decided by
    how far each is behind on its worse workload, and one round slowed by the machine on one of them
    flips it; so it gets the extra rounds however far apart the regrets are."""
    least = min(regret(times, c) for c in racing)
    leaders = {min(racing, key=t.__getitem__) for t in times.values()}
    return [c for c in racing if regret(times, c) <= CLOSE * least or c in leaders]


def pick(times: dict[str, dict[Choice, float]]) -> Choice:
    """The candidate with the least regret over the workloads."""
    return min(next(iter(times.values())), key=lambda c: regret(times, c))
