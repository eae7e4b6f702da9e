"""The whole system as a user runs it: both predictors on the demo model, and the gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import PYTHON, ROOT, Server, free_port

DEMO_MODEL_DIR = ROOT / "models" / "clip-shapes"


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start the three processes on free ports; yield the gateway's base URL."""
    logs: Path = tmp_path_factory.mktemp("e2e-logs")
    image_port, text_port, gateway_port = free_port(), free_port(), free_port()
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
                str(port),
                "--grpc_port",
                str(free_port()),
            ],
            f"http://127.0.0.1:{port}/v2/models/clip-{name}/ready",
            log_path=logs / f"{name}.log",
        )
        for name, port in (("image", image_port), ("text", text_port))
    ]
    gateway = Server(
        "gateway",
        [PYTHON, "-m", "gateway"],
        f"http://127.0.0.1:{gateway_port}/readyz",
        env={
            "GATEWAY_PORT": str(gateway_port),
            "IMAGE_PREDICTOR_URL": f"http://127.0.0.1:{image_port}",
            "TEXT_PREDICTOR_URL": f"http://127.0.0.1:{text_port}",
        },
        log_path=logs / "gateway.log",
    )
    servers = [*predictors, gateway]
    try:
        for s in servers:
            s.start(timeout=90)
        yield f"http://127.0.0.1:{gateway_port}"
    finally:
        for s in reversed(servers):
            s.stop()
