"""What the image and text paths' shared predictor calls have in common: the requests waiting for a
call, which of them one call takes, and how its answer, or its failure, reaches each of them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway.errors import PredictorError
from gateway.v2wire import InferResult

T = TypeVar("T")


@dataclass
class Waiting(Generic[T]):
    """One request's items (texts, image files) waiting for a shared call, and its answer to be."""

    items: list[T]
    request_id: str
    deadline: float = 0.0  # when it stops waiting for company (the text path's)
    result: asyncio.Future[InferResult] = field(default_factory=asyncio.Future)


def take(queue: list[Waiting[T]], most: int) -> list[Waiting[T]]:
    """Pop the first requests of `queue` whose items fit in `most` (the first one whatever its size)."""
    batch = [queue.pop(0)]
    count = len(batch[0].items)
    while queue and count + len(queue[0].items) <= most:
        batch.append(queue.pop(0))
        count += len(batch[-1].items)
    return batch


async def answer(batch: list[Waiting[T]], call: Callable[[list[T], str], Awaitable[InferResult]]) -> None:
    """Send `batch`'s items in one `call(items, request_id)` and hand each request its rows; a failure
    reaches every request, except that a call rejected as bad input goes again request by request, so
    only the one at fault gets the 400."""
    try:
        fetched = await call([item for w in batch for item in w.items], batch[0].request_id)
    except Exception as exc:  # every waiter must hear of it, whatever it is
        if isinstance(exc, PredictorError) and exc.reason == "bad_request" and len(batch) > 1:
            await asyncio.gather(*(answer([waiting], call) for waiting in batch))
            return
        for waiting in batch:
            settle(waiting, exc)
        return
    start = 0
    for waiting in batch:
        settle(waiting, InferResult(fetched.rows[start : start + len(waiting.items)], fetched.parameters))
        start += len(waiting.items)


def settle(waiting: Waiting[T], outcome: InferResult | Exception) -> None:
    """Give `waiting` its answer or failure, unless its request was cancelled meanwhile."""
    if waiting.result.done():
        return
    if isinstance(outcome, Exception):
        waiting.result.set_exception(outcome)
    else:
        waiting.result.set_result(outcome)
