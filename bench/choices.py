"""The default choice against every forced one: is `auto` within 3% of the best, on this CPU?

    python -m bench.choices --model-flags "--arch ViT-B-32 --pretrained none"

For each tower, loads the predictor's own model (`clip-image`, `clip-text`) as `load()` does it (its
threads and their probe, the engine trial) once with the default flags and once per forced engine and
kernel choice, and times the two workloads a predictor serves, which the trial at load weighs too
(`predictors.engines.trial`): **under load**, its forward workers' passes at once, each a worker's share
of a full batch (at most `--batch` items); **alone**, one item in a pass with nothing beside it, on
every thread the predictor gives such a pass. Only the tower is timed (pixels and token ids are prepared
once): that is where the choices differ. Each model lives in a process of its own, as in a predictor:
models loaded side by side in one process slow each other down unevenly (the same engine ran at half
its rate beside four other models). Every round runs every choice once, one process at a time, in an
order that changes from round to round (`balanced_order`), so that the machine's drift and what one
process leaves behind for the next hit all alike. Items/s per choice
are medians over the rounds; the verdict compares the default with the best forced choice, per tower and
workload, by the median of their ratios round by round, with an interval for it: on a machine whose
speed drifts by tens of percent from one second to the next, a default below 3% is slower beyond the
noise only when the whole interval is. A workload on one thread runs pinned to one CPU, the same for
every choice (`pin`). Prints one JSON object; `bench.run` runs it per model.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import os
import shlex
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from bench import engines
from bench.decoding import LIMIT
from bench.payloads import distinct_text, photos
from predictors.image import ClipImageModel
from predictors.model import ClipModel
from predictors.preprocess import decode_image
from predictors.settings import read_settings
from predictors.text import ClipTextModel
from predictors.tokens import token_ids

WITHIN = 0.97  # the default may be at most 3% slower than the best forced choice


@dataclass(frozen=True)
class Workload:
    """One timed step: `workers` passes of `x` at once (`alone` false), or one pass alone."""

    name: str
    x: np.ndarray
    workers: int
    alone: bool

    def describe(self, threads: int) -> str:
        if self.alone:
            return f"{len(self.x)} item alone on {threads} thread(s)"
        return f"{self.workers} pass(es) at once of {len(self.x)} item(s) on {threads} thread(s) each"


def median_interval(values: list[float], level: float = 0.9) -> tuple[float, float, float]:
    """A distribution-free interval for the median of `values`: order statistics k and n+1-k, k the
    largest whose binomial tail leaves at least `level` inside. Returns (low, high, coverage); with too
    few values for `level`, the range and the coverage it has."""
    x, n = sorted(values), len(values)
    tail = [math.comb(n, i) / 2**n for i in range(n + 1)]  # P(Binomial(n, 1/2) = i)
    k = 1
    while k < n // 2 and 1 - 2 * sum(tail[: k + 1]) >= level:
        k += 1
    return x[k - 1], x[n - k], 1 - 2 * sum(tail[:k])


def verdict(rates: dict[str, list[float]]) -> dict[str, Any]:
    """Medians of each choice's rounds, and the default (`engines.AUTO`) over the best forced one: the
    median of the rounds' ratios (both ran in each round) and its interval (`median_interval`)."""
    medians = {label: statistics.median(r) for label, r in rates.items()}
    forced = {label: m for label, m in medians.items() if label != engines.AUTO}
    best = max(forced, key=forced.__getitem__)
    paired = [a / b for a, b in zip(rates[engines.AUTO], rates[best], strict=True)]
    ratio = statistics.median(paired)
    low, high, coverage = median_interval(paired)
    return {
        "items_per_s": medians,
        "best_forced": best,
        "default_over_best": ratio,
        "interval": [low, high],
        "interval_coverage": coverage,
        "passed": ratio >= WITHIN,
        "slower_beyond_noise": high < WITHIN,
    }


def load(kind: str, flags: list[str], label: str) -> ClipModel[Any]:
    """The `kind` predictor's model, loaded with the default choice (`engines.AUTO`) or `label` forced."""
    forcing = [] if label == engines.AUTO else engines.forcing_flags(label)
    settings = read_settings(kind, [*flags, *forcing])  # type: ignore[arg-type]
    model: ClipModel[Any] = ClipImageModel(settings) if kind == "image" else ClipTextModel(settings)
    model.load()
    return model


def _inputs(model: ClipModel[Any], n: int) -> np.ndarray:
    if isinstance(model, ClipTextModel):
        return token_ids(model.loaded.tokenizer, [distinct_text(i) for i in range(n)])
    assert isinstance(model, ClipImageModel)
    images = [decode_image(f, LIMIT, i, None) for i, f in enumerate(photos(n))]
    return np.stack([model.transform(image) for image in images])  # as the predictor preprocesses


def workloads(model: ClipModel[Any], batch: int) -> list[Workload]:
    """The model's two workloads, as its own settings and threads make them."""
    workers = model.threads.workers
    n = min(batch, -(-model.settings.max_batch_size // workers))
    return [
        Workload("under load", _inputs(model, n), workers, False),
        Workload("alone", _inputs(model, 1), 1, True),
    ]


def _step(model: ClipModel[Any], w: Workload, pool: ThreadPoolExecutor) -> None:
    if w.workers == 1:
        model.tower.encode(w.x, w.alone)
    else:
        for done in [pool.submit(model.tower.encode, w.x, False) for _ in range(w.workers)]:
            done.result()


def _rate(model: ClipModel[Any], w: Workload, pool: ThreadPoolExecutor, min_s: float) -> float:
    """Items/s of repeated steps over at least `min_s` seconds, after one untimed step: a first pass
    at a new shape allocates, and the process before it on the CPU left the caches holding its own
    model."""
    _step(model, w, pool)
    steps, started = 0, time.perf_counter()
    while steps == 0 or time.perf_counter() - started < min_s:
        _step(model, w, pool)
        steps += 1
    return steps * w.workers * len(w.x) / (time.perf_counter() - started)


class Isolated:
    """One choice's model, loaded in a process of its own (`_serve`), timed on request."""

    def __init__(self, kind: str, flags: list[str], label: str, batch: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._proc = context.Process(target=_serve, args=(child, kind, flags, label, batch), daemon=True)
        self._proc.start()
        child.close()
        ready = self._receive()
        self.chose: str = ready["chose"]
        self.workloads: list[str] = ready["workloads"]  # each described with the model's own threads

    def _receive(self) -> Any:
        try:
            message = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the model's process exited with {self._proc.exitcode}") from None
        if isinstance(message, dict) and "error" in message:
            raise RuntimeError(message["error"])
        return message

    def rate(self, workload: int, min_s: float) -> float:
        self._conn.send((workload, min_s))
        return float(self._receive())

    def close(self) -> None:
        self._conn.send(None)
        self._proc.join(60)
        if self._proc.is_alive():
            self._proc.kill()


def _serve(conn: Connection, kind: str, flags: list[str], label: str, batch: int) -> None:
    """The model's process: load, say what it chose, then time workloads until told to stop."""
    try:
        model = load(kind, flags, label)
    except Exception as e:
        conn.send({"error": f"{label}: {type(e).__name__}: {e}"})
        return
    steps = workloads(model, batch)
    threads = [model.threads.total if w.alone else model.threads.shared for w in steps]
    described = [w.describe(n) for w, n in zip(steps, threads, strict=True)]
    cpus = os.sched_getaffinity(0)
    with ThreadPoolExecutor(model.threads.workers) as pool:
        conn.send({"chose": str(model.trial.choice), "workloads": described})
        while (request := conn.recv()) is not None:
            i, min_s = request
            one_thread = steps[i].workers == 1 and threads[i] == 1
            pin({max(cpus)} if one_thread else cpus)
            conn.send(_rate(model, steps[i], pool, min_s))
    model.stop()


def pin(cpus: set[int]) -> None:
    """Let every thread of this process run only on `cpus`. A one-thread workload runs on the same CPU
    for every choice: the vCPUs of a virtual machine differ in speed from second to second (what shares
    their host cores), so a choice that happened to land on the slower one would lose by placement."""
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that has just ended
            os.sched_setaffinity(int(task), cpus)


def balanced_order(labels: list[str], r: int) -> list[str]:
    """The order of round `r`: rows of a Williams design, in which every choice runs first, last and
    right after every other choice equally often over a full cycle (len(labels) rounds, twice that for
    an odd count). A plain rotation keeps each choice behind the same neighbour in every round, so
    whatever one process leaves behind on the CPU would fall on one choice alone."""
    n = len(labels)
    first = [0]
    for k in range(1, n):  # 0, 1, n-1, 2, n-2, ...
        first.append((k + 1) // 2 if k % 2 else n - k // 2)
    rows = [[(i + shift) % n for i in first] for shift in range(n)]
    if n % 2:
        rows += [row[::-1] for row in rows]
    return [labels[i] for i in rows[r % len(rows)]]


def compare(models: dict[str, Isolated], kind: str, rounds: int, min_s: float) -> dict[str, Any]:
    """Per workload of the `kind` tower, the interleaved rates and the verdict."""
    labels = list(models)
    out: dict[str, Any] = {}
    default = models[engines.AUTO]
    for i, name in enumerate(("under load", "alone")):
        rates: dict[str, list[float]] = {label: [] for label in labels}
        for r in range(rounds):
            for label in balanced_order(labels, r):
                rates[label].append(models[label].rate(i, min_s))
        out[f"{kind}, {name}"] = {**verdict(rates), "workload": default.workloads[i], "rounds": rates}
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model-flags", required=True, help="predictor flags selecting the model, one string")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch", type=int, default=16, help="most items a worker's pass takes under load")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-s", type=float, default=1.0, help="seconds each choice runs in each round")
    args = p.parse_args()
    flags = [*shlex.split(args.model_flags), "--device", args.device]
    labels = [engines.AUTO, *engines.labels(engines.settings(args.model_flags, args.device))]
    cases: dict[str, Any] = {}
    chose: dict[str, str] = {}
    for kind in ("image", "text"):
        models: dict[str, Isolated] = {}
        try:
            for label in labels:  # one at a time: loads (and the default's trial) run alone
                models[label] = Isolated(kind, flags, label, args.batch)
            chose[kind] = models[engines.AUTO].chose
            cases.update(compare(models, kind, args.rounds, args.min_s))
        finally:
            for model in models.values():
                model.close()
    result = {
        "default_chose": chose,
        "within": WITHIN,
        "cases": cases,
        "passed": all(c["passed"] for c in cases.values()),
        "worst_default_over_best": min(c["default_over_best"] for c in cases.values()),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
