"""A closed-loop HTTP/1.1 load generator: `concurrency` clients, each sending its next request on an answer.

Throughput counts answers completed inside the measurement window (after a warm-up), so requests still
in flight at either edge do not bias it; latency percentiles are over those answers. CPU seconds of the
watched processes (and of this one) are sampled at the window's edges.

The load generator shares the machine's CPUs with the service it measures, so it is kept lean, as wrk
is: each client holds one keep-alive connection (`httpclient.Connection`) and writes a prebuilt request
head and body, on uvloop. Its own CPU a request is reported beside the service's.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import uvloop

from bench.httpclient import Connection
from bench.procs import cpu_seconds


def _head(method: str, path: str, host: str, content_type: str | None) -> Callable[[int], bytes]:
    fixed = f"{method} {path} HTTP/1.1\r\nhost: {host}\r\n"
    if content_type is None:
        request = (fixed + "\r\n").encode()
        return lambda length: request
    fixed += f"content-type: {content_type}\r\n"
    return lambda length: f"{fixed}content-length: {length}\r\n\r\n".encode()


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
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = _head("GET" if body is None else "POST", parts.path or "/", parts.netloc,
                 None if body is None else "application/json")  # fmt: skip

    async def sample_cpu(at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        cpu.append({name: cpu_seconds(pid) for name, pid in {**pids, "loadgen": os.getpid()}.items()})

    async def client() -> None:
        conn = Connection(host, port)
        try:
            while time.perf_counter() < t1:
                data = b"" if body is None else body(next(counter))
                sent = time.perf_counter()
                status = await conn.exchange(head(len(data)), data)
                answers.append((sent, time.perf_counter(), status))
        finally:
            conn.close()

    await asyncio.gather(sample_cpu(t0), sample_cpu(t1), *(client() for _ in range(concurrency)))
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
    """Drive `url` (GET when `body` is None, else POST `body(i)` as JSON) and return its numbers."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_load(url, body, concurrency, warmup_s, measure_s, pids or {}))
