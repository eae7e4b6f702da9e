"""Command-line flags and `CLIP_*` environment variables of both predictors, read once into `Settings`.

Precedence: flag > environment variable > default. KServe's own server flags (`--http_port`,
`--grpc_port`, `--model_name`, `--workers`, `--enable_latency_logging`, `--log_config_file`, ...) are
accepted too; those the predictors use are fields of `Settings` under their KServe names.

The defaults of threads, forward workers and batch delay were chosen with `python -m bench.tune`
(`make bench-tune`); the measurements behind them are in bench/results/predictor-measurements.md and
bench/results/tune-*.md. What they rest on:
- The image tower does most of the work of a request, so the image predictor's passes get every core
  (torch's default, capped by the container's CPU limit: see `predictors.threads`). The text predictor
  gets one thread: a text pass on several threads spins at OpenMP barriers on the cores the image
  predictor is using.
- On a CPU the image predictor runs two forward passes at once, each on half of a full batch, with
  every thread for a pass alone and a share when they overlap: under load this beats one pass on all
  threads, which waits at barriers. On a GPU one pass at a time (half batches would only cost).
- No batch delay: items that queue while a CPU pass runs are batched anyway, and a delay only adds
  latency when little is queued. On a GPU, where a pass is short, a few milliseconds of delay can pay:
  set it there.

What depends on the processor is not a default frozen here: the engine and its kernels (`--engine`,
`--cpu_kernels`, `auto`) are timed on the model at load (`predictors.engines`), and docs/configuration.md
lists every choice made at load and how.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from kserve import model_server

Kind = Literal["image", "text"]

MODEL_MOUNT = Path("/mnt/models")

DEFAULT_PORTS: dict[Kind, tuple[int, int]] = {"image": (8001, 9001), "text": (8002, 9002)}
DEFAULT_THREADS: dict[Kind, int] = {"image": 0, "text": 1}  # 0: from the CPUs, see predictors.threads
DEFAULT_FORWARD_WORKERS: dict[Kind, int] = {"image": 0, "text": 1}  # 0: 2 on a CPU, 1 on a GPU


DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")
ENGINES = ("auto", "torch", "onnxruntime", "openvino")
CPU_KERNELS = ("auto", "onednn", "torch")
DEFAULT_STALL_TIMEOUT_S = 120.0
DEFAULT_TRIAL_WAIT_S = 60.0


@dataclass(frozen=True)
class Settings:
    """Everything one predictor process is configured with, one field per flag it uses.

    Each field is named as its flag's argparse destination (`--timeout-keep-alive`, spelt so by KServe,
    is `timeout_keep_alive`); `read_settings` fills every field from the parsed flags by that name.
    """

    kind: Kind
    # KServe's server flags, as `kserve.model_server.parser` defines them
    model_name: str
    http_port: int
    grpc_port: int
    workers: int
    max_threads: int
    max_asyncio_workers: int | None
    enable_grpc: bool
    enable_docs_url: bool
    enable_latency_logging: bool
    log_config_file: str | None
    access_log_format: str | None
    event_loop: str
    timeout_keep_alive: int
    # The CLIP flags below
    model_dir: Path | None
    arch: str | None
    pretrained: str | None
    device: str
    precision: str
    engine: str
    cpu_kernels: str
    trial_wait_s: float
    num_threads: int
    forward_workers: int
    max_batch_size: int
    max_batch_delay_ms: float
    max_items: int
    max_image_pixels: int
    max_text_chars: int
    max_queue_items: int
    shutdown_grace_s: int
    stall_timeout_s: float


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
    add("--device", default=_env("CLIP_DEVICE", "auto"), choices=DEVICES, help="auto: cuda when usable")
    add(
        "--precision",
        default=_env("CLIP_PRECISION", "auto"),
        choices=PRECISIONS,
        help="auto: fp16 on a GPU, fp32 on a CPU. int8 (CPU only, never the default): dynamic quantization "
        "of the linear layers, faster but with embeddings slightly off fp32 (docs/configuration.md)",
    )
    add(
        "--engine",
        default=_env("CLIP_ENGINE", "auto"),
        choices=ENGINES,
        help="what runs the tower on a CPU at fp32: torch, or onnxruntime / openvino on the tower "
        "converted to ONNX at load (cached in the model dir when it is writable). auto: every one "
        "installed is timed on this model at load, on a pass like one under load, and the fastest "
        "serves (the trial is in the log and in /v2/models/{name}/config). A GPU, and fp16/bf16, run torch",
    )
    add(
        "--cpu_kernels",
        default=_env("CLIP_CPU_KERNELS", "auto"),
        choices=CPU_KERNELS,
        help="fp32 linear layers when torch runs the tower on a CPU: onednn (uses AVX-512 on AMD CPUs "
        "too, where torch's BLAS does not) or torch's own BLAS. auto: both take part in the --engine "
        "trial; naming one keeps only that one for torch",
    )
    add(
        "--trial_wait_s",
        type=_at_least(0, float),
        default=_env("CLIP_TRIAL_WAIT_S", DEFAULT_TRIAL_WAIT_S),
        help="the engine trial times its rounds only while no other process takes the CPUs it runs on "
        "(e.g. predictors loading at once on one node), waiting for them to leave; this long at most, "
        "then it times what it gets and says so in its log line. 0: never wait",
    )
    add(
        "--num_threads",
        type=_at_least(0, int),
        default=_env("CLIP_NUM_THREADS", DEFAULT_THREADS[kind]),
        help="intra-op threads of the forward passes (torch's or the engine's); 0: one per core the "
        "process may use (its CPU affinity, capped by a container CPU limit), kept for a pass alone only "
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
    add(
        "--stall_timeout_s",
        type=_at_least(1, float),
        default=_env("CLIP_STALL_TIMEOUT_S", DEFAULT_STALL_TIMEOUT_S),
        help="liveness: GET /v2/health/live (and /) answers 503 once items have waited this long with "
        "no forward pass finishing, or one pass has run this long, so Kubernetes restarts a wedged "
        "predictor. Keep it above the longest pass of a full batch (a big model on a CPU at "
        "--max_batch_size can take tens of seconds)",
    )
    return parser


def read_settings(kind: Kind, argv: Sequence[str] | None = None) -> Settings:
    """Parse flags (falling back to env, then defaults) into a `Settings`."""
    parser = build_parser(kind)
    values = vars(parser.parse_args(argv))  # argparse also converts and checks string defaults from env
    # argparse checks `choices` on flags only, not on defaults, so values read from env are checked here.
    for flag, allowed in (
        ("device", DEVICES),
        ("precision", PRECISIONS),
        ("engine", ENGINES),
        ("cpu_kernels", CPU_KERNELS),
    ):
        if values[flag] not in allowed:
            parser.error(f"--{flag} (or CLIP_{flag.upper()}) must be one of {list(allowed)}")
    if values["max_queue_items"] < values["max_items"]:
        parser.error(
            f"--max_queue_items ({values['max_queue_items']}) must be at least --max_items "
            f"({values['max_items']}): a full-size request could never be admitted"
        )
    model_dir = values["model_dir"]
    if model_dir is None and values["arch"] is None and MODEL_MOUNT.is_dir():
        model_dir = MODEL_MOUNT
    values["model_dir"] = Path(model_dir) if model_dir else None
    return Settings(kind=kind, **{f.name: values[f.name] for f in fields(Settings) if f.name != "kind"})
