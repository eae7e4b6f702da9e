"""SharedTextCalls over a fake text predictor: who waits, for how long, and what each request gets back."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import httpx
import pytest

from gateway.errors import PredictorError
from gateway.textsharing import SharedTextCalls
from tests.gateway.fakes import FakePredictors, infer_request, vector

# The image calls as the sharing policy sees them: several image calls in flight, each taking a minute, so
# texts may wait as long as max_wait_s.
BUSY = SimpleNamespace(in_flight=4, typical_s=60.0)
IDLE = SimpleNamespace(in_flight=1, typical_s=60.0)  # only the request's own image in flight

pytestmark = pytest.mark.anyio


def sent(fake: FakePredictors) -> list[list[str]]:
    """The texts of each call the text predictor received, in order."""
    return [[e.decode() for e in infer_request(r)[1]] for r in fake.calls("text")]


def rows_of(texts: list[str]) -> list[list[float]]:
    return [pytest.approx(vector(t.encode())) for t in texts]  # type: ignore[misc]


async def test_concurrent_requests_share_one_call_and_each_gets_its_own_rows(fake, text) -> None:
    shared = SharedTextCalls(text, BUSY, max_texts=32, max_wait_s=0.05)  # type: ignore[arg-type]
    image = asyncio.get_running_loop().create_future()  # images still encoding
    requests = [["a cat"], ["a dog", "a fox"], ["a cow"]]
    got = await asyncio.gather(*(shared.fetch(t, f"r{i}", image) for i, t in enumerate(requests)))
    assert sent(fake) == [["a cat", "a dog", "a fox", "a cow"]]
    assert [g.rows for g in got] == [rows_of(t) for t in requests]
    assert fake.calls("text")[0].headers["x-request-id"] == "r0"


async def test_texts_wait_at_most_max_wait(fake, text) -> None:
    shared = SharedTextCalls(text, BUSY, max_texts=32, max_wait_s=0.2)  # type: ignore[arg-type]
    start = time.monotonic()
    # Without the cap the texts would wait 30 s (half BUSY's image time): 10 s tells the two apart on any
    # machine, however loaded.
    image = asyncio.get_running_loop().create_future()
    got = await asyncio.wait_for(shared.fetch(["a cat"], "r", image), timeout=10.0)
    assert time.monotonic() - start >= 0.2
    assert got.rows == rows_of(["a cat"])


async def test_a_request_alone_does_not_wait(fake, text) -> None:
    shared = SharedTextCalls(text, IDLE, max_texts=32, max_wait_s=10.0)  # type: ignore[arg-type]
    got = await asyncio.wait_for(shared.fetch(["a cat"], "r", asyncio.Future()), timeout=1.0)
    assert got.rows == rows_of(["a cat"])


async def test_no_wait_without_an_image_to_wait_for_or_with_wait_0(fake, text) -> None:
    for shared, image_call in (
        (SharedTextCalls(text, BUSY, 32, 10.0), None),  # type: ignore[arg-type]
        (SharedTextCalls(text, BUSY, 32, 0.0), asyncio.get_running_loop().create_future()),  # type: ignore[arg-type]
    ):
        await asyncio.wait_for(shared.fetch(["a cat"], "r", image_call), timeout=2.0)
    assert sent(fake) == [["a cat"], ["a cat"]]


async def test_the_wait_is_half_the_image_time_less_the_texts_own(fake, text) -> None:
    image = SimpleNamespace(in_flight=4, typical_s=0.3)
    shared = SharedTextCalls(text, image, max_texts=32, max_wait_s=10.0)  # type: ignore[arg-type]
    text.typical_s = 0.05
    assert shared.hold_s() == pytest.approx(0.1)
    image.typical_s = 0.08  # a fast image: the texts go at once
    assert shared.hold_s() < 0


async def test_waiting_texts_go_at_once_when_their_image_is_back(fake, text) -> None:
    shared = SharedTextCalls(text, BUSY, max_texts=32, max_wait_s=10.0)  # type: ignore[arg-type]
    image = asyncio.get_running_loop().create_future()
    pending = asyncio.ensure_future(shared.fetch(["a cat"], "r", image))
    await asyncio.sleep(0.05)
    assert not pending.done() and sent(fake) == []
    image.set_result(None)
    got = await asyncio.wait_for(pending, timeout=2.0)
    assert got.rows == rows_of(["a cat"])


async def test_a_full_call_goes_at_once_and_calls_hold_at_most_max_texts(fake, text) -> None:
    shared = SharedTextCalls(text, BUSY, max_texts=4, max_wait_s=10.0)  # type: ignore[arg-type]
    image = asyncio.get_running_loop().create_future()
    requests = [["a", "b"], ["c"], ["d", "e"]]  # the third fills the queue past 4 texts
    got = await asyncio.wait_for(
        asyncio.gather(*(shared.fetch(t, "r", image) for t in requests)), timeout=2.0
    )
    assert sent(fake) == [["a", "b", "c"], ["d", "e"]]
    assert [g.rows for g in got] == [rows_of(t) for t in requests]
    await asyncio.wait_for(shared.fetch(list("fghij"), "r", image), timeout=2.0)  # over 4: alone
    assert sent(fake)[-1] == list("fghij")


async def test_a_rejected_shared_call_is_retried_alone_and_only_the_bad_request_fails(fake, text) -> None:
    def reject_bad(request: httpx.Request) -> httpx.Response | None:
        texts = [e.decode() for e in infer_request(request)[1]]
        return httpx.Response(400, json={"error": "bad text"}) if "bad" in texts else None

    fake.override["text"] = reject_bad
    shared = SharedTextCalls(text, BUSY, max_texts=32, max_wait_s=0.05)  # type: ignore[arg-type]
    image = asyncio.get_running_loop().create_future()
    got = await asyncio.gather(
        *(shared.fetch(t, "r", image) for t in (["good"], ["bad"], ["fine"])), return_exceptions=True
    )
    assert got[0].rows == rows_of(["good"]) and got[2].rows == rows_of(["fine"])
    assert isinstance(got[1], PredictorError) and got[1].status == 400
    assert sent(fake)[0] == ["good", "bad", "fine"]
    assert sorted(map(tuple, sent(fake)[1:])) == [("bad",), ("fine",), ("good",)]


async def test_a_failed_shared_call_fails_every_request_in_it(fake, text) -> None:
    fake.override["text"] = lambda request: httpx.Response(500, text="boom")
    shared = SharedTextCalls(text, BUSY, max_texts=32, max_wait_s=0.05)  # type: ignore[arg-type]
    image = asyncio.get_running_loop().create_future()
    got = await asyncio.gather(*(shared.fetch([t], "r", image) for t in ("a", "b")), return_exceptions=True)
    assert [(type(g), g.status) for g in got] == [(PredictorError, 502)] * 2  # type: ignore[union-attr]
    assert len(sent(fake)) == 1  # not retried: the predictor failed, not the input


async def test_a_cancelled_request_leaves_the_others_served(fake, text) -> None:
    shared = SharedTextCalls(text, BUSY, max_texts=32, max_wait_s=0.1)  # type: ignore[arg-type]
    image = asyncio.get_running_loop().create_future()
    gone = asyncio.ensure_future(shared.fetch(["gone"], "r0", image))
    kept = asyncio.ensure_future(shared.fetch(["kept"], "r1", image))
    await asyncio.sleep(0)
    gone.cancel()
    got = await asyncio.wait_for(kept, timeout=2.0)
    assert got.rows == rows_of(["kept"])
    assert sent(fake) == [["kept"]]
