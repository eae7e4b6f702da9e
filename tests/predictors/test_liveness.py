"""Liveness tells the truth: not live once forward passes are wedged (items wait and no pass finishes,
or one pass runs, past --stall_timeout_s); live while idle or busy with passes finishing."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as grpc_v2

from devtools.procs import PYTHON, Program, pick_free_port
from predictors.liveness import PassProgress
from tests.support.tiers import process_fixture


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_idle_is_never_wedged() -> None:
    clock = Clock()
    progress = PassProgress(clock)
    clock.now += 3600
    assert progress.stall(10) is None


def test_work_arriving_after_a_long_idle_gets_the_whole_bound() -> None:
    clock = Clock()
    progress = PassProgress(clock)
    clock.now += 3600
    progress.items_submitted(2)
    clock.now += 9
    assert progress.stall(10) is None
    clock.now += 2
    reason = progress.stall(10)
    assert reason is not None and "2 item(s) have waited 11.0 s" in reason


def test_slow_passes_that_finish_keep_it_live() -> None:
    clock = Clock()
    progress = PassProgress(clock)
    progress.items_submitted(100)
    for _ in range(20):  # each pass takes 8 s of a 10 s bound, items wait far longer in all
        token = progress.pass_started()
        clock.now += 8
        assert progress.stall(10) is None
        progress.pass_ended(token)
        progress.items_answered(5)
    assert progress.waiting == 0 and progress.stall(10) is None


def test_one_hung_pass_beside_a_progressing_worker_is_wedged() -> None:
    clock = Clock()
    progress = PassProgress(clock)
    progress.items_submitted(10)
    hung = progress.pass_started()
    for _ in range(4):
        token = progress.pass_started()
        clock.now += 3
        progress.pass_ended(token)
    reason = progress.stall(10)
    assert reason is not None and "a forward pass has run for 12.0 s" in reason
    progress.pass_ended(hung)
    assert progress.stall(10) is None


def test_items_of_a_cancelled_request_stop_counting() -> None:
    clock = Clock()
    progress = PassProgress(clock)
    progress.items_submitted(3)
    progress.items_answered(3)  # the request went away before any pass
    clock.now += 100
    assert progress.stall(10) is None


# Through a real predictor process (tests.predictors.held_predictor) with a short stall bound.

STALL_S = 3.0
PASS_DELAY_S = 0.4  # far inside the bound: a busy predictor's passes
POLL_BOUND_S = 60.0  # generous: only how long a state may take to be reached on a loaded machine


@process_fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path, log_dir: Path) -> Iterator[Held]:
    hold_file = tmp_path_factory.mktemp("hold") / "hold"
    http, grpc = pick_free_port(), pick_free_port()
    server = Program(
        name="held-clip-text",
        argv=[
            PYTHON, "-m", "tests.predictors.held_predictor", "--model_dir", str(tiny_dir),
            "--http_port", str(http), "--grpc_port", str(grpc), "--stall_timeout_s", str(STALL_S),
        ],
        ready_url=f"http://127.0.0.1:{http}/v2/models/clip-text/ready",
        env={"HF_HUB_OFFLINE": "1", "HOLD_FILE": str(hold_file), "PASS_DELAY_S": str(PASS_DELAY_S)},
        log_path=log_dir / f"held-clip-text-{http}.log",
    )  # fmt: skip
    server.ports = {"http": http, "grpc": grpc}
    server.start(120)
    try:
        yield Held(server, hold_file)
    finally:
        hold_file.unlink(missing_ok=True)
        server.stop()


@dataclass
class Held:
    server: Program
    hold_file: Path

    def live(self, path: str = "/v2/health/live") -> httpx.Response:
        return httpx.get(self.server.url + path, timeout=10)

    def grpc_live(self) -> bool:
        with grpc.insecure_channel(f"127.0.0.1:{self.server.ports['grpc']}") as channel:
            stub = grpc_v2.GRPCInferenceServiceStub(channel)
            return bool(stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live)

    def infer(self, text: str) -> httpx.Response:
        body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [text]}]}
        return httpx.post(self.server.url + "/v2/models/clip-text/infer", json=body, timeout=120)

    def wait_live(self, status: int) -> httpx.Response:
        deadline = time.monotonic() + POLL_BOUND_S
        while time.monotonic() < deadline:
            r = self.live()
            if r.status_code == status:
                return r
            time.sleep(0.1)
        raise AssertionError(f"liveness never answered {status}:\n{self.server.log_tail()}")


def test_idle_and_busy_predictor_stays_live(held: Held) -> None:
    time.sleep(STALL_S + 1)  # idle, nothing queued, for longer than the bound
    assert held.live().status_code == 200
    stop = threading.Event()
    answered: list[int] = []

    def load() -> None:
        while not stop.is_set():
            answered.append(held.infer("a busy predictor").status_code)

    senders = [threading.Thread(target=load) for _ in range(4)]
    for t in senders:
        t.start()
    try:
        statuses = []
        busy_until = time.monotonic() + 3 * STALL_S  # items wait throughout; passes keep finishing
        while time.monotonic() < busy_until:
            statuses.append(held.live().status_code)
            time.sleep(0.2)
    finally:
        stop.set()
        for t in senders:
            t.join(120)
    assert set(statuses) == {200}, statuses
    assert set(answered) == {200} and len(answered) > 4, answered


def test_a_wedged_pass_makes_liveness_fail_until_it_progresses(held: Held) -> None:
    assert held.live().status_code == 200
    held.hold_file.touch()
    answers: list[httpx.Response] = []
    request = threading.Thread(target=lambda: answers.append(held.infer("held")))
    request.start()
    try:
        body = held.wait_live(503).json()
        assert body["live"] is False and "clip-text is wedged" in body["error"], body
        assert "stall bound of 3 s" in body["error"], body
        assert held.live("/").status_code == 503  # KServe's root liveness route says the same
        with pytest.raises(grpc.RpcError) as grpc_error:
            held.grpc_live()
        assert grpc_error.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "wedged" in str(grpc_error.value.details())
        assert held.server.proc is not None and held.server.proc.poll() is None  # Kubernetes restarts it
    finally:
        held.hold_file.unlink()
        request.join(120)
    assert answers and answers[0].status_code == 200
    held.wait_live(200)
    assert held.live("/").json() == {"status": "alive"}
    assert held.grpc_live()
