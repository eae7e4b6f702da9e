"""Soak the local stack: mixed valid and invalid traffic at a fixed concurrency for a bounded time.

`make soak` runs this. It starts both predictors and the gateway on free 127.0.0.1 ports (the demo
model unless --model-dir says otherwise), sends a weighted mix of requests that users and scanners
send (each with the status it must get), samples the RSS of the three processes, and writes a
report (JSON and Markdown) under results/soak/. Exit status 1 when any request got a status other
than its own, or when a process's RSS grew more than --max-rss-growth after the warm-up.

    python scripts/soak.py                      # 5 minutes (SOAK_SECONDS), concurrency 16
    python scripts/soak.py --seconds 60 --out /tmp/soak
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import itertools
import json
import os
import struct
import sys
import time
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.stack import LocalStack, plan_stack, start_stack  # noqa: E402

CAPTIONS = [
    f"a {c} {s}" for c in ("red", "green", "blue", "yellow") for s in ("square", "circle", "triangle")
]


def _png(rgb: tuple[int, int, int], size: int = 64) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), rgb).save(buf, "PNG")
    return buf.getvalue()


def _pixel_bomb(png: bytes, side: int) -> bytes:
    """`png` with its header claiming side x side pixels (a decompression bomb's first bytes)."""
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return png[:8] + chunk + png[33:]


@dataclass(frozen=True)
class Kind:
    """One kind of request: how to send it, how often, and the status it must get."""

    name: str
    path: str
    expect: int
    weight: int
    form: dict[str, Any] | None = None
    json: Any = None
    raw: tuple[bytes, str] | None = None  # body, content type


def kinds() -> list[Kind]:
    red, blue = _png((220, 30, 30)), _png((30, 40, 220))
    b64 = base64.b64encode(blue).decode()
    bomb = _pixel_bomb(red, 60_000)
    return [
        Kind("compare-form", "/compare/", 200, 6, form={"image": red, "text": CAPTIONS[:3]}),
        Kind("compare-json", "/compare/", 200, 6, json={"image": b64, "text": CAPTIONS}),
        Kind("compare-one", "/compare/", 200, 3, json={"image": b64, "text": "a blue circle"}),
        Kind("embed", "/embed/", 200, 2, form={"image": blue}),
        Kind("embed-text", "/embed_text/", 200, 2, json={"text": CAPTIONS[:4]}),
        Kind("not-an-image", "/compare/", 400, 1, form={"image": b"<html>hi</html>", "text": ["a"]}),
        Kind("empty-text", "/compare/", 400, 1, json={"image": b64, "text": "  "}),
        Kind("missing-text", "/compare/", 422, 1, json={"image": b64}),
        Kind("wrong-content-type", "/compare/", 415, 1, raw=(red, "image/png")),
        Kind("bad-json", "/compare/", 400, 1, raw=(b'{"image": ', "application/json")),
        Kind("pixel-bomb", "/compare/", 413, 1, form={"image": bomb, "text": ["a"]}),
    ]


@dataclass
class Tally:
    by_kind: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    unexpected: Counter[str] = field(default_factory=Counter)  # "kind: got" -> count
    latencies: list[float] = field(default_factory=list)


async def _send(session: aiohttp.ClientSession, url: str, kind: Kind) -> int:
    if kind.form is not None:
        data = aiohttp.FormData()
        for key, value in kind.form.items():
            for v in value if isinstance(value, list) else [value]:
                if isinstance(v, bytes):
                    data.add_field(key, v, filename="upload.png", content_type="image/png")
                else:
                    data.add_field(key, v)
        request = session.post(url + kind.path, data=data)
    elif kind.raw is not None:
        request = session.post(url + kind.path, data=kind.raw[0], headers={"content-type": kind.raw[1]})
    else:
        request = session.post(url + kind.path, json=kind.json)
    async with request as response:
        await response.read()
        return response.status


async def _client(
    session: aiohttp.ClientSession, url: str, plan: itertools.cycle[Kind], end: float, tally: Tally
) -> None:
    while time.monotonic() < end:
        kind = next(plan)
        started = time.monotonic()
        try:
            status = await _send(session, url, kind)
        except (aiohttp.ClientError, TimeoutError) as exc:
            status = 0
            tally.unexpected[f"{kind.name}: {type(exc).__name__}"] += 1
        tally.latencies.append(time.monotonic() - started)
        tally.by_kind[kind.name][status] += 1
        if status and status != kind.expect:
            tally.unexpected[f"{kind.name}: {status}"] += 1


async def _sample_rss(pids: dict[str, int], every_s: float, end: float, out: list[dict[str, Any]]) -> None:
    start = time.monotonic()
    while True:
        now = time.monotonic()
        out.append(
            {
                "t": round(now - start, 1),
                **{job: psutil.Process(pid).memory_info().rss for job, pid in pids.items()},
            }
        )
        if now >= end:
            return
        await asyncio.sleep(min(every_s, max(end - now, 0.0)))


async def soak(
    url: str,
    pids: dict[str, int],
    seconds: float,
    concurrency: int,
    sample_s: float,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run the mix against `url` for `seconds` (sending `headers`, e.g. an API key); the report as a dict."""
    mix = [k for k in kinds() for _ in range(k.weight)]
    tally, rss = Tally(), []  # type: ignore[var-annotated]
    end = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, headers=headers) as session:
        plans = [itertools.cycle(mix[i:] + mix[:i]) for i in range(concurrency)]
        await asyncio.gather(
            _sample_rss(pids, sample_s, end, rss),
            *(_client(session, url, plan, end, tally) for plan in plans),
        )
    by_code = Counter[int]()
    for counts in tally.by_kind.values():
        by_code.update(counts)
    latencies = sorted(tally.latencies)
    return {
        "seconds": seconds,
        "concurrency": concurrency,
        "requests": sum(by_code.values()),
        "by_code": {str(k): v for k, v in sorted(by_code.items())},
        "by_kind": {k: {str(s): n for s, n in sorted(v.items())} for k, v in sorted(tally.by_kind.items())},
        "unexpected": dict(tally.unexpected),
        "latency_s": {
            "p50": latencies[len(latencies) // 2] if latencies else None,
            "p99": latencies[int(len(latencies) * 0.99)] if latencies else None,
            "max": latencies[-1] if latencies else None,
        },
        "rss_bytes": rss,
    }


def rss_growth(report: dict[str, Any], warmup_s: float) -> dict[str, float]:
    """Per process: last RSS sample / first sample at or after the warm-up."""
    samples = report["rss_bytes"]
    base = next((s for s in samples if s["t"] >= warmup_s), samples[0])
    last = samples[-1]
    return {job: last[job] / base[job] for job in base if job != "t"}


def markdown(report: dict[str, Any], growth: dict[str, float]) -> str:
    lines = [
        f"# Soak: {report['seconds']:g} s at concurrency {report['concurrency']}",
        "",
        f"{report['requests']} requests; latency p50 {report['latency_s']['p50']:.3f} s, "
        f"p99 {report['latency_s']['p99']:.3f} s",
        "",
        "| status | requests |",
        "|---|---|",
        *(f"| {code} | {n} |" for code, n in report["by_code"].items()),
        "",
        f"Unexpected: {report['unexpected'] or 'none'}",
        "",
        "| t (s) | " + " | ".join(f"{job} RSS (MB)" for job in growth) + " |",
        "|---|" + "---|" * len(growth),
        *(
            f"| {s['t']} | " + " | ".join(f"{s[job] / 2**20:.1f}" for job in growth) + " |"
            for s in report["rss_bytes"]
        ),
        "",
        "RSS growth after warm-up: " + ", ".join(f"{job} {g:.3f}x" for job, g in growth.items()),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 300)))
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--model-dir", type=Path, default=ROOT / "models" / "clip-shapes")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "soak")
    parser.add_argument("--sample-s", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--warmup-s", type=float, default=15.0, help="RSS growth is measured after this")
    parser.add_argument("--max-rss-growth", type=float, default=1.10)
    args = parser.parse_args()
    if not 0 < args.seconds <= 24 * 3600:
        parser.error("--seconds must be in (0, 86400]")
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"
    logs.mkdir(exist_ok=True)
    stack: LocalStack = start_stack(plan_stack(args.model_dir, logs))
    try:
        pids = {job: s.proc.pid for job, s in stack.servers.items() if s.proc is not None}
        print(
            f"soaking {stack.gateway_url} for {args.seconds:g} s at concurrency {args.concurrency}",
            flush=True,
        )
        report = asyncio.run(soak(stack.gateway_url, pids, args.seconds, args.concurrency, args.sample_s))
        alive = {job: s.proc is not None and s.proc.poll() is None for job, s in stack.servers.items()}
    finally:
        stack.stop_all()
    growth = rss_growth(report, args.warmup_s)
    report.update(rss_growth_after_warmup=growth, processes_alive=alive)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    (args.out / f"soak-{stamp}.json").write_text(json.dumps(report, indent=1))
    (args.out / f"soak-{stamp}.md").write_text(text := markdown(report, growth))
    print(text)
    failed = report["unexpected"] or not all(alive.values()) or max(growth.values()) > args.max_rss_growth
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
