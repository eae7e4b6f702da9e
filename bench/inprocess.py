"""The limit: the same model in one process, decode + preprocess + encode of image and text, no server.

Runs the predictors' own code path (settings, loading in eval mode, reduced-scale decoding, the text
tower at the real token length) under every engine and kernel choice the predictors may pick (each
forced in turn, through `bench.engines`), at several batch sizes and under every way to spend the CPU
cores (one pipeline with all threads; one pipeline a core, each on one thread; for one pair, the image
and text towers at once, as the two predictors run them), because a pipeline with 2 intra-op threads
on 2 cores stalls at every barrier whenever another process takes a core. The limit is the best of
them all, so the service can only beat it by a measurement error. The default choice (`auto`) is
measured the same way and reported beside it. Prints one JSON object: per choice, pairs/s per config
and batch size, its best, the fastest one pair (p50) and CPU seconds per pair; the limit (best choice);
peak RSS; the reduced-scale decoding of a 12-megapixel JPEG; with `--precision int8`, each choice's
minimum cosine to the fp32 default's embeddings.
Run by `bench.run` as `python -m bench.inprocess ...`.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import torch

from bench import engines
from bench.decoding import LIMIT, reduced_decoding
from bench.engines import Towers
from bench.payloads import distinct_text, photos
from predictors.memory import keep_freed_memory
from predictors.preprocess import decode_image
from predictors.text_encoding import can_trim

T = TypeVar("T")


def _sync(towers: Towers) -> None:
    if towers.loaded.device.type == "cuda":
        torch.cuda.synchronize()


def images(towers: Towers, files: list[bytes], min_side: int | None, alone: bool = True) -> torch.Tensor:
    """Normalised image embeddings of encoded files: decode, preprocess, encode."""
    pre = towers.loaded.preprocess
    batch = torch.stack([pre(decode_image(f, LIMIT, i, min_side)) for i, f in enumerate(files)])
    return torch.nn.functional.normalize(towers.image(batch, alone).float(), dim=-1)


def texts(towers: Towers, strings: list[str], alone: bool = True) -> torch.Tensor:
    """Normalised text embeddings: tokenize, encode (the tower trims to the real length itself)."""
    tokens = towers.loaded.tokenizer(strings)
    return torch.nn.functional.normalize(towers.text(tokens, alone).float(), dim=-1)


def _threads(n: int, fn: Callable[[], T]) -> T:
    """`fn()` with `n` torch threads: the count is per OS thread (a pool thread keeps the one it
    was created with), so each job sets its own."""
    torch.set_num_threads(n)
    return fn()


def _pair(towers: Towers, imgs: list[bytes], strings: list[str], min_side: int, alone: bool) -> None:
    (images(towers, imgs, min_side, alone) * texts(towers, strings, alone)).sum(dim=-1).cpu()
    _sync(towers)


def _towers(pool: ThreadPoolExecutor, towers: Towers, imgs: list[bytes], strings: list[str], min_side: int,
            threads: int) -> None:  # fmt: skip
    """Image and text tower at the same time, each on its own core, as the two predictors run them."""
    image_rows = pool.submit(_threads, threads, partial(images, towers, imgs, min_side, False))
    text_rows = texts(towers, strings, False)
    (image_rows.result() * text_rows).sum(dim=-1).cpu()
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
    size = towers.loaded.model.visual.preprocess_cfg["size"]  # type: ignore[union-attr,index]
    return 2 * max(size if isinstance(size, tuple | list) else (size,))


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


def limit(per_choice: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The limit over the forced choices (the default is measured beside them, not counted twice): the
    best choice's figures at top level, the fastest one pair of any choice."""
    forced = {k: v for k, v in per_choice.items() if k != engines.AUTO} or per_choice
    best = max(forced, key=lambda k: forced[k]["best_pairs_per_s"])
    with_one = [k for k in forced if forced[k]["p50_ms_one_pair"] is not None]
    fastest = min(with_one, key=lambda k: forced[k]["p50_ms_one_pair"]) if with_one else None
    out = {k: v for k, v in forced[best].items() if k != "choice"}
    out.update(best_choice=best, choices=per_choice)
    out.update(
        p50_ms_one_pair=forced[fastest]["p50_ms_one_pair"] if fastest else None,
        one_pair_config=f"{fastest}: {forced[fastest]['one_pair_config']}" if fastest else None,
    )
    return out


def _cosine_to(reference: tuple[torch.Tensor, torch.Tensor], towers: Towers, min_side: int) -> float:
    files, strings = photos(8), [distinct_text(i) for i in range(8)]
    ref_images, ref_texts = reference
    got = (images(towers, files, min_side) * ref_images).sum(-1), (texts(towers, strings) * ref_texts).sum(-1)
    return float(torch.cat(got).min())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model-flags", required=True, help="predictor flags selecting the model, one string")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="auto", help="auto, fp32, fp16, bf16 or int8 (CPU)")
    p.add_argument(
        "--choices", default="all", help="'all' (auto and every forced choice) or labels, ';'-separated"
    )
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--only-config", help="measure only this config (its name as reported), e.g. to re-measure"
    )
    p.add_argument("--skip-decoding", action="store_true", help="skip the reduced-scale decoding measurement")
    args = p.parse_args()
    settings = engines.settings(args.model_flags, args.device, args.precision)
    # torch's default (one thread per core) whatever --num_threads the predictors get: the limit tries
    # every way to use the cores itself. The same malloc settings as the predictors have.
    keep_freed_memory()
    cores = torch.get_num_threads()
    wanted = [engines.AUTO, *engines.labels(settings)] if args.choices == "all" else args.choices.split(";")
    batches = [int(b) for b in args.batches.split(",")]
    reference = None
    if args.precision == "int8":
        fp32 = engines.load(engines.settings(args.model_flags, args.device, "fp32"), engines.AUTO, cores)
        side = min_decode_side(fp32)
        reference = (images(fp32, photos(8), side), texts(fp32, [distinct_text(i) for i in range(8)]))
        del fp32
    per_choice: dict[str, dict[str, Any]] = {}
    extra: dict[str, Any] = {}
    for label in wanted:
        towers = engines.load(settings, label, cores)
        per_choice[label] = measure(towers, batches, args.repeats, args.only_config)
        if reference is not None:
            per_choice[label]["min_cosine_to_fp32"] = _cosine_to(reference, towers, min_decode_side(towers))
        if not extra:
            extra = {
                "text_trimmed": can_trim(towers.loaded.model),
                "min_decode_side": min_decode_side(towers),
                "device": str(towers.loaded.device),
            }
            if not args.skip_decoding:
                extra["reduced_decoding"] = reduced_decoding(towers, extra["min_decode_side"], args.repeats)
        del towers
        gc.collect()
    result = {**limit(per_choice), **extra, "torch_threads": cores, "precision": args.precision}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


if __name__ == "__main__":
    main()
