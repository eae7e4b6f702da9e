"""Graceful shutdown of the real programs: on SIGTERM each stops accepting, finishes what is in flight
(REST and gRPC), and exits 0 within its bound."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from devtools.procs import Program
from tests.support.metrics import scraped
from tests.support.predictor_servers import predictor
from tests.support.prometheus import poll
from tests.support.stack import gateway_server
from tests.support.tiers import process_fixture

# Every item waits this long for its batch: requests are surely in flight when SIGTERM comes.
DELAY_MS = 2000
GRACE_S = 10


def text_body(text: str) -> dict[str, object]:
    return {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [text]}]}


def grpc_infer(port: int, text: str) -> int:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text",
        datatype="BYTES",
        shape=[1],
        contents=pb.InferTensorContents(bytes_contents=[text.encode()]),
    )
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = GRPCInferenceServiceStub(channel).ModelInfer(
            pb.ModelInferRequest(model_name="clip-text", inputs=[tensor]), timeout=30
        )
    return len(reply.raw_output_contents[0])


def embed_text(url: str, text: str) -> int:
    return httpx.post(url, json={"text": text}, timeout=30).status_code


def refuses_connections(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def queued_items(predictor_url: str) -> float:
    """The text predictor's `clip_queued_items`: items admitted and not yet answered."""
    return scraped(predictor_url, "clip_queued_items", model_name="clip-text")


@process_fixture(scope="module")
def slow_text(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Program]:
    """One text predictor for the module: the gateway test uses it, the last test stops it."""
    server = predictor(
        "text",
        tiny_dir,
        tmp_path_factory.mktemp("logs"),
        ["--max_batch_delay_ms", str(DELAY_MS), "--shutdown_grace_s", str(GRACE_S)],
    ).start(120)
    try:
        yield server
    finally:
        server.kill()


def in_flight(
    calls: list[Callable[[], object]], predictor_url: str
) -> tuple[ThreadPoolExecutor, list[Future[object]]]:
    """Make the calls from threads; return once the text predictor holds them all, waiting for their batch."""
    pool = ThreadPoolExecutor(len(calls))
    futures = [pool.submit(call) for call in calls]
    poll(lambda: queued_items(predictor_url), lambda n: n >= len(calls), 30, f"{len(calls)} items queued")
    return pool, futures


def stops_accepting(port: int, futures: list[Future[object]], what: str) -> None:
    """Once it refuses connections, the requests sent before are still in flight (held for their batch)."""
    poll(lambda: refuses_connections(port), bool, 10, f"refusing connections after SIGTERM ({what})")
    assert not any(f.done() for f in futures), f"{what} answered before it stopped accepting"


def test_the_gateway_finishes_requests_in_flight_then_exits_0(slow_text: Program, tmp_path: Path) -> None:
    text_url = f"http://127.0.0.1:{slow_text.ports['http']}"
    gw = gateway_server(text_url, text_url, tmp_path).start()
    try:
        port = gw.ports["http"]
        url = f"http://127.0.0.1:{port}/embed_text/"
        pool, futures = in_flight([partial(embed_text, url, t) for t in ("a", "b", "c")], text_url)
        assert gw.proc is not None
        gw.proc.send_signal(signal.SIGTERM)
        stops_accepting(port, futures, "the gateway")
        assert [f.result(timeout=30) for f in futures] == [200, 200, 200]
        pool.shutdown()
        assert gw.proc.wait(20) == 0, gw.log_tail()
    finally:
        gw.kill()


def test_a_predictor_finishes_rest_and_grpc_requests_in_flight_then_exits_0(slow_text: Program) -> None:
    http, grpc_port = slow_text.ports["http"], slow_text.ports["grpc"]
    url = f"http://127.0.0.1:{http}/v2/models/clip-text/infer"
    pool, futures = in_flight(
        [
            lambda: httpx.post(url, json=text_body("a red square"), timeout=30).status_code,
            lambda: httpx.post(url, json=text_body("a blue circle"), timeout=30).status_code,
            lambda: grpc_infer(grpc_port, "a green triangle"),
        ],
        slow_text.url,
    )
    assert slow_text.proc is not None
    slow_text.proc.send_signal(signal.SIGTERM)
    stops_accepting(http, futures, "the predictor (REST)")
    results = [f.result(timeout=30) for f in futures]
    pool.shutdown()
    assert results[:2] == [200, 200]
    assert results[2] == 4 * 64  # one 64-d FP32 embedding over gRPC
    assert slow_text.proc.wait(2 * GRACE_S) == 0, slow_text.log_tail()  # TimeoutExpired: not within its bound
