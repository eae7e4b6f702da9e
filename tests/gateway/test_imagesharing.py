"""SharedImageCalls over a fake image predictor: who goes at once, who waits, what each gets back."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.errors import PredictorError
from gateway.imagesharing import SharedImageCalls
from tests.gateway.fakes import FakePredictors, infer_request, vector

pytestmark = pytest.mark.anyio


def sent(fake: FakePredictors) -> list[list[bytes]]:
    """The images of each call the image predictor received, in order."""
    return [infer_request(r)[1] for r in fake.calls("image")]


def rows_of(images: list[bytes]) -> list[list[float]]:
    return [pytest.approx(vector(i)) for i in images]  # type: ignore[misc]


def held(fake: FakePredictors) -> asyncio.Event:
    """Hold every image call until the returned event is set (the predictor is busy)."""
    release = asyncio.Event()

    async def wait(request: httpx.Request) -> None:
        await release.wait()

    fake.override["image"] = wait
    return release


async def until(condition, timeout_s: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (the fake predictor has no event to wait on)
            await asyncio.sleep(0.001)


async def test_requests_that_find_a_free_call_go_at_once_alone(fake, image) -> None:
    shared = SharedImageCalls(image, max_in_flight=2, max_images=16)
    release = held(fake)
    first = asyncio.create_task(shared.fetch([b"a"], "r0"))
    second = asyncio.create_task(shared.fetch([b"b", b"c"], "r1"))
    await until(lambda: len(fake.calls("image")) == 2)
    release.set()
    assert [(await first).rows, (await second).rows] == [rows_of([b"a"]), rows_of([b"b", b"c"])]
    assert sent(fake) == [[b"a"], [b"b", b"c"]]


async def test_while_every_call_is_busy_new_requests_wait_and_then_share_one_call(fake, image) -> None:
    shared = SharedImageCalls(image, max_in_flight=1, max_images=16)
    release = held(fake)
    busy = asyncio.create_task(shared.fetch([b"a"], "r0"))
    await until(lambda: len(fake.calls("image")) == 1)
    waiting = [
        asyncio.create_task(shared.fetch(i, f"r{n}")) for n, i in enumerate([[b"b"], [b"c", b"d"], [b"e"]], 1)
    ]
    await asyncio.sleep(0.05)
    assert len(fake.calls("image")) == 1  # nothing more goes while the one call is out
    assert shared.in_flight == 4  # what the text path reads: every request whose images are pending
    release.set()
    got = [await t for t in waiting]
    assert shared.in_flight == 0
    assert (await busy).rows == rows_of([b"a"])
    assert sent(fake) == [[b"a"], [b"b", b"c", b"d", b"e"]]
    assert [g.rows for g in got] == [rows_of([b"b"]), rows_of([b"c", b"d"]), rows_of([b"e"])]
    assert fake.calls("image")[1].headers["x-request-id"] == "r1"


async def test_a_shared_call_carries_at_most_max_images(fake, image) -> None:
    shared = SharedImageCalls(image, max_in_flight=1, max_images=3)
    release = held(fake)
    busy = asyncio.create_task(shared.fetch([b"a"], "r0"))
    await until(lambda: len(fake.calls("image")) == 1)
    waiting = [asyncio.create_task(shared.fetch(i, "r")) for i in ([b"b", b"c"], [b"d"], [b"e", b"f"])]
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(busy, *waiting)
    assert sent(fake) == [[b"a"], [b"b", b"c", b"d"], [b"e", b"f"]]


async def test_a_rejected_shared_call_is_retried_alone_and_only_the_bad_request_fails(fake, image) -> None:
    shared = SharedImageCalls(image, max_in_flight=1, max_images=16)
    release = asyncio.Event()

    async def busy_then_reject_bad(request: httpx.Request) -> httpx.Response | None:
        await release.wait()
        if b"bad" in infer_request(request)[1]:
            return httpx.Response(400, json={"error": "image[1] is not a supported image file"})
        return None

    fake.override["image"] = busy_then_reject_bad
    busy = asyncio.create_task(shared.fetch([b"a"], "r0"))
    await until(lambda: len(fake.calls("image")) == 1)
    good = asyncio.create_task(shared.fetch([b"b"], "r1"))
    bad = asyncio.create_task(shared.fetch([b"c", b"bad"], "r2"))
    await asyncio.sleep(0.01)
    release.set()
    assert (await good).rows == rows_of([b"b"])
    with pytest.raises(PredictorError) as caught:
        await bad
    assert caught.value.status == 400 and "image[1]" in caught.value.message
    await busy
    assert sent(fake) == [[b"a"], [b"b", b"c", b"bad"], [b"b"], [b"c", b"bad"]]


async def test_a_failed_shared_call_fails_each_of_its_requests(fake, image) -> None:
    shared = SharedImageCalls(image, max_in_flight=1, max_images=16)
    release = held(fake)
    busy = asyncio.create_task(shared.fetch([b"a"], "r0"))
    await until(lambda: len(fake.calls("image")) == 1)
    waiting = [asyncio.create_task(shared.fetch([i], "r")) for i in (b"b", b"c")]
    await asyncio.sleep(0.01)
    fake.override["image"] = lambda request: httpx.Response(500, text="boom")
    release.set()
    await busy
    for task in waiting:
        with pytest.raises(PredictorError) as caught:
            await task
        assert caught.value.status == 502
    assert len(fake.calls("image")) == 2  # one shared call, no retry of a server error


async def test_a_request_cancelled_while_waiting_is_left_out(fake, image) -> None:
    shared = SharedImageCalls(image, max_in_flight=1, max_images=16)
    release = held(fake)
    busy = asyncio.create_task(shared.fetch([b"a"], "r0"))
    await until(lambda: len(fake.calls("image")) == 1)
    gone = asyncio.create_task(shared.fetch([b"b"], "r1"))
    kept = asyncio.create_task(shared.fetch([b"c"], "r2"))
    await asyncio.sleep(0.01)
    gone.cancel()
    release.set()
    assert (await kept).rows == rows_of([b"c"])
    await busy
    assert sent(fake) == [[b"a"], [b"c"]]


async def test_no_bound_sends_every_request_at_once(fake, image) -> None:
    shared = SharedImageCalls(image, max_in_flight=0, max_images=16)
    release = held(fake)
    tasks = [asyncio.create_task(shared.fetch([bytes([65 + i])], f"r{i}")) for i in range(5)]
    await until(lambda: len(fake.calls("image")) == 5)
    release.set()
    await asyncio.gather(*tasks)
