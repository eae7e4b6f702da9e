"""Faults of real predictors under real traffic: a killed predictor, its restart at the same address,
a predictor that stalls and one that answers 500."""

from __future__ import annotations

import http.server
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devtools.procs import Program
from tests.gateway.stall import StallingServer
from tests.support.reliability import TIMEOUT_S
from tests.support.stack import LocalStack, gateway_server
from tests.support.tiers import process_fixture

from .corpus import PNG

RECOVERY_S = 5.0
CLIENTS = 4


@dataclass
class Answer:
    sent: float
    took: float
    status: int  # 0: no HTTP answer at all


class Load:
    """CLIENTS threads POSTing /compare/ back to back, each text new (no cache can answer for them)."""

    def __init__(self, url: str) -> None:
        self.url = f"{url}/compare/"
        self.answers: list[Answer] = []
        self.stop = threading.Event()
        self.counter = itertools.count()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(CLIENTS)]

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(TIMEOUT_S + 10)

    def run(self) -> None:
        with httpx.Client(timeout=TIMEOUT_S + 10) as client:
            while not self.stop.is_set():
                sent = time.monotonic()
                files = {"image": ("x.png", PNG, "image/png")}
                try:
                    status = client.post(
                        self.url, files=files, data={"text": f"shape {next(self.counter)}"}
                    ).status_code
                except httpx.HTTPError:
                    status = 0
                self.answers.append(Answer(sent, time.monotonic() - sent, status))

    def since(self, t: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.sent >= t]


def wait_for(probe: Any, timeout: float) -> float:
    """Seconds until `probe()` is true; fails after `timeout`."""
    start = time.monotonic()
    while not probe():
        assert time.monotonic() - start < timeout, f"not within {timeout} s"
        time.sleep(0.05)
    return time.monotonic() - start


def test_a_killed_predictor_is_503_in_bounded_time_and_traffic_recovers_after_its_restart(
    tight_stack: LocalStack,
) -> None:
    stack = tight_stack
    gw = stack.gateway_url
    with Load(gw) as load:
        wait_for(lambda: any(a.status == 200 for a in load.answers), 30)
        killed = time.monotonic()
        stack.servers["clip-image"].kill()  # SIGKILL: no goodbye, pooled connections die mid-air
        wait_for(lambda: httpx.get(f"{gw}/readyz", timeout=5).status_code == 503, 10)
        wait_for(lambda: sum(a.status == 503 for a in load.since(killed)) >= CLIENTS, 30)  # users saw it
        down = [a for a in load.since(killed)]
        stack.restart("clip-image")  # same command, same ports
        back = time.monotonic()
        recovered = wait_for(lambda: any(a.status == 200 for a in load.since(back)), RECOVERY_S)
        wait_for(lambda: len(load.since(back + recovered)) >= 2 * CLIENTS, 30)  # traffic after recovery
    print(  # shown with -rP: what the bounds were measured against
        f"while down: {len(down)} answers {sorted({a.status for a in down})}, slowest "
        f"{max(a.took for a in down):.2f} s; first 200 {recovered:.2f} s after the restart was ready"
    )
    assert down and {a.status for a in down} <= {200, 503}, {a.status for a in down}
    assert 503 in {a.status for a in down}
    assert max(a.took for a in down) <= TIMEOUT_S + 1, max(a.took for a in down)
    assert recovered <= RECOVERY_S
    after = load.since(back + recovered)
    assert after and {a.status for a in after} == {200}, {a.status for a in after}
    assert httpx.get(f"{gw}/readyz", timeout=5).status_code in (200, 503)  # cached up to 2 s
    wait_for(lambda: httpx.get(f"{gw}/readyz", timeout=5).status_code == 200, 5)


class Answer500(http.server.BaseHTTPRequestHandler):
    """A predictor whose model is ready and whose every inference fails with a 500."""

    def do_GET(self) -> None:
        self.reply(200, b"{}")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.reply(500, b'{"error": "RuntimeError : CUDA error: an illegal memory access was encountered"}')

    def reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@process_fixture(scope="module")
def broken_gateways(
    tight_stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Gateways whose text predictor stalls or answers 500 (their image predictor is the real one)."""
    logs = tmp_path_factory.mktemp("broken")
    image = f"http://127.0.0.1:{tight_stack.servers['clip-image'].ports['http']}"
    failing = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer500)
    threading.Thread(target=failing.serve_forever, daemon=True).start()
    gateways: list[Program] = []
    try:
        with StallingServer() as stall:
            for text in (stall.url, f"http://127.0.0.1:{failing.server_address[1]}"):
                gateways.append(gateway_server(image, text, logs, PREDICTOR_TIMEOUT_S=str(TIMEOUT_S)).start())
            yield {
                name: f"http://127.0.0.1:{g.ports['http']}"
                for name, g in zip(("stall", "500"), gateways, strict=True)
            }
    finally:
        for g in gateways:
            g.stop()
        failing.shutdown()
        failing.server_close()


def test_a_stalled_predictor_is_504_within_the_timeout(broken_gateways: dict[str, str]) -> None:
    start = time.monotonic()
    r = httpx.post(f"{broken_gateways['stall']}/embed_text/", json={"text": "a cat"}, timeout=30)
    assert r.status_code == 504, r.text
    assert time.monotonic() - start <= TIMEOUT_S + 1
    assert "did not answer" in r.json()["error"]


def test_a_predictor_answering_500_is_502_and_the_gateway_keeps_serving(
    broken_gateways: dict[str, str],
) -> None:
    url = broken_gateways["500"]
    for _ in range(3):
        r = httpx.post(f"{url}/embed_text/", json={"text": "a cat"}, timeout=30)
        assert r.status_code == 502, r.text
        assert r.json() == {"error": "the text predictor failed with 500"}  # its internals stay in the log
    r = httpx.post(f"{url}/embed/", files={"image": ("x.png", PNG, "image/png")}, timeout=30)
    assert r.status_code == 200, r.text
