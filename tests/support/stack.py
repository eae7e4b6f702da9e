"""The whole local stack (both predictors and the gateway) as real processes on free 127.0.0.1 ports."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.procs import PYTHON, Program, pick_free_port, start_all, stop_all

from .predictor_servers import predictor

# Prometheus job names, as the chart's ServiceMonitor/PodMonitors and prometheus/prometheus.yml set them.
JOBS = ("clip-gateway", "clip-image", "clip-text")


@dataclass
class LocalStack:
    """The three programs of `make run`, keyed by their Prometheus job name."""

    servers: dict[str, Program]
    log_dir: Path

    @property
    def gateway_url(self) -> str:
        return self.servers["clip-gateway"].url

    def http_ports(self) -> dict[str, int]:
        """job name -> the HTTP port whose /metrics Prometheus scrapes."""
        return {job: server.ports["http"] for job, server in self.servers.items()}

    def stop(self, job: str) -> None:
        self.servers[job].stop()

    def restart(self, job: str, timeout: float = 120.0) -> Program:
        """Start `job` again with the same command and ports (after `stop`), and wait until it is ready."""
        old = self.servers[job]
        assert old.proc is None or old.proc.poll() is not None, f"{job} is still running"
        log = self.log_dir / f"{job}-restarted.log"
        # Kept before it is ready, so that `stop_all` stops it even if it never becomes ready.
        self.servers[job] = dataclasses.replace(old, proc=None, log_path=log)
        return self.servers[job].start(timeout)

    def stop_all(self) -> None:
        """SIGTERM the three at once; SIGKILL any still running after the grace period."""
        stop_all(self.servers.values())


def gateway_server(image_url: str, text_url: str, log_dir: Path, **env: str) -> Program:
    """A not yet started `python -m gateway` on a free port, pointed at the two predictors."""
    port = pick_free_port()
    return Program(
        "clip-gateway",
        [PYTHON, "-m", "gateway"],
        ready_url=f"http://127.0.0.1:{port}/healthz",
        env={
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "IMAGE_PREDICTOR_URL": image_url,
            "TEXT_PREDICTOR_URL": text_url,
            **env,
        },
        log_path=log_dir / f"clip-gateway-{port}.log",
        ports={"http": port},
    )


def plan_stack(model_dir: Path, log_dir: Path, predictor_args: Sequence[str] = ()) -> LocalStack:
    """The stack, not started yet: ports are chosen, so a Prometheus config can name them up front.
    `predictor_args`: more flags of both predictors."""
    image = predictor("image", model_dir, log_dir, predictor_args)
    text = predictor("text", model_dir, log_dir, predictor_args)
    gateway = gateway_server(image.url, text.url, log_dir)
    return LocalStack({"clip-gateway": gateway, "clip-image": image, "clip-text": text}, log_dir)


def start_stack(stack: LocalStack, timeout: float = 120.0) -> LocalStack:
    """Start the three programs at once (the predictors' torch import dominates) and wait for each.

    On failure every program already started is stopped before the error propagates.
    """
    start_all(list(stack.servers.values()), timeout)
    return stack
