"""A closed-loop aiohttp load generator: `concurrency` clients, each sending its next request on an answer.

Throughput counts answers completed inside the measurement window (after a warm-up), so requests still
in flight at either edge do not bias it; latency percentiles are over those answers. CPU seconds of the
watched processes (and of this one) are sampled at the window's edges.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import numpy as np

from bench.procs import cpu_seconds


async def _load(
    url: str,
    body: Callable[[int], bytes] | None,
    concurrency: int,
    warmup_s: float,
    measure_s: float,
    pids: dict[str, int],
) -> dict[str, Any]:
    start = time.perf_counter()
    t0, t1 = start + warmup_s, start + warmup_s + measure_s
    answers: list[tuple[float, float, int]] = []
    counter = iter(range(10**9))
    cpu: list[dict[str, float]] = []

    async def sample_cpu(at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        cpu.append({name: cpu_seconds(pid) for name, pid in {**pids, "loadgen": os.getpid()}.items()})

    async def client(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < t1:
            sent = time.perf_counter()
            try:
                if body is None:
                    async with session.get(url) as r:
                        await r.read()
                else:
                    data = body(next(counter))
                    async with session.post(
                        url, data=data, headers={"content-type": "application/json"}
                    ) as r:
                        await r.read()
                status = r.status
            except aiohttp.ClientError:
                status = 0
            answers.append((sent, time.perf_counter(), status))

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(sample_cpu(t0), sample_cpu(t1), *(client(session) for _ in range(concurrency)))
    done = [(s, e, st) for s, e, st in answers if t0 <= e <= t1]
    latencies = np.array([e - s for s, e, _ in done]) * 1000
    errors = sum(st != 200 for _, _, st in done)
    n = len(done)
    pct = (lambda q: float(np.percentile(latencies, q))) if n else (lambda q: float("nan"))
    return {
        "concurrency": concurrency,
        "requests": n,
        "errors": errors,
        "requests_per_s": n / measure_s,
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "cpu_s_per_request": {k: (cpu[1][k] - cpu[0][k]) / n if n else float("nan") for k in cpu[0]},
    }


def run_load(
    url: str,
    body: Callable[[int], bytes] | None,
    concurrency: int,
    warmup_s: float,
    measure_s: float,
    pids: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Drive `url` (GET when `body` is None, else POST `body(i)`) and return its numbers."""
    return asyncio.run(_load(url, body, concurrency, warmup_s, measure_s, pids or {}))
