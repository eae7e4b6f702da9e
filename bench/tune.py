"""Choose the predictors' threading and batch-delay defaults: the same service under each setting, one run.

    python -m bench.tune --model vit-b-32 --threads 1,2 --delays 0,5 --concurrency 1,32
    python -m bench.tune --model vit-b-32 --threads 0/1 --delays 0 --workers 1,2

Starts one image + text predictor pair and a gateway per (torch threads, --max_batch_delay_ms, image
--forward_workers) variant,
all at once, and measures POST /compare/ (distinct short texts) at each concurrency, every variant
in turn, twice (the second round in reverse order, so that drift hits all alike); reports the mean.
Writes bench/results/tune-<model>.json and .md (or --name).
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.loadgen import run_load
from bench.payloads import CompareBodies, photos
from bench.procs import gateway, predictor, start_all, stop_all
from bench.run import MODELS, Interrupted, OnSignal
from devtools.procs import ROOT


def _extra(threads: str, delay: str) -> list[str]:
    return ["--num_threads", threads, "--max_batch_delay_ms", delay, "--device", "cpu"]


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.tune", description=__doc__)
    p.add_argument("--model", default="demo", choices=sorted(MODELS))
    p.add_argument(
        "--threads",
        default="1,2",
        help="torch threads per predictor (--num_threads): N, or IMAGE/TEXT; a trailing p sets "
        "OMP_WAIT_POLICY=PASSIVE (no spinning at barriers)",
    )
    p.add_argument("--delays", default="0,2,5", help="--max_batch_delay_ms values: N, or IMAGE/TEXT")
    p.add_argument("--workers", default="1", help="image predictor's --forward_workers values")
    p.add_argument("--concurrency", default="1,32")
    p.add_argument("--warmup-s", type=float, default=3.0)
    p.add_argument("--measure-s", type=float, default=8.0)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    p.add_argument("--name", help="result file stem (default tune-<model>)")
    args = p.parse_args()
    on_signal = OnSignal()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, on_signal)
    label, flags = MODELS[args.model]
    variants = list(
        itertools.product(args.threads.split(","), args.delays.split(","), args.workers.split(","))
    )
    stacks = []
    for t, d, w in variants:
        image_t, _, text_t = t.rstrip("p").partition("/")
        image_d, _, text_d = d.partition("/")
        tag = f"t{t.replace('/', '-')}-d{d.replace('/', '-')}-w{w}"
        env = {"OMP_WAIT_POLICY": "PASSIVE"} if t.endswith("p") else {}
        image = predictor("image", f"image-{tag}", flags, [*_extra(image_t, image_d), "--forward_workers", w])
        text = predictor("text", f"text-{tag}", flags, _extra(text_t or image_t, text_d or image_d))
        image.env.update(env)
        text.env.update(env)
        name = f"{t} torch threads{' (OMP passive)' if env else ''}, delay {d} ms"
        name += f", {w} image forward workers" if w != "1" else ""
        stacks.append((name, image, text, gateway(f"gw-{tag}", image, text, True)))
    procs = [p for _, *trio in stacks for p in trio]
    bodies = CompareBodies(photos(16), zero_shot=False)
    points: dict[str, dict[int, list[dict[str, Any]]]] = {name: {} for name, *_ in stacks}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-tune-") as logs:
            start_all(procs, Path(logs))
            for c in [int(x) for x in args.concurrency.split(",")]:
                for order in (stacks, stacks[::-1]):
                    for name, image, text, gw in order:
                        pids = {"gateway": gw.pid, "image": image.pid, "text": text.pid}
                        r = run_load(gw.url + "/compare/", bodies, c, args.warmup_s, args.measure_s, pids)
                        points[name].setdefault(c, []).append(r)
                        rate, p50 = r["requests_per_s"], r["p50_ms"]
                        print(f"{name}, c={c}: {rate:.1f}/s, p50 {p50:.0f} ms", file=sys.stderr, flush=True)
    except Interrupted as e:
        print(f"bench.tune: {e}", file=sys.stderr)
        sys.exit(128 + e.signum)
    finally:
        stop_all(procs)
    summary = {
        name: {
            str(c): {
                **{k: sum(r[k] for r in rs) / len(rs) for k in ("requests_per_s", "p50_ms", "p95_ms")},
                "cpu_ms_per_request": {
                    proc: sum(r["cpu_s_per_request"][proc] for r in rs) / len(rs) * 1000
                    for proc in ("image", "text", "gateway")
                },
            }
            for c, rs in by_c.items()
        }
        for name, by_c in points.items()
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / (args.name or f"tune-{args.model}")
    stem.with_suffix(".json").write_text(
        json.dumps({"model": label, "summary": summary, "points": points}, indent=2)
    )
    lines = [f"# Threading and batch delay, {label} (mean of 2 interleaved rounds)", "",
             "| variant | concurrency | req/s | p50 ms | p95 ms | CPU ms/req image / text / gateway |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, by_c in summary.items():
        for conc, m in by_c.items():
            cpu = " / ".join(f"{v:.1f}" for v in m["cpu_ms_per_request"].values())
            lines.append(
                f"| {name} | {conc} | {m['requests_per_s']:.1f} | {m['p50_ms']:.1f} | {m['p95_ms']:.0f} "
                f"| {cpu} |"
            )
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
