"""The gateway's own concurrency bound: past `GATEWAY_MAX_CONCURRENCY` requests in flight on the
predictor endpoints, a request is refused at once with 503 and `Retry-After` instead of queueing.

The pool of connections to each predictor is sized from this bound (`predictor.pool_size`), so
requests never wait for a connection (which would end as a 504 after `PREDICTOR_TIMEOUT_S`).
"""

from __future__ import annotations

from types import TracebackType

from starlette.requests import Request

from gateway.errors import Overloaded
from gateway.metrics import Metrics


class ConcurrencyLimit:
    """Counts requests in flight; `enter()` (or `with`) refuses one over `limit`."""

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

    def __enter__(self) -> None:
        self.enter()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.exit()


def admitted(request: Request) -> ConcurrencyLimit:
    """The app's bound, entered with `with admitted(request):` around an endpoint's work: one slot
    held until the endpoint returns. (A plain context manager, not a FastAPI yield dependency: those
    cost an exit stack and a generator on every request.)"""
    limit: ConcurrencyLimit = request.app.state.concurrency
    return limit
