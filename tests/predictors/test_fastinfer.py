"""The binary infer fast path answers as KServe's app would, and leaves every other request to it.

In-process ASGI calls on a FastAPI app with KServe's error handlers and a stand-in data plane; the real
servers are covered by test_clients.py (tritonclient and kserve clients) and test_bad_input.py. With
`--enable_latency_logging` the fast path stays off, so KServe's per-request timing lines are still logged.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from fastapi import FastAPI
from kserve.errors import InvalidInput, ModelNotFound, invalid_input_handler, model_not_found_handler

from devtools.procs import Program
from predictors.fastinfer import FastInfer, install
from tests.support.predictor_servers import serve
from tests.support.tiers import process_fixture

BINARY = {"inference-header-content-length": "2"}


class StandInDataPlane:
    """Answers `result` for model `clip`, or raises `error`; records what it was asked."""

    def __init__(self, result: Any = b"{}xyz", error: Exception | None = None) -> None:
        self.result, self.error = result, error
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []

    async def model_ready(self, name: str, _skip_health_check: bool) -> bool:
        if name != "clip":
            raise ModelNotFound(name)
        return True

    def decode(self, body: bytes, headers: dict[str, str], *_: Any) -> tuple[bytes, dict[str, str]]:
        self.bodies.append(body)
        self.headers.append(headers)
        return body, {}

    async def infer(self, model_name: str, request: bytes, headers: dict[str, str]) -> tuple[Any, dict]:
        if self.error is not None:
            raise self.error
        return self.result, {}

    def encode(self, model_name: str, response: Any, headers: dict, req_attributes: dict) -> tuple[Any, dict]:
        extra = {"inference-header-content-length": "2"} if isinstance(response, bytes) else {}
        return response, {**extra, "content-type": "text/plain"}


def app_with(dataplane: StandInDataPlane) -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(InvalidInput, invalid_input_handler)
    app.add_exception_handler(ModelNotFound, model_not_found_handler)

    @app.post("/v2/models/{name}/infer")
    async def full_path(name: str) -> dict[str, str]:
        return {"answered_by": "full app"}

    install(app, dataplane)
    return app


def post(app: FastAPI, path: str, body: Any = b"{}raw", headers: Any = None) -> httpx.Response:
    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://predictor") as client:
            return await client.post(path, content=body, headers=headers or {})

    return asyncio.run(call())


def test_binary_answer_is_the_data_planes_bytes_with_its_headers() -> None:
    dataplane = StandInDataPlane()
    r = post(app_with(dataplane), "/v2/models/clip/infer", headers=BINARY)
    assert r.status_code == 200
    assert r.content == b"{}xyz"
    assert r.headers["inference-header-content-length"] == "2"
    assert "content-type" not in r.headers  # as KServe's endpoint: the data plane's type is dropped
    assert dataplane.bodies == [b"{}raw"]


def test_a_body_sent_in_chunks_arrives_whole() -> None:
    dataplane = StandInDataPlane()

    async def chunks() -> AsyncIterator[bytes]:
        for chunk in (b"{}", b"ra", b"w"):
            yield chunk

    post(app_with(dataplane), "/v2/models/clip/infer", body=chunks(), headers=BINARY)
    assert dataplane.bodies == [b"{}raw"]


def test_the_data_plane_gets_the_headers_as_kserves_endpoint_passes_them() -> None:
    dataplane = StandInDataPlane()
    headers = [
        ("inference-header-content-length", "2"),
        ("x-request-id", "first"),
        ("x-request-id", "second"),
    ]
    post(app_with(dataplane), "/v2/models/clip/infer", headers=headers)
    assert dataplane.headers[0]["x-request-id"] == "first"  # as dict(starlette Request.headers)


def test_a_json_result_is_kserves_json_response() -> None:
    result = {"model_name": "clip", "id": "1", "outputs": [{"name": "e", "shape": [1], "datatype": "FP32",
                                                            "data": [0.5]}]}  # fmt: skip
    r = post(app_with(StandInDataPlane(result=result)), "/v2/models/clip/infer", headers=BINARY)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json()["outputs"][0]["data"] == [0.5]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v2/models/clip/infer", {}),  # JSON body: FastAPI's validation and KServe's parsing
        ("/v2/models/clip/versions/1/infer", BINARY),
        ("/v2/models/clip/infer/more", BINARY),
    ],
)
def test_other_requests_reach_the_full_app(path: str, headers: dict[str, str]) -> None:
    dataplane = StandInDataPlane()
    r = post(app_with(dataplane), path, headers=headers)
    assert dataplane.bodies == []
    assert r.status_code in (200, 404)
    if r.status_code == 200:
        assert r.json() == {"answered_by": "full app"}


def test_errors_take_the_apps_handlers() -> None:
    bad = post(app_with(StandInDataPlane(error=InvalidInput("image[0] is empty"))), "/v2/models/clip/infer",
               headers=BINARY)  # fmt: skip
    assert (bad.status_code, bad.json()) == (400, {"error": "image[0] is empty"})
    unknown = post(app_with(StandInDataPlane()), "/v2/models/nope/infer", headers=BINARY)
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Model with name nope does not exist."})


def test_an_unexpected_error_is_a_500_and_reaches_the_server() -> None:
    raised: list[BaseException] = []

    async def fallback(_request: Any, exc: Exception) -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({"error": f"{type(exc).__name__} : {exc}"}, 500)

    async def call() -> None:
        app = FastAPI()
        app.add_exception_handler(Exception, fallback)
        fast = FastInfer(app, StandInDataPlane(error=RuntimeError("boom")), app.exception_handlers)
        sent: list[MutableMapping[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v2/models/clip/infer", "headers": [
            (b"inference-header-content-length", b"2")], "query_string": b""}  # fmt: skip
        try:
            await fast(scope, receive, send)
        except RuntimeError as e:
            raised.append(e)
        assert sent[0]["status"] == 500
        assert sent[1]["body"] == b'{"error":"RuntimeError : boom"}'

    asyncio.run(call())
    assert raised and str(raised[0]) == "boom"


@process_fixture(scope="module")
def text_server_with_latency_logging(tiny_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("text", tiny_dir, log_dir, "--enable_latency_logging", "true")


def test_latency_logging_keeps_kserves_per_request_timing_lines(
    text_server_with_latency_logging: Program,
) -> None:
    server = text_server_with_latency_logging
    client = httpclient.InferenceServerClient(f"127.0.0.1:{server.ports['http']}")
    tensor = httpclient.InferInput("text", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([b"a red square"], dtype=np.object_), binary_data=True)
    client.infer("clip-text", [tensor])
    assert server.log_path is not None
    deadline = time.monotonic() + 5
    while "kserve.io.v2.models.clip-text.infer" not in server.log_path.read_text():
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.1)
