"""The limit: the same model in one process, decode + preprocess + encode of image and text, no server.

Runs the predictors' own code path (settings, loading in eval mode, inference_mode, reduced-scale
decoding, trimmed text encoding) at several batch sizes and under every way to spend the CPU cores
(one pipeline with all torch threads; one pipeline a core, each with one torch thread; for one pair, the
image and text towers at once, as the two predictors run them), because a pipeline with 2 intra-op
threads on 2 cores stalls at every barrier whenever another process takes a core. The limit is the best
of them all, so the service can only beat it by a measurement error. Prints one JSON object: pairs/s per
config and batch size, the best, the fastest one pair (p50), CPU seconds per pair, peak RSS; and the
reduced-scale decoding of a 12-megapixel JPEG (speed-up and embedding cosine).
Run by `bench.run` as `python -m bench.inprocess ...`.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import shlex
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import torch

from bench.payloads import distinct_text, jpeg, photos
from predictors import onednn
from predictors.loading import LoadedModel, load_model
from predictors.memory import keep_freed_memory
from predictors.preprocess import decode_image
from predictors.settings import read_settings
from predictors.text_encoding import can_trim, encode_text

LIMIT = 40_000_000
T = TypeVar("T")


def _sync(loaded: LoadedModel) -> None:
    if loaded.device.type == "cuda":
        torch.cuda.synchronize()


def _images(loaded: LoadedModel, files: list[bytes], min_side: int | None) -> torch.Tensor:
    batch = torch.stack([loaded.preprocess(decode_image(f, LIMIT, i, min_side)) for i, f in enumerate(files)])
    with torch.inference_mode():
        out = loaded.model.encode_image(batch.to(loaded.device, loaded.dtype))  # type: ignore[operator]
        return torch.nn.functional.normalize(out.float(), dim=-1)


def _texts(loaded: LoadedModel, texts: list[str], trim: bool) -> torch.Tensor:
    with torch.inference_mode():
        out = encode_text(loaded.model, loaded.tokenizer(texts).to(loaded.device), trim)
        return torch.nn.functional.normalize(out.float(), dim=-1)


def _threads(n: int, fn: Callable[[], T]) -> T:
    """`fn()` with `n` torch threads: the count is per OS thread (a pool thread keeps the one it
    was created with), so each job sets its own."""
    torch.set_num_threads(n)
    return fn()


def _pair(loaded: LoadedModel, imgs: list[bytes], texts: list[str], min_side: int, trim: bool) -> None:
    (_images(loaded, imgs, min_side) * _texts(loaded, texts, trim)).sum(dim=-1).cpu()
    _sync(loaded)


def _towers(pool: ThreadPoolExecutor, loaded: LoadedModel, imgs: list[bytes], texts: list[str], min_side: int,
            trim: bool, threads: int) -> None:  # fmt: skip
    """Image and text tower at the same time, each on its own core, as the two predictors run them."""
    image_rows = pool.submit(_threads, threads, partial(_images, loaded, imgs, min_side))
    text_rows = _texts(loaded, texts, trim)
    (image_rows.result() * text_rows).sum(dim=-1).cpu()
    _sync(loaded)


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


def configs(loaded: LoadedModel) -> list[Config]:
    """Every way to spend the cores that the limit tries (CPU); the predictors' own default on a GPU."""
    cores = torch.get_num_threads()
    if loaded.device.type != "cpu":
        return [Config(cores, 1)]
    out = [Config(t, 1) for t in sorted({cores, 1})]
    if cores > 1:
        out += [Config(1, cores), Config(1, 1, towers_concurrent=True)]
    return out


def _throughput(loaded: LoadedModel, cfg: Config, batches: list[int], repeats: int, pool: ThreadPoolExecutor,
                min_side: int, trim: bool) -> dict[str, dict[str, float]]:  # fmt: skip
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
                _towers(pool, loaded, *jobs[0], min_side, trim, cfg.torch_threads)
            else:
                n = cfg.torch_threads
                for f in [
                    pool.submit(_threads, n, partial(_pair, loaded, *job, min_side, trim)) for job in jobs
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


def measure(loaded: LoadedModel, batches: list[int], repeats: int, only: str | None = None) -> dict[str, Any]:
    """Pairs/s at each batch size under each core-use config (or just `only`); the limit is the best."""
    size = loaded.model.visual.preprocess_cfg["size"]  # type: ignore[union-attr,index]
    min_side = 2 * max(size if isinstance(size, tuple | list) else (size,))
    trim = can_trim(loaded.model)
    default_threads = torch.get_num_threads()
    results: dict[str, dict[str, dict[str, float]]] = {}
    one_pair: dict[str, float] = {}
    with ThreadPoolExecutor(max(default_threads, 2)) as pool:
        for cfg in configs(loaded):
            if only is not None and cfg.name != only:
                continue
            torch.set_num_threads(cfg.torch_threads)
            sizes = [1] if cfg.towers_concurrent else batches
            results[cfg.name] = _throughput(loaded, cfg, sizes, repeats, pool, min_side, trim)
            if cfg.workers == 1 and "1" in results[cfg.name]:
                one_pair[cfg.name] = results[cfg.name]["1"]["median_s"] * 1000
    torch.set_num_threads(default_threads)
    best_cfg, best = max(
        ((name, b) for name, per_batch in results.items() for b in per_batch),
        key=lambda nb: results[nb[0]][nb[1]]["pairs_per_s"],
    )
    fastest_one = min(one_pair, key=one_pair.__getitem__) if one_pair else None
    return {
        "configs": results,
        "best_config": best_cfg,
        "batches": results[best_cfg],
        "best_batch": int(best),
        "best_pairs_per_s": results[best_cfg][best]["pairs_per_s"],
        "cpu_s_per_pair": results[best_cfg][best]["cpu_s_per_pair"],
        "one_pair_ms": one_pair,
        "one_pair_config": fastest_one,
        "p50_ms_one_pair": one_pair[fastest_one] if fastest_one else None,
        "text_trimmed": trim,
        "min_decode_side": min_side,
    }


def reduced_decoding(loaded: LoadedModel, min_side: int, repeats: int) -> dict[str, Any]:
    """Decode + preprocess of 12-megapixel JPEGs with and without reduced-scale decoding."""
    from PIL import Image

    files = []
    for seed in range(3):
        small = Image.open(io.BytesIO(jpeg(100 + seed, (1000, 750))))
        buf = io.BytesIO()
        small.resize((4000, 3000), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=90)
        files.append(buf.getvalue())

    def timed(side: int | None) -> float:
        runs = []
        for _ in range(repeats):
            started = time.perf_counter()
            for f in files:
                loaded.preprocess(decode_image(f, LIMIT, 0, side))
            runs.append((time.perf_counter() - started) / len(files))
        return statistics.median(runs)

    full, reduced = timed(None), timed(min_side)
    cosines = (_images(loaded, files, min_side) * _images(loaded, files, None)).sum(dim=-1)
    return {
        "image": "4000x3000 JPEG q90",
        "full_decode_ms": full * 1000,
        "reduced_decode_ms": reduced * 1000,
        "speedup": full / reduced,
        "min_cosine": float(cosines.min()),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model-flags", required=True, help="predictor flags selecting the model, one string")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--only-config", help="measure only this config (its name as reported), e.g. to re-measure"
    )
    p.add_argument("--skip-decoding", action="store_true", help="skip the reduced-scale decoding measurement")
    args = p.parse_args()
    settings = read_settings("image", [*shlex.split(args.model_flags), "--device", args.device])
    # torch's default (one thread per core) whatever --num_threads the predictors get: the limit tries
    # every way to use the cores itself. The same kernels (load_model) and malloc settings as they have.
    keep_freed_memory()
    loaded = load_model(settings)
    kernels = "onednn" if loaded.device.type == "cpu" and loaded.dtype == torch.float32 else "torch"
    if kernels == "onednn":  # oneDNN linear layers, the predictors' kernels before predictors.engines
        onednn.use_onednn(loaded.model)
    result = measure(loaded, [int(b) for b in args.batches.split(",")], args.repeats, args.only_config)
    if not args.skip_decoding:
        result["reduced_decoding"] = reduced_decoding(loaded, result["min_decode_side"], args.repeats)
    result["torch_threads"] = torch.get_num_threads()
    result["device"] = str(loaded.device)
    result["precision"] = str(loaded.dtype).removeprefix("torch.")
    result["cpu_kernels"] = kernels
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
