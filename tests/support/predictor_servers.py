"""Start the real CLIP predictors (`python -m predictors.image|text`) on free 127.0.0.1 ports."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from devtools.procs import PYTHON, Program, pick_free_port


def predictor(
    kind: str, model_dir: Path, log_dir: Path, args: Sequence[str] = (), env: dict[str, str] | None = None
) -> Program:
    """A not yet started `clip-<kind>` server serving `model_dir`; `.ports` has "http" and "grpc"."""
    http, grpc = pick_free_port(), pick_free_port()
    server = Program(
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
) -> Program:
    """Start a `clip-<kind>` server and wait until its model is ready."""
    return predictor(kind, model_dir, log_dir, args).start(timeout)


def serve(kind: str, model_dir: Path, log_dir: Path, *args: str) -> Iterator[Program]:
    """A started `clip-<kind>` server for a fixture to yield from; stopped when the fixture ends."""
    server = start_predictor(kind, model_dir, log_dir, args)
    try:
        yield server
    finally:
        server.stop()
