"""CPU the gateway spends on one predictor call: httpx's own pool vs the aiohttp transport it uses.

    python -m bench.client            # writes bench/results/gateway-client.md

`httpx.AsyncClient` with its own pool, and the gateway's `AiohttpTransport` called as `gateway.predictor`
calls it, each to a local aiohttp server that reads an 80 KB body (a base64 photo) and answers a
512-float embedding, with 32 calls in flight; the server runs in its own thread, and only the calling
thread's CPU time is counted. Two rounds, interleaved.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from bench.machine import block, describe
from devtools.procs import ROOT, pick_free_port
from gateway.predictor import KEEPALIVE_S, pool_size
from gateway.settings import Settings
from gateway.transport import AiohttpTransport

BODY = b"A" * 80_000
ANSWER = (
    b'{"outputs":[{"name":"embedding","datatype":"FP32","shape":[1,512],"data":['
    + b",".join([b"0.0441941738"] * 512)
    + b"]}]}"
)


def _serve(port: int, ready: threading.Event) -> None:
    async def infer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=ANSWER, content_type="application/json")

    loop = asyncio.new_event_loop()
    app = web.Application(client_max_size=1 << 24)
    app.router.add_post("/v2/models/m/infer", infer)
    runner = web.AppRunner(app, access_log=None)
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    ready.set()
    loop.run_forever()


def _thread_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


Post = Callable[[], Awaitable[Any]]


async def _measure(post: Post, calls: int, concurrency: int) -> tuple[float, float]:
    """(CPU ms, wall ms) per call of this thread; `post()` sends one call and returns an answer with
    `.json()`."""
    slots = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with slots:
            (await post()).json()

    await asyncio.gather(*(one() for _ in range(concurrency)))  # connections opened, pools warm
    cpu, wall = _thread_cpu_s(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    return (_thread_cpu_s() - cpu) / calls * 1e3, (time.perf_counter() - wall) / calls * 1e3


# The gateway's pool at GATEWAY_MAX_CONCURRENCY's default.
MAX_CONNECTIONS = pool_size(Settings.model_fields["gateway_max_concurrency"].default)


async def _compare(url: str, calls: int, concurrency: int) -> dict[str, list[tuple[float, float]]]:
    limits = httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
    infer = url + "/v2/models/m/infer"

    async def httpx_pool(calls: int, concurrency: int) -> tuple[float, float]:
        async with httpx.AsyncClient(limits=limits) as client:
            return await _measure(lambda: client.post(infer, content=BODY), calls, concurrency)

    async def gateway_transport(calls: int, concurrency: int) -> tuple[float, float]:
        transport = AiohttpTransport(MAX_CONNECTIONS, KEEPALIVE_S)
        try:
            return await _measure(lambda: transport.request("POST", infer, 30.0, BODY), calls, concurrency)
        finally:
            await transport.aclose()

    clients = {"httpx's own pool (httpcore)": httpx_pool, "aiohttp transport (gateway)": gateway_transport}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    for order in (list(clients), list(clients)[::-1]):
        for name in order:
            results[name].append(await clients[name](calls, concurrency))
    return results


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.client", description=__doc__)
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gateway-client.md")
    args = p.parse_args()
    port, ready = pick_free_port(), threading.Event()
    threading.Thread(target=_serve, args=(port, ready), daemon=True).start()
    ready.wait(10)
    results = asyncio.run(_compare(f"http://127.0.0.1:{port}", args.calls, args.concurrency))
    lines = [
        f"# Gateway to predictor: client CPU per call ({args.calls} POSTs of 80 KB, "
        f"{args.concurrency} in flight, 2 interleaved rounds)",
        "",
        f"Machine: {describe(block())}.",
        "",
        "| client | CPU ms/call (rounds) | wall ms/call (rounds) |",
        "|---|---|---|",
    ]
    for name, rounds in results.items():
        cpu = " / ".join(f"{c:.3f}" for c, _ in rounds)
        wall = " / ".join(f"{w:.3f}" for _, w in rounds)
        lines.append(f"| {name} | {cpu} | {wall} |")
    httpcore, aio = (sum(c for c, _ in r) / len(r) for r in results.values())
    lines += ["", f"CPU per call, httpx's own pool / aiohttp transport: {httpcore / aio:.1f}x"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
