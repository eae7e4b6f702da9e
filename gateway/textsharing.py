"""The texts of concurrent `/compare/` requests, sent to the text predictor in one shared call.

A `/compare/` request needs its text embeddings only once its image embedding is back, and the image
call is the slower of the two. So its texts may wait for company instead of going alone: only while
other images are in flight, at most half the image call's typical duration less the text call's own
(both moving averages, see `ImageCallStats`), and at most `max_wait_s`. Under load the texts of many
requests then share one call and one forward pass. A request alone does not wait, and should its
image come back before its texts have gone, they go at once.

A call carries at most `max_texts` texts and the first request's id. When the predictor rejects a
shared call as bad input, each request is sent again alone, so only the one at fault gets the 400.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Protocol

from gateway import v2wire
from gateway.predictor import PredictorClient
from gateway.sharedcall import Waiting, answer, take
from gateway.v2wire import InferResult

log = logging.getLogger("gateway")


class ImageCallStats(Protocol):
    """What the sharing policy reads of the image side (`imagesharing.SharedImageCalls` has both)."""

    @property
    def in_flight(self) -> int:
        """Requests whose images are not back yet."""
        ...

    @property
    def typical_s(self) -> float:
        """Moving average of a successful image call's duration, in seconds."""
        ...


class SharedTextCalls:
    """Sends texts to `client` (the text predictor), holding them for company while the image calls
    described by `image_calls` would make their requests wait anyway."""

    def __init__(
        self, client: PredictorClient, image_calls: ImageCallStats, max_texts: int, max_wait_s: float
    ) -> None:
        self.client = client
        self.image_calls = image_calls
        self.max_texts = max_texts
        self.max_wait_s = max_wait_s
        self._queue: list[Waiting[str]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._calls: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak ones)

    def hold_s(self) -> float:
        """How long texts arriving now may wait for company: not at all when no other image is in
        flight (no company is likely, and a request alone gains nothing from waiting)."""
        if self.image_calls.in_flight < 2:
            return 0.0
        return min(self.max_wait_s, self.image_calls.typical_s / 2 - self.client.typical_s)

    async def fetch(
        self, texts: list[str], request_id: str, image_call: asyncio.Future[Any] | None = None
    ) -> InferResult:
        """The embeddings of `texts`; with `image_call` (the same request's image call) they may wait
        for the texts of other requests until it is done, else they go now (with any already waiting)."""
        hold = self.hold_s() if image_call is not None else 0.0
        if hold <= 0 and not self._queue:
            return await self._call(texts, request_id)
        waiting = Waiting(texts, request_id, time.monotonic() + max(hold, 0.0))
        self._queue.append(waiting)
        if image_call is not None:
            image_call.add_done_callback(lambda _: self._hurry(waiting))
        self._send_due()
        return await waiting.result

    def _hurry(self, waiting: Waiting[str]) -> None:
        if not waiting.result.done():  # its image is back first: no reason left to wait
            self._send_due(now=True)

    def _send_due(self, now: bool = False) -> None:
        """Send the queue if it is full, its first deadline is past or `now`; else wake at that deadline."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._queue = [w for w in self._queue if not w.result.done()]  # cancelled while waiting
        if not self._queue:
            return
        delay = min(w.deadline for w in self._queue) - time.monotonic()
        if not now and delay > 0 and sum(len(w.items) for w in self._queue) < self.max_texts:
            self._timer = asyncio.get_running_loop().call_later(delay, self._send_due)
            return
        while self._queue:
            batch = take(self._queue, self.max_texts)
            call = asyncio.get_running_loop().create_task(self._send(batch))
            self._calls.add(call)
            call.add_done_callback(self._calls.discard)

    async def _send(self, batch: list[Waiting[str]]) -> None:
        if len(batch) > 1 and log.isEnabledFor(logging.DEBUG):
            log.debug("one text call for requests %s", ",".join(w.request_id for w in batch))
        await answer(batch, self._call)

    async def _call(self, texts: list[str], request_id: str) -> InferResult:
        return await self.client.infer(v2wire.text_request(texts, request_id), len(texts), request_id)
