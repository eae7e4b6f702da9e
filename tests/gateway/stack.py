"""The real programs for the gateway's end-to-end tests: predictors and gateways as subprocesses."""

from __future__ import annotations

from pathlib import Path

from tests.support.procs import PYTHON, Server, free_port


def predictor(kind: str, model_dir: Path, logs: Path) -> Server:
    """A started `python -m predictors.<kind>` on free ports."""
    http, grpc = free_port(), free_port()
    server = Server(
        f"{kind}-predictor",
        [
            PYTHON,
            "-m",
            f"predictors.{kind}",
            "--model_dir",
            str(model_dir),
            "--http_port",
            str(http),
            "--grpc_port",
            str(grpc),
        ],
        ready_url=f"http://127.0.0.1:{http}/v2/models/clip-{kind}/ready",
        log_path=logs / f"{kind}-{http}.log",
        ports={"http": http, "grpc": grpc},
    )
    return _start(server, 120)


def base_url(server: Server) -> str:
    return f"http://127.0.0.1:{server.ports['http']}"


def gateway(image_url: str, text_url: str, logs: Path, **env: str) -> Server:
    """A started `python -m gateway` on a free port, pointed at the two predictor URLs."""
    port = free_port()
    server = Server(
        "gateway",
        [PYTHON, "-m", "gateway"],
        ready_url=f"http://127.0.0.1:{port}/healthz",
        env={
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "IMAGE_PREDICTOR_URL": image_url,
            "TEXT_PREDICTOR_URL": text_url,
            **env,
        },
        log_path=logs / f"gateway-{port}.log",
        ports={"http": port},
    )
    return _start(server, 60)


def _start(server: Server, timeout: float) -> Server:
    try:
        return server.start(timeout=timeout)
    except BaseException:
        server.kill()
        raise
