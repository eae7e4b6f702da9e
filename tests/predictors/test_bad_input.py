"""Every kind of bad input is a 400 (gRPC INVALID_ARGUMENT) naming the problem; the server serves on."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from tritonclient.utils import InferenceServerException

from devtools.procs import Program
from tests.support.predictor_servers import serve
from tests.support.tiers import process_fixture

from .media import distinct_image, encode, png_header_only

MAX_ITEMS = 4
GOOD_IMAGE = encode(distinct_image(7))
JPEG = encode(distinct_image(8, (64, 64)), "JPEG")


@process_fixture(scope="module")
def image_server(tiny_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("image", tiny_dir, log_dir, "--max_items", str(MAX_ITEMS))


@process_fixture(scope="module")
def text_server(tiny_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("text", tiny_dir, log_dir, "--max_items", str(MAX_ITEMS))


@dataclass
class Case:
    kind: str
    elements: list[Any]  # bytes, or floats with datatype FP32
    expect: str  # substring of the error message
    name: str = ""
    datatype: str = "BYTES"
    transports: tuple[str, ...] = ("rest", "grpc")
    shape: list[int] = field(default_factory=list)

    def input_name(self) -> str:
        return self.name or self.kind

    def tensor_shape(self) -> list[int]:
        return self.shape or [len(self.elements)]


CASES = {
    "image-not-an-image": Case(
        "image", [b"hello, I am not an image"], "image[0] is not a supported image file"
    ),
    "image-truncated": Case("image", [JPEG[: len(JPEG) // 2]], "image[0] could not be decoded (truncated"),
    "image-zero-bytes": Case("image", [b""], "image[0] is empty (0 bytes)"),
    "image-too-many-pixels": Case(
        "image",
        [png_header_only(10_000, 10_000)],
        "10000x10000 = 100000000 pixels, over the limit of 40000000",
    ),
    "image-second-element-bad": Case(
        "image", [GOOD_IMAGE, b"junk"], "image[1] is not a supported image file"
    ),
    "image-wrong-input-name": Case(
        "image", [GOOD_IMAGE], "expected exactly one input named 'image'", name="img"
    ),
    "image-wrong-datatype": Case(
        "image", [1.0], "input 'image' must have datatype BYTES, got FP32", datatype="FP32"
    ),
    "image-empty-batch": Case("image", [], "input 'image' is an empty batch"),
    "image-too-many-items": Case(
        "image", [GOOD_IMAGE] * (MAX_ITEMS + 1), "more than the 4 allowed per request"
    ),
    "image-shape-mismatch": Case("image", [GOOD_IMAGE] * 2, "has shape [3] but 2 elements", shape=[3]),
    "image-bad-base64": Case("image", ["not base64!"], "image[0] is not valid base64", transports=("rest",)),
    "text-empty": Case("text", [b""], "text[0] is empty"),
    "text-blank": Case("text", [b"ok", b"   "], "text[1] is empty"),
    "text-too-long": Case("text", [b"a" * 2001], "text[0] has 2001 characters, over the limit of 2000"),
    "text-not-utf8": Case("text", [b"\xff\xfe"], "text[0] is not valid UTF-8", transports=("grpc",)),
    "text-wrong-input-name": Case(
        "text", [b"a cat"], "expected exactly one input named 'text'", name="texts"
    ),
    "text-wrong-datatype": Case(
        "text", [1.0], "input 'text' must have datatype BYTES, got FP32", datatype="FP32"
    ),
    "text-empty-batch": Case("text", [], "input 'text' is an empty batch"),
    "text-too-many-items": Case("text", [b"a cat"] * (MAX_ITEMS + 1), "more than the 4 allowed per request"),
}


def rest_body(case: Case) -> dict[str, Any]:
    if case.datatype != "BYTES":
        data = case.elements
    elif case.kind == "image":
        data = [base64.b64encode(e).decode() if isinstance(e, bytes) else e for e in case.elements]
    else:
        data = [e.decode() for e in case.elements]
    tensor = {
        "name": case.input_name(),
        "datatype": case.datatype,
        "shape": case.tensor_shape(),
        "data": data,
    }
    return {"inputs": [tensor]}


def grpc_request(case: Case) -> pb.ModelInferRequest:
    if case.datatype == "BYTES":
        contents = pb.InferTensorContents(bytes_contents=case.elements)
    else:
        contents = pb.InferTensorContents(fp32_contents=case.elements)
    tensor = pb.ModelInferRequest.InferInputTensor(
        name=case.input_name(), datatype=case.datatype, shape=case.tensor_shape(), contents=contents
    )
    return pb.ModelInferRequest(model_name=f"clip-{case.kind}", inputs=[tensor])


def server_for(case: Case, request: pytest.FixtureRequest) -> Program:
    server: Program = request.getfixturevalue(f"{case.kind}_server")
    return server


def assert_still_serves(server: Program, kind: str) -> None:
    good = base64.b64encode(GOOD_IMAGE).decode() if kind == "image" else "a cat"
    body = {"inputs": [{"name": kind, "datatype": "BYTES", "shape": [1], "data": [good]}]}
    r = httpx.post(
        f"http://127.0.0.1:{server.ports['http']}/v2/models/clip-{kind}/infer", json=body, timeout=30
    )
    assert r.status_code == 200, r.text
    assert server.proc is not None and server.proc.poll() is None


@pytest.mark.usefixtures("starts_processes")  # its server comes from request.getfixturevalue
@pytest.mark.parametrize("case_id", [c for c, case in CASES.items() if "rest" in case.transports])
def test_rest_json_bad_input_is_400(case_id: str, request: pytest.FixtureRequest) -> None:
    case = CASES[case_id]
    server = server_for(case, request)
    url = f"http://127.0.0.1:{server.ports['http']}/v2/models/clip-{case.kind}/infer"
    r = httpx.post(url, json=rest_body(case), timeout=30)
    assert r.status_code == 400, r.text
    assert case.expect in r.json()["error"]
    assert_still_serves(server, case.kind)


@pytest.mark.usefixtures("starts_processes")  # its server comes from request.getfixturevalue
@pytest.mark.parametrize("case_id", [c for c, case in CASES.items() if "grpc" in case.transports])
def test_grpc_bad_input_is_invalid_argument(case_id: str, request: pytest.FixtureRequest) -> None:
    case = CASES[case_id]
    server = server_for(case, request)
    with (
        grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel,
        pytest.raises(grpc.RpcError) as info,
    ):
        GRPCInferenceServiceStub(channel).ModelInfer(grpc_request(case), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert case.expect in (info.value.details() or "")
    assert_still_serves(server, case.kind)


@pytest.mark.parametrize("payload", [b"not an image", b"\x89PNG\r\n\x1a\n broken"])
def test_binary_extension_bad_image_is_400(payload: bytes, image_server: Program) -> None:
    client = httpclient.InferenceServerClient(f"127.0.0.1:{image_server.ports['http']}")
    tensor = httpclient.InferInput("image", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([payload], dtype=np.object_), binary_data=True)
    with pytest.raises(InferenceServerException) as info:
        client.infer("clip-image", [tensor])
    assert info.value.status() == "400"
    assert "image[0]" in str(info.value.message())
    assert_still_serves(image_server, "image")


def test_malformed_binary_body_is_400(image_server: Program) -> None:
    tensor = {"name": "image", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": 99}}
    header = json.dumps({"inputs": [tensor]}).encode()
    r = httpx.post(
        f"http://127.0.0.1:{image_server.ports['http']}/v2/models/clip-image/infer",
        content=header + b"\x05\x00",
        headers={
            "inference-header-content-length": str(len(header)),
            "content-type": "application/octet-stream",
        },
    )
    assert r.status_code == 400, r.text
    assert "binary_data_size" in r.json()["error"]


def test_invalid_inputs_are_counted(image_server: Program) -> None:
    text = httpx.get(f"http://127.0.0.1:{image_server.ports['http']}/metrics").text
    line = next(
        ln
        for ln in text.splitlines()
        if ln.startswith("clip_inference_errors_total{") and 'reason="invalid_input"' in ln
    )
    assert float(line.rsplit(" ", 1)[1]) >= 10
