"""Overload: bursts far over the predictors' queue bound and the gateway's concurrency bound are
answered at once (200 or 503 + Retry-After), nothing times out, memory stays bounded, and the
service is healthy right after."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections import Counter

import grpc
import httpx
import psutil
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub

from devtools.procs import PYTHON, ROOT
from tests.support.metrics import total
from tests.support.stack import LocalStack

from .corpus import PNG

BURST = 300
CLIENT_TIMEOUT_S = 30.0
RSS_SLACK = 1.25


def rss(stack: LocalStack) -> dict[str, int]:
    return {job: psutil.Process(s.proc.pid).memory_info().rss for job, s in stack.servers.items()}  # type: ignore[union-attr]


def metric(url: str, name: str) -> float:
    return total(httpx.get(f"{url}/metrics", timeout=10).text, name)


async def burst(url: str, requests: list[dict[str, object]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT_S, limits=limits) as client:
        return await asyncio.gather(*(client.post(url, **r) for r in requests))  # type: ignore[arg-type]


def check_answers(responses: list[httpx.Response]) -> Counter[int]:
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[200] > 0 and statuses[503] > 0, statuses
    for r in responses:
        if r.status_code == 503:
            assert r.headers.get("retry-after", "").isdigit(), r.headers
            assert "overloaded" in r.json()["error"] or "limit" in r.json()["error"], r.text
    return statuses


def test_a_burst_at_a_predictor_is_answered_at_once_and_every_refusal_counted(
    tight_stack: LocalStack,
) -> None:
    url = f"http://127.0.0.1:{tight_stack.servers['clip-text'].ports['http']}"
    before = metric(url, "clip_rejected_requests_total")
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a cat"]}]}
    statuses = check_answers(asyncio.run(burst(f"{url}/v2/models/clip-text/infer", [{"json": body}] * BURST)))
    assert metric(url, "clip_rejected_requests_total") - before == statuses[503]
    assert metric(url, "clip_queued_items") == 0


def test_a_grpc_burst_is_unavailable_not_queued(tight_stack: LocalStack) -> None:
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text", datatype="BYTES", shape=[1], contents=pb.InferTensorContents(bytes_contents=[b"a dog"])
    )
    request = pb.ModelInferRequest(model_name="clip-text", inputs=[tensor])
    with grpc.insecure_channel(f"127.0.0.1:{tight_stack.servers['clip-text'].ports['grpc']}") as channel:
        stub = GRPCInferenceServiceStub(channel)
        calls = [stub.ModelInfer.future(request, timeout=CLIENT_TIMEOUT_S) for _ in range(100)]
        codes = Counter(c.code() for c in calls)
        details = {c.details() for c in calls if c.code() != grpc.StatusCode.OK}
    assert set(codes) == {grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE}, codes
    assert all("overloaded" in (d or "") for d in details), details


def test_a_burst_through_the_gateway_is_answered_memory_stays_bounded_and_it_recovers(
    tight_stack: LocalStack,
) -> None:
    stack = tight_stack
    gw = stack.gateway_url
    warm = [
        {"files": {"image": ("x.png", PNG, "image/png")}, "data": {"text": f"warm {i}"}} for i in range(20)
    ]
    asyncio.run(burst(f"{gw}/compare/", warm[:4]))
    before = rss(stack)
    requests = [
        {"files": {"image": ("x.png", PNG, "image/png")}, "data": {"text": f"shape {i}"}}
        for i in range(BURST)
    ]
    statuses = check_answers(asyncio.run(burst(f"{gw}/compare/", requests)))
    after = rss(stack)
    print(
        f"gateway burst of {BURST}: {dict(statuses)}; RSS after/before",
        {job: round(after[job] / before[job], 3) for job in after},
    )
    assert metric(gw, "gateway_rejected_requests_total") > 0
    assert all(after[job] < before[job] * RSS_SLACK for job in after), (before, after)
    r = httpx.post(
        f"{gw}/compare/", files={"image": ("x.png", PNG, "image/png")}, data={"text": "after"}, timeout=10
    )
    assert r.status_code == 200, r.text
    assert httpx.get(f"{gw}/readyz", timeout=10).status_code == 200


@pytest.mark.usefixtures("starts_processes")
@pytest.mark.parametrize(
    ("argv", "env", "words"),
    [
        (
            ["-m", "predictors.text", "--max_items", "64", "--max_queue_items", "8"],
            {},
            "--max_queue_items (8)",
        ),
        (["-m", "gateway"], {"GATEWAY_MAX_CONCURRENCY": "0"}, "gateway_max_concurrency"),
    ],
    ids=["queue-below-request-size", "zero-gateway-concurrency"],
)
def test_bounds_that_could_never_admit_a_request_are_refused_at_start(
    argv: list[str], env: dict[str, str], words: str
) -> None:
    done = subprocess.run(
        [PYTHON, *argv], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert words in done.stderr, done.stderr[-2000:]
