"""Whether forward passes still make progress: what the predictor's liveness endpoints report.

A predictor is wedged when items wait and no forward pass has finished for longer than the stall
bound (`--stall_timeout_s`), or when one pass has run longer than it (with several forward workers the
others may keep finishing while one hangs). A busy predictor is not wedged: its passes finish, however
slowly within the bound; nor is an idle one: with nothing waiting, time without passes means nothing.
The clock of waiting items starts at the later of the last finished pass and the moment work arrived
at an idle batcher, so a predictor that was idle for an hour is not wedged by its next request.

All methods run on the event loop (the batcher's submit and pass loops, and the health routes), so
no lock is needed.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable


class PassProgress:
    """Counts items waiting for their embeddings and the passes in flight, with their start times."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._waiting = 0
        self._running: dict[int, float] = {}
        self._ids = itertools.count()
        self._since = clock()

    @property
    def waiting(self) -> int:
        """Items submitted and not yet answered (queued or in a pass)."""
        return self._waiting

    def items_submitted(self, count: int) -> None:
        if self._waiting == 0:
            self._since = self._clock()
        self._waiting += count

    def items_answered(self, count: int) -> None:
        self._waiting -= count

    def pass_started(self) -> int:
        """Record a pass starting; returns the token to give to `pass_ended`."""
        token = next(self._ids)
        self._running[token] = self._clock()
        return token

    def pass_ended(self, token: int) -> None:
        """Record a pass finishing, successfully or not: either is progress."""
        self._running.pop(token, None)
        self._since = self._clock()

    def stall(self, bound_s: float) -> str | None:
        """Why the passes are wedged (a sentence), or None while they progress within `bound_s`."""
        now = self._clock()
        oldest = min(self._running.values(), default=now)
        if now - oldest > bound_s:
            return f"a forward pass has run for {now - oldest:.1f} s, over the stall bound of {bound_s:g} s"
        if self._waiting and now - self._since > bound_s:
            return (
                f"{self._waiting} item(s) have waited {now - self._since:.1f} s with no forward pass "
                f"finishing, over the stall bound of {bound_s:g} s"
            )
        return None
