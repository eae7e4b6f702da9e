"""Every documented client form gets open_clip's own embeddings and the model's parameters back."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from kserve import InferenceGRPCClient, InferenceRESTClient, RESTConfig
from kserve.protocol.infer_type import InferInput, InferRequest

from devtools.procs import PYTHON, ROOT, Program
from tests.support.tiers import process_fixture

from .media import (
    TEXTS,
    Reference,
    assert_same_embeddings,
    distinct_image,
    encode,
    exif_rotated_png,
    rgba_on_white,
    sample_images,
)


@dataclass
class Tower:
    server: Program
    model: str
    input_name: str
    items: list[Any]  # bytes for images, str for texts
    expected: np.ndarray
    logit_scale: float
    pretrained: str  # what the model reports: the model directory it was loaded (or bundled) from

    @property
    def http(self) -> str:
        return f"127.0.0.1:{self.server.ports['http']}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.server.ports['grpc']}"

    def as_object_array(self) -> np.ndarray:
        raw = [i.encode() if isinstance(i, str) else i for i in self.items]
        return np.array(raw, dtype=np.object_)


@process_fixture(params=["image", "text", "bundle-image", "bundle-text"])
def tower(request: pytest.FixtureRequest, tiny_ref: Reference, tiny_dir: Path) -> Tower:
    """A server of the tiny model, or of its engine bundle in a process without torch, whose
    embeddings must be open_clip's all the same."""
    bundled, _, kind = request.param.rpartition("-")
    server = request.getfixturevalue(f"{bundled}_{kind}_server" if bundled else f"{kind}_server")
    items: list[Any] = sample_images() if kind == "image" else TEXTS
    expected = tiny_ref.images(items) if kind == "image" else tiny_ref.texts(items)
    return Tower(server, f"clip-{kind}", kind, items, expected, tiny_ref.logit_scale, str(tiny_dir))


def assert_parameters(params: dict[str, Any], tower: Tower) -> None:
    assert params["embed_dim"] == tower.expected.shape[1]
    assert params["arch"] == "custom"
    assert params["pretrained"] == tower.pretrained
    assert float(params["logit_scale"]) == pytest.approx(tower.logit_scale, rel=1e-6)


def test_json_with_base64_images_and_plain_text(tower: Tower) -> None:
    data = [base64.b64encode(i).decode() if isinstance(i, bytes) else i for i in tower.items]
    body = {
        "id": "req-1",
        "inputs": [{"name": tower.input_name, "datatype": "BYTES", "shape": [len(data)], "data": data}],
    }
    r = httpx.post(f"http://{tower.http}/v2/models/{tower.model}/infer", json=body, timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == "req-1"
    assert out["outputs"][0]["name"] == "embedding" and out["outputs"][0]["datatype"] == "FP32"
    got = np.array(out["outputs"][0]["data"]).reshape(out["outputs"][0]["shape"])
    assert_same_embeddings(got, tower.expected)
    assert_parameters(out["parameters"], tower)


def test_tritonclient_http_binary_inputs_and_outputs(tower: Tower) -> None:
    client = httpclient.InferenceServerClient(tower.http)
    tensor = httpclient.InferInput(tower.input_name, [len(tower.items)], "BYTES")
    tensor.set_data_from_numpy(tower.as_object_array(), binary_data=True)
    wanted = httpclient.InferRequestedOutput("embedding", binary_data=True)
    result = client.infer(tower.model, [tensor], outputs=[wanted])
    assert result.get_output("embedding")["parameters"]["binary_data_size"] > 0
    assert_same_embeddings(result.as_numpy("embedding"), tower.expected)
    assert_parameters(result.get_response()["parameters"], tower)


def triton_grpc(tower: Tower, items: list[bytes], datatype: str = "BYTES") -> dict[str, Any]:
    """One tritonclient.grpc infer call, in a subprocess (see triton_grpc_call.py)."""
    spec = {
        "url": tower.grpc,
        "model": tower.model,
        "input": tower.input_name,
        "datatype": datatype,
        "items": [base64.b64encode(i).decode() for i in items],
    }
    done = subprocess.run(
        [PYTHON, "-m", "tests.predictors.triton_grpc_call"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return dict(json.loads(done.stdout))


def test_tritonclient_grpc(tower: Tower) -> None:
    out = triton_grpc(tower, list(tower.as_object_array()))
    assert "embedding" in out, out
    assert_same_embeddings(np.array(out["embedding"]), tower.expected)
    assert_parameters(out["parameters"], tower)
    assert out["metadata"]["platform"] == "open_clip"
    assert out["metadata"]["outputs"][0]["shape"] == ["-1", str(tower.expected.shape[1])]


def kserve_request(tower: Tower) -> InferRequest:
    tensor = InferInput(tower.input_name, [len(tower.items)], "BYTES")
    tensor.set_data_from_numpy(tower.as_object_array(), binary_data=True)
    return InferRequest(model_name=tower.model, infer_inputs=[tensor])


def test_kserve_rest_client(tower: Tower) -> None:
    async def call() -> Any:
        client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=30))
        try:
            return await client.infer(f"http://{tower.http}", kserve_request(tower), model_name=tower.model)
        finally:
            await client.close()

    result = asyncio.run(call())
    assert_same_embeddings(result.outputs[0].as_numpy(), tower.expected)
    assert_parameters(result.parameters, tower)


def test_kserve_grpc_client(tower: Tower) -> None:
    async def call() -> Any:
        client = InferenceGRPCClient(tower.grpc, timeout=30)
        try:
            return await client.infer(kserve_request(tower))
        finally:
            await client.close()

    result = asyncio.run(call())
    assert_same_embeddings(result.outputs[0].as_numpy(), tower.expected)
    params = {k: getattr(v, v.WhichOneof("parameter_choice")) for k, v in result.parameters.items()}
    assert_parameters(params, tower)


def test_metadata_and_config_describe_the_model(tower: Tower) -> None:
    dim = tower.expected.shape[1]
    meta = httpx.get(f"http://{tower.http}/v2/models/{tower.model}").json()
    assert meta["platform"] == "open_clip"
    assert meta["inputs"] == [{"name": tower.input_name, "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"] == [{"name": "embedding", "datatype": "FP32", "shape": [-1, dim]}]
    config = httpclient.InferenceServerClient(tower.http).get_model_config(tower.model)
    assert config["platform"] == "open_clip"
    assert_parameters(config["parameters"], tower)
    assert config["parameters"]["device"] == "cpu"
    assert config["parameters"]["precision"] == "fp32"  # the default on a CPU
    assert config["parameters"]["engine"] in ("torch", "onnxruntime", "openvino")  # by trial at load
    assert "ms" in config["parameters"]["engine_trial"]


def test_unknown_model_is_404(tower: Tower) -> None:
    r = httpx.get(f"http://{tower.http}/v2/models/nope/config")
    assert r.status_code == 404


def test_exif_rotated_and_transparent_images_encode_as_seen(
    image_server: Program, tiny_ref: Reference
) -> None:
    upright = distinct_image(11, (48, 32))
    transparent, on_white = rgba_on_white(distinct_image(12))
    files = [exif_rotated_png(upright), transparent]
    body = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [2],
                "data": [base64.b64encode(f).decode() for f in files],
            }
        ]
    }
    r = httpx.post(
        f"http://127.0.0.1:{image_server.ports['http']}/v2/models/clip-image/infer", json=body, timeout=30
    )
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    expected = tiny_ref.images([encode(upright), encode(on_white)])
    assert_same_embeddings(np.array(out["data"]).reshape(out["shape"]), expected)
