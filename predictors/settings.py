"""Command-line flags and `CLIP_*` environment variables of both predictors, read once.

Precedence: flag > environment variable > default. KServe's own flags (`--http_port`, `--grpc_port`,
`--model_name`, `--workers`, `--enable_latency_logging`, `--log_config_file`, ...) are accepted too.

Threading and batch-delay defaults were chosen with `python -m bench.tune` (`make bench-tune`,
bench/results/tune-*.md) on 2 shared CPU cores, image predictor, text predictor and gateway on one
machine, oneDNN linear kernels. ViT-B-32, /compare/ with distinct short texts, req/s at concurrency 32
(p50 ms at concurrency 1), torch threads image/text: 1/1 20.2 (78), 2/2 28.8 (67), 2/1 26.6 (68): the
image tower is most of the work and gets every core (torch's default); the text tower gets one thread:
image 0 (the probe) with text on 1 vs 2 threads, 30.9 vs 29.0 req/s, text CPU 8.9 vs 11.0 ms a request
(tune-vit-b-32-text-threads.md; a text pass on 2 threads spins at OpenMP barriers on the image's core).
Forward workers (image predictor; tune-vit-b-32-workers.md): 1 pass x 2 threads vs 2 passes at once,
each on half a full batch, with 2 threads when a pass runs alone and 1 each when they overlap; req/s at
concurrency 1 / 4 / 32: 14.4 / 19.8 / 27.4 vs 14.0 / 20.2 / 29.4 (image predictor CPU per request at 32:
56.6 vs 54.2 ms; with MKL kernels 13.7 vs 16.1 req/s at 32). Hence 2 workers on a CPU; on a GPU one pass
at a time (half batches would only cost).
Batch delay: a CPU forward pass takes 2 ms (demo model) to 10s of ms (ViT-B-32), so items queue up
while one runs and are batched anyway; a delay only adds latency when little is queued (demo model,
concurrency 1, p50: 12 ms at 0 ms delay vs 17.5 and 26.7 ms at 2 and 5 ms; noisy machine). A delay on
the text predictor alone does not pay either (ViT-B-32, concurrency 32, 0 / 10 / 25 ms: 29.9 / 29.5 /
30.1 req/s, text CPU 9.4 / 9.0 / 8.4 ms a request, p50 at concurrency 1 67 / 76 / 74 ms;
tune-vit-b-32-text-delay.md). On a GPU, where a pass takes ~1 ms, a few ms of delay can pay: set it there.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kserve import model_server

Kind = Literal["image", "text"]

MODEL_MOUNT = Path("/mnt/models")

DEFAULT_PORTS: dict[Kind, tuple[int, int]] = {"image": (8001, 9001), "text": (8002, 9002)}
DEFAULT_THREADS: dict[Kind, int] = {"image": 0, "text": 1}  # 0: one per core, see predictors.threads
DEFAULT_FORWARD_WORKERS: dict[Kind, int] = {"image": 0, "text": 1}  # 0: 2 on a CPU, 1 on a GPU


@dataclass(frozen=True)
class Settings:
    """Everything one predictor process is configured with."""

    kind: Kind
    model_name: str
    http_port: int
    grpc_port: int
    model_dir: Path | None
    arch: str | None
    pretrained: str | None
    device: str
    precision: str
    cpu_kernels: str
    num_threads: int
    forward_workers: int
    max_batch_size: int
    max_batch_delay_ms: float
    max_items: int
    max_image_pixels: int
    max_text_chars: int
    max_queue_items: int
    shutdown_grace_s: int
    latency_logging: bool
    log_config_file: str | None
    kserve_args: dict[str, Any]


def _at_least(minimum: int, kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        value = kind(raw)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {raw}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _env(name: str, default: Any) -> Any:
    return os.environ.get(name, default)


def build_parser(kind: Kind) -> argparse.ArgumentParser:
    """KServe's server parser plus the CLIP flags, with this predictor's local defaults."""
    http_port, grpc_port = DEFAULT_PORTS[kind]
    parser = argparse.ArgumentParser(
        prog=f"python -m predictors.{kind}",
        parents=[model_server.parser],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=f"CLIP {kind} encoder served with the Open Inference Protocol (KServe v2).",
    )
    parser.set_defaults(
        http_port=http_port,
        grpc_port=grpc_port,
        model_name=f"clip-{kind}",
        enable_latency_logging=False,
    )
    add = parser.add_argument
    add(
        "--model_dir",
        default=_env("CLIP_MODEL_DIR", None),
        help="open_clip model directory (open_clip_config.json + weights); default /mnt/models if present",
    )
    add("--arch", default=_env("CLIP_ARCH", None), help="open_clip architecture when no model dir")
    add(
        "--pretrained",
        default=_env("CLIP_PRETRAINED", None),
        help="pretrained tag, checkpoint file, or 'none' (random weights, benchmarks only)",
    )
    add("--device", default=_env("CLIP_DEVICE", "auto"), choices=["auto", "cpu", "cuda"])
    add("--precision", default=_env("CLIP_PRECISION", "auto"), choices=["auto", "fp32", "fp16", "bf16"])
    add(
        "--cpu_kernels",
        default=_env("CLIP_CPU_KERNELS", "onednn"),
        choices=["onednn", "torch"],
        help="fp32 linear layers on a CPU: onednn (uses AVX-512 on AMD too; up to 2x faster there) or "
        "torch's own BLAS",
    )
    add(
        "--num_threads",
        type=_at_least(0, int),
        default=_env("CLIP_NUM_THREADS", DEFAULT_THREADS[kind]),
        help="torch intra-op threads of the forward passes; 0: one per core, kept for a pass alone only "
        "if the model gains from them (timed at load). A pass alone uses all; passes that overlap share",
    )
    add(
        "--forward_workers",
        type=_at_least(0, int),
        default=_env("CLIP_FORWARD_WORKERS", DEFAULT_FORWARD_WORKERS[kind]),
        help="forward passes run at once, each on its own share of a full batch and of the threads; "
        "0: 1 on a GPU, 2 on a CPU (at most --num_threads)",
    )
    add(
        "--max_batch_size",
        type=_at_least(1, int),
        default=_env("CLIP_MAX_BATCH_SIZE", 32),
        help="largest batch one forward pass takes",
    )
    add(
        "--max_batch_delay_ms",
        type=_at_least(0, float),
        default=_env("CLIP_MAX_BATCH_DELAY_MS", 0.0),
        help="how long the first queued item waits for others (items queued during a pass are batched "
        "anyway)",
    )
    add(
        "--max_items",
        type=_at_least(1, int),
        default=_env("CLIP_MAX_ITEMS", 64),
        help="most items (images or texts) one request may carry",
    )
    add(
        "--max_image_pixels",
        type=_at_least(1, int),
        default=_env("CLIP_MAX_IMAGE_PIXELS", 40_000_000),
        help="largest image (width x height) decoded; larger ones are refused before decoding",
    )
    add(
        "--max_text_chars",
        type=_at_least(1, int),
        default=_env("CLIP_MAX_TEXT_CHARS", 2000),
        help="longest text in characters; longer texts are refused (long ones are token-truncated)",
    )
    add(
        "--max_queue_items",
        type=_at_least(1, int),
        default=_env("CLIP_MAX_QUEUE_ITEMS", 256),
        help="most items held at once (decoding, queued, in a forward pass); past it requests get "
        "503 + Retry-After at once. At least --max_items",
    )
    add(
        "--shutdown_grace_s",
        type=_at_least(1, int),
        default=_env("CLIP_SHUTDOWN_GRACE_S", 10),
        help="on SIGTERM, how long in-flight REST requests, then gRPC calls, may take to finish",
    )
    return parser


def read_settings(kind: Kind, argv: Sequence[str] | None = None) -> Settings:
    """Parse flags (falling back to env, then defaults) into a `Settings`."""
    parser = build_parser(kind)
    args = parser.parse_args(argv)  # argparse also converts and checks string defaults read from env
    for flag in ("device", "precision"):
        allowed = next(a.choices for a in parser._actions if a.dest == flag)
        if allowed is not None and getattr(args, flag) not in allowed:
            parser.error(f"--{flag} (or CLIP_{flag.upper()}) must be one of {sorted(allowed)}")
    if args.max_queue_items < args.max_items:
        parser.error(
            f"--max_queue_items ({args.max_queue_items}) must be at least --max_items ({args.max_items}): "
            "a full-size request could never be admitted"
        )
    model_dir = args.model_dir
    if model_dir is None and args.arch is None and MODEL_MOUNT.is_dir():
        model_dir = str(MODEL_MOUNT)
    return Settings(
        kind=kind,
        model_name=args.model_name,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        model_dir=Path(model_dir) if model_dir else None,
        arch=args.arch,
        pretrained=args.pretrained,
        device=args.device,
        precision=args.precision,
        cpu_kernels=args.cpu_kernels,
        num_threads=args.num_threads,
        forward_workers=args.forward_workers,
        max_batch_size=args.max_batch_size,
        max_batch_delay_ms=args.max_batch_delay_ms,
        max_items=args.max_items,
        max_image_pixels=args.max_image_pixels,
        max_text_chars=args.max_text_chars,
        max_queue_items=args.max_queue_items,
        shutdown_grace_s=args.shutdown_grace_s,
        latency_logging=args.enable_latency_logging,
        log_config_file=args.log_config_file,
        kserve_args=vars(args),
    )
