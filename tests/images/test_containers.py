"""Both images run as the chart runs its pods, serving the demo model as the local stack does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from devtools.procs import ROOT, pick_free_port
from tests.images.client import compare, shape_and_captions
from tests.images.podman import (
    DEMO_MODEL,
    GATEWAY_IMAGE,
    PREDICTOR_CPU_IMAGE,
    PREDICTOR_IMAGE,
    PREDICTOR_SHUTDOWN_GRACE_S,
    Container,
    distributions,
    model_mount,
    podman,
    run_once,
    running,
)
from tests.support.stack import plan_stack, start_stack


def predictor_container(kind: str, image: str = PREDICTOR_IMAGE, model_dir: Path = DEMO_MODEL) -> Container:
    http, grpc = pick_free_port(), pick_free_port()
    ports = ["--http_port", str(http), "--grpc_port", str(grpc)]
    return Container(
        name=f"clip-images-test-{os.getpid()}-{image.rsplit('/', 1)[-1].split(':')[0]}-{kind}",
        image=image,
        args=["-m", f"predictors.{kind}", "--model_name", f"clip-{kind}", *ports],
        ready_url=f"http://127.0.0.1:{http}/v2/models/clip-{kind}/ready",
        env={"HF_HUB_OFFLINE": "1", "CLIP_SHUTDOWN_GRACE_S": str(PREDICTOR_SHUTDOWN_GRACE_S)},
        volumes=[model_mount(model_dir)],
        tmpfs=["/cache"],
        ports={"http": http, "grpc": grpc},
    )


def gateway_container(image_url: str, text_url: str, name: str = "gateway") -> Container:
    port = pick_free_port()
    return Container(
        name=f"clip-images-test-{os.getpid()}-{name}",
        image=GATEWAY_IMAGE,
        args=[],
        ready_url=f"http://127.0.0.1:{port}/readyz",
        ports={"http": port},
        env={
            "GATEWAY_HOST": "127.0.0.1",
            "GATEWAY_PORT": str(port),
            "IMAGE_PREDICTOR_URL": image_url,
            "TEXT_PREDICTOR_URL": text_url,
        },
    )


@pytest.fixture(scope="module")
def pods() -> Iterator[dict[str, Container]]:
    """The three containers, started together and each ready; removed afterwards."""
    image, text = predictor_container("image"), predictor_container("text")
    gateway = gateway_container(image.url, text.url)
    with running({"clip-image": image, "clip-text": text, "clip-gateway": gateway}) as pods:
        yield pods


def test_each_container_reports_ready(pods: dict[str, Container]) -> None:
    for kind in ("image", "text"):
        meta = httpx.get(f"{pods[f'clip-{kind}'].url}/v2/models/clip-{kind}", timeout=10).json()
        assert meta["name"] == f"clip-{kind}"
    ready = httpx.get(pods["clip-gateway"].ready_url, timeout=10).json()
    assert ready == {"ready": True, "predictors": {"image": "ready", "text": "ready"}}


def test_compare_through_the_gateway_container_matches_the_local_stack(
    pods: dict[str, Container], tmp_path_factory: pytest.TempPathFactory
) -> None:
    image, texts = shape_and_captions()
    in_containers = compare(pods["clip-gateway"].url, image, texts)
    local = start_stack(plan_stack(DEMO_MODEL, tmp_path_factory.mktemp("local-stack")))
    try:
        on_host = compare(local.gateway_url, image, texts)
    finally:
        local.stop_all()
    assert in_containers["similarities"] == pytest.approx(on_host["similarities"], abs=1e-6)
    assert in_containers["similarities"][0] > in_containers["similarities"][1]


def test_grpc_answers_with_the_same_embedding_as_http(pods: dict[str, Container]) -> None:
    pod = pods["clip-text"]
    caption = shape_and_captions()[1][0]
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [caption]}]}
    http = httpx.post(f"{pod.url}/v2/models/clip-text/infer", json=body, timeout=30)
    assert http.status_code == 200, http.text
    over_http = np.array(http.json()["outputs"][0]["data"], dtype=np.float32)

    client = grpcclient.InferenceServerClient(f"127.0.0.1:{pod.ports['grpc']}")
    tensor = grpcclient.InferInput("text", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([caption.encode()], dtype=np.object_))
    over_grpc = client.infer("clip-text", [tensor]).as_numpy("embedding")
    assert over_grpc.shape[0] == 1
    assert over_grpc[0] == pytest.approx(over_http, abs=1e-6)


@pytest.mark.parametrize("image", [PREDICTOR_IMAGE, PREDICTOR_CPU_IMAGE, GATEWAY_IMAGE])
def test_each_image_runs_as_uid_10001_unless_told_otherwise(image: str) -> None:
    result = podman("run", "--rm", "--network=none", "--entrypoint", "id", image, "-u")
    assert result.stdout.strip() == "10001"


def test_the_gateway_image_holds_no_torch() -> None:
    result = run_once(GATEWAY_IMAGE, "python", "-c", "import torch")
    assert result.returncode != 0 and "No module named 'torch'" in result.stderr, result.stderr
    names = distributions(GATEWAY_IMAGE)
    assert "fastapi" in names
    assert not names & {"torch", "torchvision", "open-clip-torch", "open_clip_torch", "kserve"}


def test_the_predictor_image_holds_the_pinned_torch() -> None:
    pins = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "requirements.py"), "predictor", "torch"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    result = run_once(PREDICTOR_IMAGE, "python", "-c", "import torch; print(torch.__version__)")
    assert result.returncode == 0, result.stderr
    # A variant built from another index (TORCH_INDEX_URL) carries a local label such as +cu126.
    assert pins == [f"torch=={result.stdout.strip().split('+')[0]}"]


def test_sigterm_ends_each_container_with_exit_0_within_its_grace(pods: dict[str, Container]) -> None:
    """Runs last in this module: it stops the containers (gateway first, as a rollout would drain it)."""
    codes = {name: pods[name].stop() for name in ("clip-gateway", "clip-image", "clip-text")}
    logs = {name: pods[name].logs(10) for name, code in codes.items() if code != 0}
    assert codes == {"clip-gateway": 0, "clip-image": 0, "clip-text": 0}, logs
