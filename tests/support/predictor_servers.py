"""Start the real CLIP predictors (`python -m predictors.image|text`) on free 127.0.0.1 ports."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .procs import PYTHON, Server, free_port


def predictor(
    kind: str, model_dir: Path, log_dir: Path, args: Sequence[str] = (), env: dict[str, str] | None = None
) -> Server:
    """A not yet started `clip-<kind>` server serving `model_dir`; `.ports` has "http" and "grpc"."""
    http, grpc = free_port(), free_port()
    server = Server(
        name=f"clip-{kind}",
        argv=[
            PYTHON,
            "-m",
            f"predictors.{kind}",
            "--model_dir",
            str(model_dir),
            "--http_port",
            str(http),
            "--grpc_port",
            str(grpc),
            "--num_threads",
            "1",
            *args,
        ],
        ready_url=f"http://127.0.0.1:{http}/v2/models/clip-{kind}/ready",
        env={"HF_HUB_OFFLINE": "1", **(env or {})},
        log_path=log_dir / f"clip-{kind}-{http}.log",
    )
    server.ports = {"http": http, "grpc": grpc}
    return server


def start_predictor(
    kind: str, model_dir: Path, log_dir: Path, args: Sequence[str] = (), timeout: float = 120.0
) -> Server:
    """Start a `clip-<kind>` server and wait until its model is ready."""
    return predictor(kind, model_dir, log_dir, args).start(timeout)
