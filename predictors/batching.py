"""Dynamic batching: items of concurrent requests share one forward pass, run off the event loop.

Each item carries its own future, so results cannot cross between requests, and a request's items may
span several batches. A batch closes when it holds `max_batch_size` items or when its first item has
waited `max_delay_s`; items that queued up while the previous pass ran are taken at once.

With `workers` > 1, that many loops take batches from the one queue and up to that many forward passes
run at once, each in its own worker thread. A pass then holds at most `max_batch_size / workers` items
(rounded up): a full queue is shared among the workers instead of one pass taking it all while the
others wait. Batches are collected one at a time (a lock), so a batch fills before the next loop
starts one. `before_pass(alone)` runs in the worker thread before each pass; `alone` says that no
other pass is running and nothing is left queued, so this pass may use every core (torch's
intra-op thread count is per OS thread, so that is where it is set).

`progress` (a `PassProgress`) follows the items waiting and the passes in flight, for the liveness
endpoints (see `predictors.liveness`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from .liveness import PassProgress
from .metrics import BATCH_SIZE, FORWARD, INFERENCE_ERRORS, INFERENCE_SECONDS, QUEUE_SECONDS

T = TypeVar("T")

logger = logging.getLogger(__name__)


@dataclass
class _Pending(Generic[T]):
    item: T
    future: asyncio.Future[np.ndarray]
    enqueued: float = field(default_factory=time.monotonic)


class DynamicBatcher(Generic[T]):
    """Queue items from any number of requests and encode them in batches with `encode`.

    `encode(items)` runs in one of `workers` dedicated threads and returns one row per item; it must be
    safe to call from several threads at once when `workers` > 1 (a torch model in inference mode is).
    """

    def __init__(
        self,
        encode: Callable[[list[T]], np.ndarray],
        *,
        model_name: str,
        max_batch_size: int,
        max_delay_s: float,
        workers: int = 1,
        before_pass: Callable[[bool], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._encode = encode
        self._model_name = model_name
        self._pass_size = max(1, -(-max_batch_size // workers))
        self._max_delay_s = max_delay_s
        self._workers = workers
        self._before_pass = before_pass
        self._in_flight = 0
        # Labelled series looked up once, not on every item.
        self._queue_seconds = QUEUE_SECONDS.labels(model_name)
        self._inference_seconds = INFERENCE_SECONDS.labels(model_name)
        self._batch_size = BATCH_SIZE.labels(model_name)
        self.progress = PassProgress()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{model_name}-forward")
        self._queue: asyncio.Queue[_Pending[T]] | None = None
        self._loops: list[asyncio.Task[None]] = []

    async def submit(self, items: Sequence[T]) -> np.ndarray:
        """Encode `items`, batched with whatever else is queued; returns an array of one row per item."""
        queue = self._ensure_worker()
        loop = asyncio.get_running_loop()
        pending = [_Pending(item, loop.create_future()) for item in items]
        self.progress.items_submitted(len(pending))
        try:
            for p in pending:
                queue.put_nowait(p)
            if len(pending) == 1:  # the common case: no gathering future
                return (await pending[0].future)[np.newaxis]
            rows = await asyncio.gather(*(p.future for p in pending), return_exceptions=True)
        finally:
            self.progress.items_answered(len(pending))
        for row in rows:
            if isinstance(row, BaseException):
                raise row
        return np.stack(rows)  # type: ignore[arg-type]

    def close(self) -> None:
        for task in self._loops:
            task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _ensure_worker(self) -> asyncio.Queue[_Pending[T]]:
        # (Re)started on first use in a running event loop, and again if that loop went away.
        if self._queue is None or not self._loops or any(t.done() for t in self._loops):
            for task in self._loops:
                task.cancel()
            queue, collecting = asyncio.Queue[_Pending[T]](), asyncio.Lock()
            self._queue = queue
            self._loops = [
                asyncio.create_task(self._run(queue, collecting), name=f"{self._model_name}-batcher-{i}")
                for i in range(self._workers)
            ]
        return self._queue

    async def _collect(self, queue: asyncio.Queue[_Pending[T]]) -> list[_Pending[T]]:
        batch = [await queue.get()]
        deadline = batch[0].enqueued + self._max_delay_s
        while len(batch) < self._pass_size:
            if not queue.empty():
                batch.append(queue.get_nowait())
                continue
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(queue.get(), timeout))
            except TimeoutError:
                break
        return [p for p in batch if not p.future.done()]  # drop items of cancelled requests

    async def _run(self, queue: asyncio.Queue[_Pending[T]], collecting: asyncio.Lock) -> None:
        loop = asyncio.get_running_loop()
        while True:
            async with collecting:  # one batch collected at a time; passes then run side by side
                batch = await self._collect(queue)
            if not batch:
                continue
            started = time.monotonic()
            for p in batch:
                self._queue_seconds.observe(started - p.enqueued)
            alone = self._in_flight == 0 and queue.empty()
            self._in_flight += 1
            token = self.progress.pass_started()
            try:
                rows = await loop.run_in_executor(
                    self._executor, self._timed_encode, [p.item for p in batch], alone
                )
            except Exception as e:
                INFERENCE_ERRORS.labels(self._model_name, FORWARD).inc()
                logger.exception("forward pass of %d items failed", len(batch))
                _settle(batch, error=e)
            else:
                _settle(batch, rows=rows)
            finally:
                self._in_flight -= 1
                self.progress.pass_ended(token)

    def _timed_encode(self, items: list[T], alone: bool) -> np.ndarray:
        if self._before_pass is not None:
            self._before_pass(alone)
        started = time.perf_counter()
        rows = self._encode(items)
        self._inference_seconds.observe(time.perf_counter() - started)
        self._batch_size.observe(len(items))
        if len(rows) != len(items):
            raise RuntimeError(f"encoder returned {len(rows)} rows for {len(items)} items")
        return rows


def _settle(
    batch: list[_Pending[Any]], rows: np.ndarray | None = None, error: Exception | None = None
) -> None:
    for i, p in enumerate(batch):
        if p.future.done():
            continue
        if rows is not None:
            p.future.set_result(rows[i])
        else:
            p.future.set_exception(error or RuntimeError("forward pass failed"))
