"""The CPU predictor image (no torch) serves the demo model's engine bundle as the chart runs its pods:
open_clip's embeddings, `/compare/` through the gateway image, at a fraction of the full image's size."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from devtools.procs import PYTHON, ROOT
from tests.images.client import compare, shape_and_captions
from tests.images.podman import (
    DEMO_MODEL,
    PREDICTOR_CPU_IMAGE,
    PREDICTOR_IMAGE,
    Container,
    distributions,
    image_size,
    run_once,
    running,
)
from tests.images.test_containers import gateway_container, predictor_container
from tests.predictors.media import Reference


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model's engine bundle, as the command writes it, readable by the containers' uid. (In a
    process of its own: kserve, which the command imports, and tritonclient.grpc cannot share one.)"""
    directory = tmp_path_factory.mktemp("bundle")
    command = [PYTHON, "-m", "predictors.bundle", "--model_dir", str(DEMO_MODEL), "--out", str(directory)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for path in (directory.parent, directory, *directory.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


@pytest.fixture(scope="module")
def cpu_pods(bundle: Path) -> Iterator[dict[str, Container]]:
    image = predictor_container("image", PREDICTOR_CPU_IMAGE, bundle)
    text = predictor_container("text", PREDICTOR_CPU_IMAGE, bundle)
    gateway = gateway_container(image.url, text.url, name="gateway-cpu")
    with running({"clip-image": image, "clip-text": text, "clip-gateway": gateway}) as pods:
        yield pods


def test_the_cpu_image_holds_no_torch() -> None:
    result = run_once(PREDICTOR_CPU_IMAGE, "python", "-c", "import torch")
    assert result.returncode != 0 and "No module named 'torch'" in result.stderr, result.stderr
    names = distributions(PREDICTOR_CPU_IMAGE)
    assert {"kserve", "onnxruntime", "openvino"} <= names
    assert not names & {"torch", "torchvision", "open-clip-torch", "open_clip_torch"}


def test_the_cpu_image_is_a_fraction_of_the_full_one() -> None:
    assert image_size(PREDICTOR_CPU_IMAGE) < image_size(PREDICTOR_IMAGE) / 3


def test_cpu_predictors_answer_with_open_clips_embeddings(cpu_pods: dict[str, Container]) -> None:
    reference = Reference(DEMO_MODEL)
    png, captions = shape_and_captions()
    for kind, data, want in (
        ("image", [base64.b64encode(png).decode()], reference.images([png])),
        ("text", captions, reference.texts(captions)),
    ):
        pod = cpu_pods[f"clip-{kind}"]
        config = httpx.get(f"{pod.url}/v2/models/clip-{kind}/config", timeout=10).json()["parameters"]
        assert config["model_format"] == "engine bundle" and config["engine"] in ("onnxruntime", "openvino")
        body = {"inputs": [{"name": kind, "datatype": "BYTES", "shape": [len(data)], "data": data}]}
        r = httpx.post(f"{pod.url}/v2/models/clip-{kind}/infer", json=body, timeout=30)
        assert r.status_code == 200, r.text
        got = np.array(r.json()["outputs"][0]["data"], dtype=np.float32).reshape(want.shape)
        assert float((got * want).sum(axis=1).min()) >= 0.9999


def test_compare_through_the_gateway_on_cpu_predictors(cpu_pods: dict[str, Container]) -> None:
    png, captions = shape_and_captions()
    reference = Reference(DEMO_MODEL)
    want = (reference.texts(captions) @ reference.images([png])[0]).tolist()
    got = compare(cpu_pods["clip-gateway"].url, png, captions)
    assert got["similarities"] == pytest.approx(want, abs=1e-4)
    assert got["similarities"][0] > got["similarities"][1]
