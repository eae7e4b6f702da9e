"""docker-compose.yml brought up for real: docker-compose drives podman through its Docker-compatible API.

Compose cannot download model weights here, so an override file mounts the demo model at /mnt/models,
as KServe's storage initializer would; everything else is the committed file as a user runs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from devtools.procs import ROOT, pick_free_port
from tests.images.client import compare, shape_and_captions
from tests.images.podman import DEMO_MODEL, podman


@pytest.fixture(scope="module")
def docker_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """podman's Docker-compatible API on a private unix socket, for as long as the module runs."""
    sock = tmp_path_factory.mktemp("podman-api") / "podman.sock"
    podman = shutil.which("podman")
    assert podman, "podman is not installed: run scripts/podman-setup.sh (as root)"
    service = subprocess.Popen(
        [podman, "system", "service", "--time=0", f"unix://{sock}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        transport = httpx.HTTPTransport(uds=str(sock))
        with httpx.Client(transport=transport, base_url="http://podman") as client:
            for _ in range(300):
                assert service.poll() is None, f"podman system service exited with {service.returncode}"
                try:
                    if client.get("/_ping").text == "OK":
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            else:
                raise TimeoutError(f"podman's API did not answer on {sock}")
        yield f"unix://{sock}"
    finally:
        service.terminate()
        service.wait(30)


def override(path: Path) -> Path:
    """The demo model at /mnt/models of both predictors, instead of downloading ViT-B-32."""
    model = {"volumes": [f"{DEMO_MODEL}:/mnt/models:ro"], "environment": {"CLIP_MODEL_DIR": "/mnt/models"}}
    path.write_text(yaml.safe_dump({"services": {"clip-image": model, "clip-text": model}}))
    return path


def pass_health_checks_when_ready(project: str, ports: dict[str, int]) -> None:
    """Run a predictor's health check once its published ready URL answers, as the Docker daemon would.

    podman schedules health checks with systemd timers; where there is no systemd it never runs them, and
    `up` would wait for the gateway's `service_healthy` dependencies forever.
    """
    for kind in ("image", "text"):
        try:
            url = f"http://127.0.0.1:{ports[kind.upper()]}/v2/models/clip-{kind}/ready"
            ready = httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            ready = False
        if ready:
            podman("healthcheck", "run", f"{project}_clip-{kind}_1", check=False)


@pytest.fixture(scope="module")
def compose_stack(docker_host: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`docker-compose up` of docker-compose.yml on free ports, yielding the gateway's URL; then `down`."""
    compose = shutil.which("docker-compose") or str(ROOT / ".tools" / "bin" / "docker-compose")
    ports = {name: pick_free_port() for name in ("GATEWAY", "IMAGE", "IMAGE_GRPC", "TEXT", "TEXT_GRPC")}
    env = {
        **os.environ,
        "DOCKER_HOST": docker_host,
        "CLIP_DEVICE": "cpu",
        **{f"CLIP_{name}_PORT": str(port) for name, port in ports.items()},
    }
    extra = override(tmp_path_factory.mktemp("compose") / "override.yml")
    project = f"clip-images-test-{os.getpid()}"
    base = [compose, "--project-name", project]
    base += ["--file", str(ROOT / "docker-compose.yml"), "--file", str(extra)]

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*base, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
        )

    up: subprocess.Popen[bytes] | None = None
    try:
        # `up` waits for the predictors' health checks before it starts the gateway.
        up = subprocess.Popen(
            [*base, "up", "--detach", "--no-build"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        while up.poll() is None:
            pass_health_checks_when_ready(project, ports)
            time.sleep(2)
        assert up.returncode == 0, up.communicate()[0].decode() + run("logs", "--tail=30").stdout
        url = f"http://127.0.0.1:{ports['GATEWAY']}"
        for _ in range(600):
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        else:
            raise TimeoutError("the compose gateway never got ready:\n" + run("logs", "--tail=30").stdout)
        yield url
    finally:
        if up is not None and up.poll() is None:
            up.terminate()
            up.wait(30)
        down = run("down", "--volumes", "--timeout", "30")
        assert down.returncode == 0, down.stdout + down.stderr


@pytest.mark.timeout(900)
def test_compose_stack_answers_compare(compose_stack: str) -> None:
    image, captions = shape_and_captions()
    body = compare(compose_stack, image, captions)
    assert body["similarities"][0] > body["similarities"][1]
