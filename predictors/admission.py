"""Overload control: a bound on the items a predictor holds at once, refused at the door past it.

An item is held from the moment its request is admitted (before decoding) until its embedding is
back, so the bound covers decoded images waiting for a batch, not only the batcher's queue. A request
that would take the count past `max_items` fails at once with `Overloaded`: REST 503 with
`Retry-After`, gRPC UNAVAILABLE. Clients (the gateway, load balancers) retry elsewhere or later
instead of piling up latency and memory here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from grpc_interceptor.exceptions import Unavailable

from .metrics import QUEUED_ITEMS, REJECTED_REQUESTS

RETRY_AFTER_S = 1


class Overloaded(Unavailable):
    """The predictor holds too many items; `retry_after_s` is what the client is told to wait."""

    def __init__(self, message: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s


class Admission:
    """Counts held items of one model and refuses requests that would exceed `max_items`."""

    def __init__(self, model_name: str, max_items: int) -> None:
        self.model_name = model_name
        self.max_items = max_items
        self.held = 0  # its series start at 0 with the model's: metrics.expose_at_zero

    @contextmanager
    def slot(self, items: int) -> Iterator[None]:
        """Hold `items` for the duration of the block, or raise `Overloaded` without holding any."""
        if self.held + items > self.max_items:
            REJECTED_REQUESTS.labels(self.model_name).inc()
            raise Overloaded(
                f"{self.model_name} is overloaded: {self.held} items queued, limit {self.max_items} "
                f"(--max_queue_items); retry after {RETRY_AFTER_S} s"
            )
        self.held += items
        QUEUED_ITEMS.labels(self.model_name).set(self.held)
        try:
            yield
        finally:
            self.held -= items
            QUEUED_ITEMS.labels(self.model_name).set(self.held)
