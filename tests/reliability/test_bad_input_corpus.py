"""Every case of the bad-input corpus through the real gateway and straight to the real predictors
(v2 JSON over REST, and gRPC): each gets its documented status, never a 5xx, errors say what was
wrong without leaking internals, the processes keep serving and their memory stays put."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import psutil
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from devtools.procs import ROOT
from tests.support.reliability import API_KEY
from tests.support.stack import LocalStack

from .corpus import CASES, PNG, TEXTS, Case

# What an error body must never show: tracebacks, source paths, where the code or the model lives.
LEAKS = ("Traceback", 'File "', "site-packages", ".py", str(ROOT), "/tmp/")
# RSS growth allowed over the whole corpus, after warm-up (allocator noise, caches of a few MB).
RSS_SLACK = 1.10
JOBS = ("clip-gateway", "clip-image", "clip-text")


def rss(stack: LocalStack) -> dict[str, int]:
    return {job: psutil.Process(stack.servers[job].proc.pid).memory_info().rss for job in JOBS}  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def gw(stack: LocalStack) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {API_KEY}"}
    with httpx.Client(base_url=stack.gateway_url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def baseline(stack: LocalStack, gw: httpx.Client) -> dict[str, int]:
    """RSS of each process after some valid traffic of every kind the corpus sends."""
    for _ in range(20):
        assert (
            gw.post(
                "/compare/", files={"image": ("a.png", PNG, "image/png")}, data={"text": TEXTS}
            ).status_code
            == 200
        )
        assert (
            gw.post("/compare/", json={"image": base64.b64encode(PNG).decode(), "text": "a"}).status_code
            == 200
        )
    return rss(stack)


def no_leak(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"error body leaks {leak!r}: {text[:300]}"


def rest_body(v2: dict[str, Any]) -> dict[str, Any] | None:
    """The v2 JSON body of a case; None when JSON cannot carry it (raw non-UTF-8 text bytes)."""
    data = []
    for e in v2["data"]:
        if isinstance(e, bytes):
            if v2["model"] == "text":
                return None
            e = base64.b64encode(e).decode()
        data.append(e)
    return {"inputs": [{"name": v2["name"], "datatype": v2["datatype"], "shape": v2["shape"], "data": data}]}


def grpc_request(v2: dict[str, Any]) -> pb.ModelInferRequest | None:
    """The gRPC ModelInfer of a case; None when protobuf cannot carry it (a mistyped shape or element)."""
    if not isinstance(v2["shape"], list):
        return None
    if v2["datatype"] == "FP32":
        contents = pb.InferTensorContents(fp32_contents=v2["data"])
    elif all(isinstance(e, bytes | str) for e in v2["data"]):
        contents = pb.InferTensorContents(
            bytes_contents=[e if isinstance(e, bytes) else e.encode() for e in v2["data"]]
        )
    else:
        return None
    tensor = pb.ModelInferRequest.InferInputTensor(
        name=v2["name"], datatype=v2["datatype"], shape=v2["shape"], contents=contents
    )
    return pb.ModelInferRequest(model_name=f"clip-{v2['model']}", inputs=[tensor])


def targets() -> Iterator[Any]:
    for case in CASES:
        if case.gateway is not None:
            yield pytest.param(case, "gateway", id=f"{case.name}-gateway")
        if case.v2 is not None:
            if rest_body(case.v2) is not None:
                yield pytest.param(case, "rest", id=f"{case.name}-rest")
            if grpc_request(case.v2) is not None:
                yield pytest.param(case, "grpc", id=f"{case.name}-grpc")


def test_the_corpus_is_big_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("case", "target"), list(targets()))
def test_each_case_gets_its_documented_answer(
    case: Case, target: str, stack: LocalStack, gw: httpx.Client, baseline: dict[str, int]
) -> None:
    if target == "gateway":
        assert case.gateway is not None
        r = gw.post(case.endpoint, **case.gateway)
        assert r.status_code == case.gateway_status, r.text
        if r.status_code != 200:
            assert r.json().keys() == {"error"} and r.json()["error"], r.text
            no_leak(r.text)
        return
    assert case.v2 is not None
    server = stack.servers[f"clip-{case.v2['model']}"]
    if target == "rest":
        url = f"http://127.0.0.1:{server.ports['http']}/v2/models/clip-{case.v2['model']}/infer"
        r = httpx.post(url, json=rest_body(case.v2), timeout=30)
        assert r.status_code == case.v2_status, r.text
        if r.status_code != 200:
            assert isinstance(r.json().get("error"), str), r.text
            no_leak(r.text)
        return
    request = grpc_request(case.v2)
    with grpc.insecure_channel(f"127.0.0.1:{server.ports['grpc']}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        if case.v2_status == 200:
            reply = stub.ModelInfer(request, timeout=30)
            assert reply.outputs[0].name == "embedding"
            return
        with pytest.raises(grpc.RpcError) as info:
            stub.ModelInfer(request, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    no_leak(info.value.details() or "")


def test_an_image_url_is_never_fetched(gw: httpx.Client) -> None:
    hits: list[str] = []

    class Record(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Record)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/cat.png"
        for body in ({"image": url, "text": "a"}, {"image": f"data:image/png;base64,{url}", "text": "a"}):
            r = gw.post("/compare/", json=body)
            assert r.status_code == 400, r.text
        r = gw.post("/compare/", files={"image": ("x.png", url.encode(), "image/png")}, data={"text": "a"})
        assert r.status_code == 400, r.text
        for body in ({"image": [url]}, {"model": "m", "input": url, "modality": "image"}):  # URLs are off
            r = gw.post("/embed/" if "image" in body else "/v1/embeddings", json=body)
            assert r.status_code == 400, r.text
    finally:
        server.shutdown()
        server.server_close()
    assert hits == []


def test_after_the_corpus_every_process_serves_and_memory_stayed_put(
    stack: LocalStack, gw: httpx.Client, baseline: dict[str, int]
) -> None:
    r = gw.post("/compare/", files={"image": ("a.png", PNG, "image/png")}, data={"text": TEXTS})
    assert r.status_code == 200, r.text
    assert gw.get("/readyz").status_code == 200
    for job in JOBS:
        assert stack.servers[job].proc.poll() is None, stack.servers[job].log_tail()  # type: ignore[union-attr]
    after = rss(stack)
    grown = {job: after[job] / baseline[job] for job in JOBS}
    assert all(ratio < RSS_SLACK for ratio in grown.values()), grown


def test_api_keys_are_checked_and_never_logged(stack: LocalStack, gw: httpx.Client) -> None:
    wrong = "wrong-secret-key-4242"
    form = {"files": {"image": ("a.png", PNG, "image/png")}, "data": {"text": "a"}}
    assert httpx.post(f"{stack.gateway_url}/compare/", **form).status_code == 401  # type: ignore[arg-type]
    r = httpx.post(f"{stack.gateway_url}/compare/", headers={"authorization": f"Bearer {wrong}"}, **form)  # type: ignore[arg-type]
    assert r.status_code == 401 and wrong not in r.text
    assert gw.post("/compare/", **form).status_code == 200  # type: ignore[arg-type]
    for server in stack.servers.values():
        assert server.log_path is not None
        log = server.log_path.read_text(errors="replace")
        assert API_KEY not in log and wrong not in log, server.name
