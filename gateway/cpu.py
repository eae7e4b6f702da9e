"""CPU-bound steps (JSON, base64) inline when small, on a worker thread when big: the loop keeps serving."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, Unpack

import anyio.to_thread

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Below this many bytes of input the work takes at most a millisecond or two, less than a thread hop costs.
THREAD_THRESHOLD = 256 * 1024


async def run(size: int, fn: Callable[[Unpack[Ts]], T], *args: *Ts) -> T:
    """`fn(*args)`, on a worker thread when `size` (bytes of input) is over THREAD_THRESHOLD."""
    if size > THREAD_THRESHOLD:
        return await anyio.to_thread.run_sync(fn, *args)
    return fn(*args)
