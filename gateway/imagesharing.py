"""The images of concurrent requests, sent to the image predictor together while it is busy.

Every call to a predictor costs CPU of its own on both sides (HTTP, the v2 envelope, a trip through the
predictor's batcher), whatever it carries. While `max_in_flight` image calls are under way the predictor
is busy, and images sent now would only queue there; so they queue here instead, and when a call
returns, the images waiting go in one call (at most `max_images` a call; a request's own images always
go together). A request that finds a call free goes at once, alone: under light load nothing waits.
`max_in_flight` 0 sends every request at once, alone.

When the predictor rejects a shared call as bad input, each request is sent again alone, so only the
one at fault gets the 400; any other failure of a shared call is every one of its requests' failure.
"""

from __future__ import annotations

import asyncio

from gateway import v2wire
from gateway.predictor import PredictorClient
from gateway.sharedcall import Waiting, answer, take
from gateway.v2wire import InferResult


class SharedImageCalls:
    """The image predictor (`client`) as the endpoints call it: at most `max_in_flight` calls at once,
    the images that wait for one sharing it.

    It is also what the text path reads of the image side (`textsharing.ImageCallStats`): `in_flight`
    counts the requests whose images are not back yet (waiting here or in a call), `typical_s` is the
    client's moving average of a call's duration.
    """

    def __init__(self, client: PredictorClient, max_in_flight: int, max_images: int) -> None:
        self.client = client
        self.max_in_flight = max_in_flight
        self.max_images = max_images
        self.in_flight = 0
        self._calls = 0
        self._queue: list[Waiting[bytes]] = []
        self._tasks: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps weak ones)

    @property
    def typical_s(self) -> float:
        return self.client.typical_s

    async def fetch(self, images: list[bytes], request_id: str) -> InferResult:
        """The embeddings of `images`, in order, or PredictorError."""
        self.in_flight += 1
        try:
            if self.max_in_flight <= 0 or (self._calls < self.max_in_flight and not self._queue):
                return await self._call(images, request_id)
            waiting = Waiting(images, request_id)
            self._queue.append(waiting)
            return await waiting.result
        finally:
            self.in_flight -= 1

    async def _call(self, images: list[bytes], request_id: str) -> InferResult:
        self._calls += 1
        try:
            return await self.client.infer(v2wire.image_request(images, request_id), len(images), request_id)
        finally:
            self._calls -= 1
            self._send_waiting()

    def _send_waiting(self) -> None:
        """Send what waits, one call a free slot."""
        self._queue = [w for w in self._queue if not w.result.done()]  # cancelled while waiting
        while self._queue and self._calls < self.max_in_flight:
            batch = take(self._queue, self.max_images)
            self._calls += 1  # the slot is taken now; `_send` hands it to its call
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[Waiting[bytes]]) -> None:
        self._calls -= 1  # `_call` takes it again before anything else runs
        await answer(batch, self._call)
