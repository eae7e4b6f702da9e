"""Pairs/s of one engine choice in one process: decode, preprocess and encode of an image and a text.

`measure` times one choice's towers at each batch size under each way to spend the CPU cores (one
pipeline with all threads; one pipeline a core, each on one thread; for one pair, the image and text
towers at once, as the two predictors run them) and reports the best, the fastest one pair and the CPU
a pair. `bench.inprocess` runs it for every choice.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np
import torch

from bench.decoding import LIMIT
from bench.engines import Towers
from bench.payloads import distinct_text, photos
from predictors.imagetensor import model_transform
from predictors.preprocess import decode_image
from predictors.tokens import token_ids

T = TypeVar("T")


def _sync(towers: Towers) -> None:
    if towers.loaded.device.type == "cuda":
        torch.cuda.synchronize()


def _normalised(features: np.ndarray) -> np.ndarray:
    return features / np.maximum(np.linalg.norm(features, axis=-1, keepdims=True), np.float32(1e-12))


def images(towers: Towers, files: list[bytes], min_side: int | None, alone: bool = True) -> np.ndarray:
    """Normalised image embeddings of encoded files: decode, preprocess, encode."""
    pre = model_transform(towers.loaded.preprocess)  # as the image predictor preprocesses
    batch = np.stack([pre(decode_image(f, LIMIT, i, min_side)) for i, f in enumerate(files)])
    return _normalised(towers.image(batch, alone))


def texts(towers: Towers, strings: list[str], alone: bool = True) -> np.ndarray:
    """Normalised text embeddings: tokenize, encode (the tower trims to the real length itself)."""
    return _normalised(towers.text(token_ids(towers.loaded.tokenizer, strings), alone))


def _threads(n: int, fn: Callable[[], T]) -> T:
    """`fn()` with `n` torch threads: the count is per OS thread (a pool thread keeps the one it
    was created with), so each job sets its own."""
    torch.set_num_threads(n)
    return fn()


def _pair(towers: Towers, imgs: list[bytes], strings: list[str], min_side: int, alone: bool) -> None:
    (images(towers, imgs, min_side, alone) * texts(towers, strings, alone)).sum(axis=-1)
    _sync(towers)


def _towers(pool: ThreadPoolExecutor, towers: Towers, imgs: list[bytes], strings: list[str], min_side: int,
            threads: int) -> None:  # fmt: skip
    """Image and text tower at the same time, each on its own core, as the two predictors run them."""
    image_rows = pool.submit(_threads, threads, partial(images, towers, imgs, min_side, False))
    text_rows = texts(towers, strings, False)
    (image_rows.result() * text_rows).sum(axis=-1)
    _sync(towers)


@dataclass(frozen=True)
class Config:
    """How the process uses the machine's cores: torch threads per call, pipelines running side by side."""

    torch_threads: int
    workers: int  # independent pair pipelines in parallel threads, each on its own batches
    towers_concurrent: bool = False  # one pair: image and text tower in parallel threads

    @property
    def name(self) -> str:
        if self.towers_concurrent:
            return f"image and text towers concurrently, {self.torch_threads} torch thread(s) each"
        if self.workers > 1:
            return f"{self.workers} pipelines in parallel, {self.torch_threads} torch thread(s) each"
        return f"one pipeline, {self.torch_threads} torch thread(s)"

    def alone(self, cores: int) -> bool:
        """Whether a pass gets every core (the towers' `alone`) rather than one."""
        return self.torch_threads == cores and not self.towers_concurrent


def configs(device: torch.device, cores: int) -> list[Config]:
    """Every way to spend the cores that the limit tries (CPU); the predictors' own default on a GPU."""
    if device.type != "cpu":
        return [Config(cores, 1)]
    out = [Config(t, 1) for t in sorted({cores, 1})]
    if cores > 1:
        out += [Config(1, cores), Config(1, 1, towers_concurrent=True)]
    return out


def _throughput(towers: Towers, cfg: Config, batches: list[int], repeats: int, pool: ThreadPoolExecutor,
                min_side: int, cores: int) -> dict[str, dict[str, float]]:  # fmt: skip
    files = photos(16)
    serial = 0
    per_batch: dict[str, dict[str, float]] = {}
    for b in batches:
        times, cpu, pairs = [], 0.0, 0
        for r in range(max(repeats, 16 // b) + 1):  # the first round warms up; small batches repeat more
            jobs = []
            for _ in range(cfg.workers):
                jobs.append(([files[(serial + i) % len(files)] for i in range(b)],
                             [distinct_text(serial + i) for i in range(b)]))  # fmt: skip
                serial += b
            cpu_started, started = time.process_time(), time.perf_counter()
            if cfg.towers_concurrent:
                _towers(pool, towers, *jobs[0], min_side, cfg.torch_threads)
            else:
                n, alone = cfg.torch_threads, cfg.alone(cores)
                for f in [
                    pool.submit(_threads, n, partial(_pair, towers, *job, min_side, alone)) for job in jobs
                ]:
                    f.result()
            if r:
                times.append(time.perf_counter() - started)
                cpu, pairs = cpu + time.process_time() - cpu_started, pairs + b * cfg.workers
        median = statistics.median(times)
        per_batch[str(b)] = {
            "median_s": median,
            "pairs_per_s": b * cfg.workers / median,
            "cpu_s_per_pair": cpu / pairs,
        }
    return per_batch


def min_decode_side(towers: Towers) -> int:
    """Reduced-scale decoding stops at twice the model's input side."""
    return 2 * max(towers.loaded.image_size)


def measure(towers: Towers, batches: list[int], repeats: int, only: str | None = None) -> dict[str, Any]:
    """Pairs/s of one choice at each batch size under each core-use config (or just `only`); its best."""
    min_side, cores = min_decode_side(towers), torch.get_num_threads()
    results: dict[str, dict[str, dict[str, float]]] = {}
    one_pair: dict[str, float] = {}
    with ThreadPoolExecutor(max(cores, 2)) as pool:
        for cfg in configs(towers.loaded.device, cores):
            if only is not None and cfg.name != only:
                continue
            torch.set_num_threads(cfg.torch_threads)
            sizes = [1] if cfg.towers_concurrent else batches
            results[cfg.name] = _throughput(towers, cfg, sizes, repeats, pool, min_side, cores)
            if cfg.workers == 1 and "1" in results[cfg.name]:
                one_pair[cfg.name] = results[cfg.name]["1"]["median_s"] * 1000
    torch.set_num_threads(cores)
    best_cfg, best = max(
        ((name, b) for name, per_batch in results.items() for b in per_batch),
        key=lambda nb: results[nb[0]][nb[1]]["pairs_per_s"],
    )
    fastest_one = min(one_pair, key=one_pair.__getitem__) if one_pair else None
    return {
        "choice": towers.label,
        "configs": results,
        "best_config": best_cfg,
        "batches": results[best_cfg],
        "best_batch": int(best),
        "best_pairs_per_s": results[best_cfg][best]["pairs_per_s"],
        "cpu_s_per_pair": results[best_cfg][best]["cpu_s_per_pair"],
        "one_pair_ms": one_pair,
        "one_pair_config": fastest_one,
        "p50_ms_one_pair": one_pair[fastest_one] if fastest_one else None,
    }
