"""Start the real CLIP predictors (`python -m predictors.image|text`) on free 127.0.0.1 ports."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from devtools.procs import PYTHON, Program, pick_free_port

WITHOUT_TORCH = Path(__file__).with_name("without_torch.py")


def predictor(
    kind: str,
    model_dir: Path,
    log_dir: Path,
    args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    torch: bool = True,
) -> Program:
    """A not yet started `clip-<kind>` server serving `model_dir`; `.ports` has "http" and "grpc".
    Without `torch` it runs where torch, torchvision and open_clip cannot be imported (`without_torch`)."""
    http, grpc = pick_free_port(), pick_free_port()
    server = Program(
        name=f"clip-{kind}",
        argv=[
            PYTHON,
            *(["-m"] if torch else [str(WITHOUT_TORCH)]),
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
    kind: str,
    model_dir: Path,
    log_dir: Path,
    args: Sequence[str] = (),
    timeout: float = 120.0,
    torch: bool = True,
) -> Program:
    """Start a `clip-<kind>` server and wait until its model is ready."""
    return predictor(kind, model_dir, log_dir, args, torch=torch).start(timeout)


def serve(kind: str, model_dir: Path, log_dir: Path, *args: str, torch: bool = True) -> Iterator[Program]:
    """A started `clip-<kind>` server for a fixture to yield from; stopped when the fixture ends."""
    server = start_predictor(kind, model_dir, log_dir, args, torch=torch)
    try:
        yield server
    finally:
        server.stop()
