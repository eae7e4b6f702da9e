"""The whole system as a user runs it: both predictors on the demo model, and the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.procs import PYTHON, ROOT, Server, free_port

DEMO_MODEL_DIR = ROOT / "models" / "clip-shapes"


@dataclass(frozen=True)
class Stack:
    """Where the running programs answer."""

    gateway: str
    image_http: str
    text_http: str
    image_grpc: str
    text_grpc: str


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Start both predictors (in parallel) and then the gateway, on free ports."""
    logs: Path = tmp_path_factory.mktemp("e2e-logs")
    ports = {name: (free_port(), free_port()) for name in ("image", "text")}
    gateway_port = free_port()
    predictors = [
        Server(
            name,
            [
                PYTHON,
                "-m",
                f"predictors.{name}",
                "--model_dir",
                str(DEMO_MODEL_DIR),
                "--http_port",
                str(http),
                "--grpc_port",
                str(grpc),
            ],
            f"http://127.0.0.1:{http}/v2/models/clip-{name}/ready",
            log_path=logs / f"{name}.log",
        )
        for name, (http, grpc) in ports.items()
    ]
    urls = {name: f"http://127.0.0.1:{http}" for name, (http, _) in ports.items()}
    gateway = Server(
        "gateway",
        [PYTHON, "-m", "gateway"],
        f"http://127.0.0.1:{gateway_port}/readyz",
        env={
            "GATEWAY_PORT": str(gateway_port),
            "IMAGE_PREDICTOR_URL": urls["image"],
            "TEXT_PREDICTOR_URL": urls["text"],
        },
        log_path=logs / "gateway.log",
    )
    try:
        for p in predictors:
            p.launch()
        for p in predictors:
            p.wait_ready(timeout=90)
        gateway.start(timeout=60)
        yield Stack(
            gateway=f"http://127.0.0.1:{gateway_port}",
            image_http=urls["image"],
            text_http=urls["text"],
            image_grpc=f"127.0.0.1:{ports['image'][1]}",
            text_grpc=f"127.0.0.1:{ports['text'][1]}",
        )
    finally:
        for s in (gateway, *predictors):
            s.stop()
