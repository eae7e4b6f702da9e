"""The gateway's own concurrency bound: past `GATEWAY_MAX_CONCURRENCY` requests in flight on the
predictor endpoints, a request is refused at once with 503 and `Retry-After` instead of queueing.

The pool of connections to each predictor is sized from this bound (`predictor.pool_size`), so
requests never wait for a connection (which would end as a 504 after `PREDICTOR_TIMEOUT_S`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request

from gateway.errors import Overloaded
from gateway.metrics import Metrics


class ConcurrencyLimit:
    """Counts requests in flight; `enter()` refuses one over `limit`."""

    def __init__(self, limit: int, metrics: Metrics) -> None:
        self.limit = limit
        self.metrics = metrics
        self.in_flight = 0

    def enter(self) -> None:
        if self.in_flight >= self.limit:
            self.metrics.rejected.inc()
            raise Overloaded(f"the gateway is at its limit of {self.limit} requests in flight; retry shortly")
        self.in_flight += 1

    def exit(self) -> None:
        self.in_flight -= 1


async def limit_concurrency(request: Request) -> AsyncIterator[None]:
    """FastAPI dependency holding one slot for the whole request."""
    limit: ConcurrencyLimit = request.app.state.concurrency
    limit.enter()
    try:
        yield
    finally:
        limit.exit()
