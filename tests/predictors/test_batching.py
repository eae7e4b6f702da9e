"""Concurrent requests share forward passes, and each still gets exactly its own embeddings.

With --forward_workers 2, two forward passes run at once and every item still gets its own row.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from devtools.procs import Program
from predictors.batching import DynamicBatcher
from tests.support.predictor_servers import serve
from tests.support.tiers import process_fixture

from .media import Reference, assert_same_embeddings, distinct_image, encode

MAX_BATCH = 16
ARGS = ("--max_batch_size", str(MAX_BATCH), "--max_batch_delay_ms", "20")


@process_fixture(scope="module")
def image_server(tiny_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("image", tiny_dir, log_dir, *ARGS)


@process_fixture(scope="module")
def image_server_2_workers(tiny_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("image", tiny_dir, log_dir, *ARGS, "--forward_workers", "2")


@process_fixture(scope="module")
def text_server(tiny_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("text", tiny_dir, log_dir, *ARGS)


def histogram(server: Program, name: str, model: str) -> dict[str, float]:
    """{le: cumulative count} plus "count" for one labelled histogram on /metrics."""
    text = httpx.get(f"http://127.0.0.1:{server.ports['http']}/metrics").text
    buckets = {
        m["le"]: float(m["v"])
        for m in re.finditer(
            rf'^{name}_bucket{{le="(?P<le>[^"]+)",model_name="{model}"}} (?P<v>\S+)$', text, re.M
        )
    }
    count = re.search(rf'^{name}_count{{model_name="{model}"}} (\S+)$', text, re.M)
    assert count is not None and buckets, f"{name} for {model} missing from /metrics"
    return {**buckets, "count": float(count.group(1))}


async def infer_each(server: Program, kind: str, elements: list[str]) -> list[np.ndarray]:
    url = f"http://127.0.0.1:{server.ports['http']}/v2/models/clip-{kind}/infer"
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=64)) as client:

        async def one(i: int, element: str) -> np.ndarray:
            body = {
                "id": f"r{i}",
                "inputs": [{"name": kind, "datatype": "BYTES", "shape": [1], "data": [element]}],
            }
            r = await client.post(url, json=body)
            assert r.status_code == 200, r.text
            assert r.json()["id"] == f"r{i}"
            return np.array(r.json()["outputs"][0]["data"]).reshape(1, -1)

        return await asyncio.gather(*(one(i, e) for i, e in enumerate(elements)))


def assert_batched(server: Program, model: str) -> None:
    sizes = histogram(server, "clip_batch_size", model)
    assert sizes["1.0"] < sizes["count"], f"every forward pass had one item: {sizes}"
    assert sizes[f"{float(MAX_BATCH)}"] == sizes["count"], f"a batch exceeded {MAX_BATCH}: {sizes}"
    for name in ("clip_queue_seconds", "clip_inference_seconds"):
        assert histogram(server, name, model)["count"] > 0


def test_64_concurrent_texts_each_get_their_own_embedding(text_server: Program, tiny_ref: Reference) -> None:
    texts = [f"a photo of object number {i}" for i in range(64)]
    got = asyncio.run(infer_each(text_server, "text", texts))
    assert_same_embeddings(np.concatenate(got), tiny_ref.texts(texts))
    assert_batched(text_server, "clip-text")


@pytest.mark.usefixtures("starts_processes")  # its server comes from request.getfixturevalue
@pytest.mark.parametrize("server", ["image_server", "image_server_2_workers"])
def test_64_concurrent_images_each_get_their_own_embedding(
    server: str, tiny_ref: Reference, request: pytest.FixtureRequest
) -> None:
    image_server: Program = request.getfixturevalue(server)
    images = [encode(distinct_image(100 + i)) for i in range(64)]
    got = asyncio.run(infer_each(image_server, "image", [base64.b64encode(i).decode() for i in images]))
    assert_same_embeddings(np.concatenate(got), tiny_ref.images(images))
    assert_batched(image_server, "clip-image")
    queued = httpx.get(f"http://127.0.0.1:{image_server.ports['http']}/metrics").text
    assert 'clip_queued_items{model_name="clip-image"} 0.0' in queued  # every admitted item released


def test_many_items_in_one_request_keep_their_order(text_server: Program, tiny_ref: Reference) -> None:
    texts = [f"{n} red circles" for n in range(MAX_BATCH + 9)]  # more than one batch
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}]}
    r = httpx.post(
        f"http://127.0.0.1:{text_server.ports['http']}/v2/models/clip-text/infer", json=body, timeout=60
    )
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"] == [len(texts), 64]
    assert_same_embeddings(np.array(out["data"]).reshape(out["shape"]), tiny_ref.texts(texts))


class OverlapProbe:
    """A test encoder: each item's row is [item, item]; records passes in flight and torch threads.

    With `meet` > 1 every pass waits at a barrier until `meet` passes are inside at once, so the test
    passes only if they really overlap (and fails with BrokenBarrierError, not a flaky timing, if not).
    """

    def __init__(self, meet: int = 1) -> None:
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0
        self.threads: set[int] = set()
        self.torch_threads: set[int] = set()
        self.sizes: list[int] = []
        self.barrier = threading.Barrier(meet, timeout=30) if meet > 1 else None

    def __call__(self, items: list[int]) -> np.ndarray:
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self.threads.add(threading.get_ident())
            self.torch_threads.add(torch.get_num_threads())
            self.sizes.append(len(items))
        try:
            if self.barrier is not None:
                self.barrier.wait()
            return np.array([[x, x] for x in items], dtype=np.float32)
        finally:
            with self.lock:
                self.in_flight -= 1


def batcher(probe: OverlapProbe, workers: int, max_batch_size: int) -> DynamicBatcher[int]:
    return DynamicBatcher(
        probe,
        model_name="probe",
        max_batch_size=max_batch_size,
        max_delay_s=0.0,
        workers=workers,
        before_pass=lambda alone: torch.set_num_threads(2 if alone else 1),
    )


def test_two_workers_run_two_forward_passes_at_once() -> None:
    probe = OverlapProbe(meet=2)  # every pass blocks until a second one is in flight
    b = batcher(probe, workers=2, max_batch_size=1)

    async def main() -> list[np.ndarray]:
        return await asyncio.gather(*(b.submit([i]) for i in range(8)))

    try:
        got = asyncio.run(main())
    finally:
        b.close()
    assert [r.tolist() for r in got] == [[[i, i]] for i in range(8)]
    assert probe.most_in_flight == 2 and len(probe.threads) == 2
    assert probe.torch_threads == {1}  # passes that overlap share the cores


def test_workers_share_a_full_queue() -> None:
    # One request of 16 items, max_batch_size 8, 2 workers: two passes of 4 at once (they meet at the
    # barrier), then two more, instead of one pass of 8 while the other worker idles.
    probe = OverlapProbe(meet=2)
    b = batcher(probe, workers=2, max_batch_size=8)

    async def main() -> np.ndarray:
        return await b.submit(list(range(16)))

    try:
        got = asyncio.run(main())
    finally:
        b.close()
    assert got.tolist() == [[i, i] for i in range(16)]
    assert probe.sizes == [4, 4, 4, 4]


def test_a_pass_alone_gets_every_thread() -> None:
    probe = OverlapProbe()
    b = batcher(probe, workers=2, max_batch_size=8)

    async def main() -> None:
        for i in range(3):  # one request at a time: nothing else running or queued
            await b.submit([i])

    try:
        asyncio.run(main())
    finally:
        b.close()
    assert probe.torch_threads == {2}


def test_config_reports_the_workers(image_server_2_workers: Program) -> None:
    url = f"http://127.0.0.1:{image_server_2_workers.ports['http']}/v2/models/clip-image/config"
    parameters = httpx.get(url).json()["parameters"]
    assert (parameters["forward_workers"], parameters["torch_threads"]) == (2, 1)
    assert parameters["torch_threads_source"] == "--num_threads"


def test_one_worker_never_overlaps() -> None:
    probe = OverlapProbe()
    b = batcher(probe, workers=1, max_batch_size=1)

    async def main() -> list[np.ndarray]:
        return await asyncio.gather(*(b.submit([i]) for i in range(8)))

    try:
        asyncio.run(main())
    finally:
        b.close()
    assert probe.most_in_flight == 1 and len(probe.threads) == 1


def test_many_workers_keep_every_item_with_its_request() -> None:
    probe = OverlapProbe()
    b = batcher(probe, workers=4, max_batch_size=5)
    requests = [list(range(100 * r, 100 * r + 1 + r % 7)) for r in range(64)]  # 1 to 7 items each

    async def main() -> list[np.ndarray]:
        return await asyncio.gather(*(b.submit(items) for items in requests))

    try:
        got = asyncio.run(main())
    finally:
        b.close()
    for items, rows in zip(requests, got, strict=True):
        assert rows.tolist() == [[x, x] for x in items]
