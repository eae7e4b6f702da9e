"""Orchestrates one benchmark run: stacks up, in-process limits, load points (interleaved), results out."""

from __future__ import annotations

import argparse
import json
import math
import shlex
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench import breakdown, machine, report, subruns
from bench.loadgen import run_load
from bench.payloads import CompareBodies, photos
from bench.procs import gateway, peak_rss_mb, predictor, start_all, stop_all
from devtools.procs import ROOT, Program

MODELS = {
    "demo": ("clip-shapes (demo)", ["--model_dir", str(ROOT / "models" / "clip-shapes")]),
    "vit-b-32": ("ViT-B-32, random weights", ["--arch", "ViT-B-32", "--pretrained", "none"]),
}
ZERO_SHOT_CONCURRENCY = 16


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="demo model, short points")
    p.add_argument("--models", help="comma-separated: demo, vit-b-32 (default both; --quick: demo)")
    p.add_argument("--model-dir", type=Path, help="benchmark this open_clip model dir instead")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="predictors' and limit's device")
    p.add_argument("--concurrency", default="1,4,16,32")
    p.add_argument("--warmup-s", type=float, help="seconds discarded before each point")
    p.add_argument("--measure-s", type=float, help="seconds measured at each point")
    p.add_argument("--batches", help="in-process batch sizes (default 1,8,32)")
    p.add_argument(
        "--rounds",
        type=int,
        help="times the throughput ratios are measured, each round the limit, the service with batching "
        "on and off at the top concurrency, zero-shot with the cache on and off; reported as medians "
        "(default 3, --quick 1)",
    )
    p.add_argument("--skip-int8", action="store_true", help="do not measure the int8 in-process limit")
    p.add_argument("--predictor-args", default="", help="extra flags for every predictor, one string")
    p.add_argument("--name", help="results file name (default cpu-full / cpu-quick / cuda-full ...)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    args.warmup_s = args.warmup_s if args.warmup_s is not None else (1.0 if args.quick else 4.0)
    args.measure_s = args.measure_s if args.measure_s is not None else (3.0 if args.quick else 15.0)
    args.batches = args.batches or ("1,8" if args.quick else "1,8,32")
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.name = args.name or f"{args.device}-{'quick' if args.quick else 'full'}"
    return args


def cache_counts(gateway_url: str) -> dict[str, float]:
    """The gateway's text-cache hit and miss counters, from its /metrics."""
    with urllib.request.urlopen(gateway_url + "/metrics", timeout=10) as r:
        lines = r.read().decode().splitlines()
    values = {
        line.split()[0]: float(line.split()[1]) for line in lines if line.startswith("gateway_text_cache_")
    }
    return {k: values.get(f"gateway_text_cache_{k}_total", 0.0) for k in ("hits", "misses")}


def bench_model(key: str, label: str, flags: list[str], args: argparse.Namespace, bar: tqdm, log_dir: Path,
                first: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
    extra = [*shlex.split(args.predictor_args), "--device", args.device]
    image, text = (
        predictor("image", f"{key}-image", flags, extra),
        predictor("text", f"{key}-text", flags, extra),
    )
    image1 = predictor("image", f"{key}-image-unbatched", flags, [*extra, "--max_batch_size", "1"])
    text1 = predictor("text", f"{key}-text-unbatched", flags, [*extra, "--max_batch_size", "1"])
    gw, gw_nocache = (
        gateway(f"{key}-gateway", image, text, True),
        gateway(f"{key}-gateway-nocache", image, text, False),
    )
    # The design batching replaces: one call and one forward pass per request, in the gateway too.
    gw1 = gateway(f"{key}-gateway-unbatched", image1, text1, True, batching=False)
    procs = [image, text, gw, gw_nocache, image1, text1, gw1]
    bar.set_description(f"{key}: starting {len(procs)} programs")
    start_all(procs, log_dir)
    try:
        bar.set_description(f"{key}: in-process limit")
        service_choice = {
            "image": machine.service_choice(image.url, "clip-image"),
            "text": machine.service_choice(text.url, "clip-text"),
        }
        bound = subruns.in_process(flags, args)
        bar.update()
        ceiling = None
        if first:
            bar.set_description("load generator ceiling (GET /healthz)")
            ceiling = run_load(gw.url + "/healthz", None, 32, args.warmup_s, args.measure_s)
            bar.update()
        images = photos(16)  # one CompareBodies per kind for the whole model: texts never repeat
        distinct, labels = CompareBodies(images, zero_shot=False), CompareBodies(images, zero_shot=True)

        def point(
            gateway_proc: Program, pair: tuple[Program, Program], bodies: CompareBodies, c: int, what: str
        ) -> dict[str, Any]:
            bar.set_description(f"{key}: {what}, concurrency {c}")
            pids = {"gateway": gateway_proc.pid, "image": pair[0].pid, "text": pair[1].pid}
            result = run_load(gateway_proc.url + "/compare/", bodies, c, args.warmup_s, args.measure_s, pids)
            bar.update()
            return result

        batched, unbatched = [], []
        for c in [int(x) for x in args.concurrency.split(",")]:  # interleaved: drift hits both alike
            batched.append(point(gw, (image, text), distinct, c, "batching on"))
            unbatched.append(point(gw1, (image1, text1), distinct, c, "batching off"))
        zc = ZERO_SHOT_CONCURRENCY
        cached = point(gw, (image, text), labels, zc, "zero-shot, cache on")
        uncached = point(gw_nocache, (image, text), labels, zc, "zero-shot, cache off")
        top_c = batched[-1]["concurrency"]
        rounds = [_round(bound["best_pairs_per_s"], batched[-1], unbatched[-1], cached, uncached)]
        for r in range(2, args.rounds + 1):  # the machine drifts: the throughput ratios again, interleaved
            bar.set_description(f"{key}: round {r}, in-process limit")
            limit = subruns.in_process(flags, args, again=bound)["best_pairs_per_s"]
            bar.update()
            rounds.append(
                _round(
                    limit,
                    point(gw, (image, text), distinct, top_c, f"round {r}, batching on"),
                    point(gw1, (image1, text1), distinct, top_c, f"round {r}, batching off"),
                    point(gw, (image, text), labels, zc, f"round {r}, zero-shot, cache on"),
                    point(gw_nocache, (image, text), labels, zc, f"round {r}, zero-shot, cache off"),
                )
            )
        rss = {p.name.removeprefix(f"{key}-"): peak_rss_mb(p.pid) for p in procs}
        cache = {g.name.removeprefix(f"{key}-"): cache_counts(g.url) for g in (gw, gw_nocache, gw1)}
    finally:
        stop_all(procs)
    bar.set_description(f"{key}: default vs each forced choice, in-process")  # the services are stopped
    verdict = subruns.choices(flags, args)
    bar.update()
    int8 = None
    if args.device == "cpu" and not args.skip_int8:
        bar.set_description(f"{key}: int8 in-process limit")
        int8 = subruns.int8(flags, args, bound)
        bar.update()
    median = {k: statistics.median(r[k] for r in rounds) for k in ROUND_RATIOS}
    ratios = {
        f"service pairs/s at concurrency {top_c} / in-process limit": median["service / limit"],
        f"batching on / batching off, pairs/s at concurrency {top_c}": median["on / off"],
        "service p50 - in-process p50 at concurrency 1 (ms)": batched[0]["p50_ms"] - bound["p50_ms_one_pair"],
        "zero-shot pairs/s, cache on / cache off": median["cache on / off"],
        # What batching alone can give on this machine: the ceiling of batching on / off, less the
        # per-request costs that the unbatched service pays once per item.
        "in-process limit, best batch / batch 1 (same config)": bound["best_pairs_per_s"]
        / bound["batches"].get("1", {}).get("pairs_per_s", math.nan),  # nan: --batches without 1
        # The default choice (auto) in-process against the best forced choice, each at its best.
        "in-process limit, default choice / best choice": bound["choices"]["auto"]["best_pairs_per_s"]
        / bound["best_pairs_per_s"],
    }
    result = {
        "key": key, "name": label, "in_process": bound, "batched": batched, "unbatched": unbatched,
        "zero_shot_cached": cached, "zero_shot_uncached": uncached, "ratios": ratios, "rounds": rounds,
        "peak_rss_mb": rss,
        "text_cache": cache, "service_choice": service_choice, "default_vs_forced": verdict, "int8": int8,
        "breakdown": breakdown.cpu(batched[-1], bound),
    }  # fmt: skip
    result["targets"] = breakdown.targets(result)
    return result, ceiling


# Ratios measured in every round (their medians are reported), and the round's pairs/s they come from.
ROUND_RATIOS = {
    "service / limit": ("on", "limit"),
    "on / off": ("on", "off"),
    "cache on / off": ("cached", "uncached"),
}


def _round(limit: float, *points: dict[str, Any]) -> dict[str, float]:
    """One round: pairs/s of the limit, batching on and off, zero-shot cached and uncached; ratios."""
    on, off, cached, uncached = (p["requests_per_s"] for p in points)
    rates = {"limit": limit, "on": on, "off": off, "cached": cached, "uncached": uncached}
    return {**rates, **{k: rates[a] / rates[b] for k, (a, b) in ROUND_RATIOS.items()}}


class Interrupted(BaseException):
    """SIGINT or SIGTERM: unwinds the run so that every started program is stopped on the way out."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class OnSignal:
    """Raises `Interrupted`; a second signal too (cuts the grace period short); later ones are ignored."""

    def __init__(self) -> None:
        self.seen = 0

    def __call__(self, signum: int, _frame: object) -> None:
        self.seen += 1
        if self.seen >= 2:
            for s in (signal.SIGINT, signal.SIGTERM):
                signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    on_signal = OnSignal()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, on_signal)
    try:
        run(args)
    except Interrupted as e:
        print(f"\nbench: {e}, stopped every program it started", file=sys.stderr)
        sys.exit(128 + e.signum)


def run(args: argparse.Namespace) -> None:
    if args.model_dir:
        models = {args.model_dir.name: (args.model_dir.name, ["--model_dir", str(args.model_dir.resolve())])}
    else:
        keys = (args.models or ("demo" if args.quick else "demo,vit-b-32")).split(",")
        models = {k: MODELS[k] for k in keys}
    n_conc = len(args.concurrency.split(","))
    per_model = 1 + 2 * n_conc + 2 + 5 * (args.rounds - 1) + 1 + (args.device == "cpu" and not args.skip_int8)
    total = len(models) * per_model + 1
    started = time.monotonic()
    result: dict[str, Any] = {
        "name": args.name,
        "machine": machine.block(),
        "device": args.device,
        "models": [],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as logs, tqdm(total=total, unit="point") as bar:
        for i, (key, (label, flags)) in enumerate(models.items()):
            model, ceiling = bench_model(key, label, flags, args, bar, Path(logs), first=i == 0)
            model["arch"] = label
            result["models"].append(model)
            if ceiling is not None:
                result["loadgen_ceiling"] = ceiling
    top = max(p["requests_per_s"] for m in result["models"] for p in m["batched"] + m["unbatched"])
    result["loadgen_ceiling"]["over_fastest_service_point"] = (
        result["loadgen_ceiling"]["requests_per_s"] / top
    )
    result["duration_s"] = time.monotonic() - started
    result["settings"] = {k: str(v) for k, v in vars(args).items()}
    stem = args.out / args.name
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    stem.with_suffix(".md").write_text(report.markdown(result))
    report.plot(result, stem.with_suffix(".png"))
    print(report.markdown(result))
    print(f"wrote {stem}.json, .md, .png in {result['duration_s']:.0f} s")
