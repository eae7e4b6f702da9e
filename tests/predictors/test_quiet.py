"""The engine trial times its rounds only while other processes leave its CPUs alone: it reads their
CPU time from /proc/stat, times a round they intruded on again once they leave, and past
`--trial_wait_s` keeps what it timed and says so; in-process on a fake clock, then through real
predictors beside real busy processes."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import torch

from bench.procs import cpu_seconds
from predictors.engines import quiet, trial
from predictors.engines.choice import Choice
from predictors.engines.quiet import Cpus, Quiet, Reading
from predictors.engines.tower import Tower
from predictors.threads import ThreadSplit
from tests.support.models import DEMO_MODEL_DIR
from tests.support.predictor_servers import predictor

from .test_engines import Clock

ORT, OPENVINO = Choice("onnxruntime", "onnxruntime", "fp32"), Choice("openvino", "openvino", "fp32")
CPUS = len(os.sched_getaffinity(0))
STAYED = "other processes took its CPUs during timed rounds, so their times include theirs"


def write_stat(path: Path, rows: dict[str, list[int]]) -> None:
    lines = [f"{name} {' '.join(map(str, counts))}" for name, counts in rows.items()]
    path.write_text("\n".join([*lines, "intr 12 0 0", "ctxt 99"]) + "\n")


def test_cpus_count_busy_time_and_steal_on_the_cpus_this_process_may_run_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(quiet.os, "sched_getaffinity", lambda pid: {0, 2})
    stat = tmp_path / "stat"
    #        user nice system idle iowait irq softirq steal guest guest_nice
    write_stat(stat, {
        "cpu": [900, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        "cpu0": [100, 1, 20, 5000, 7, 2, 3, 40, 0, 0],
        "cpu1": [800, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        "cpu2": [10, 0, 5, 9000, 0, 0, 0, 0, 0, 0],
    })  # fmt: skip
    cpus = Cpus(needed=1, stat=stat)
    assert cpus.free == 1
    # cpu0 and cpu2 only (not the total line nor cpu1), idle and iowait left out, steal counted
    assert cpus.read().busy == pytest.approx((100 + 1 + 20 + 2 + 3 + 40 + 10 + 5) * cpus.tick)


def fixed(n: int, needed: int, tick: float = 0.01) -> Cpus:
    cpus = Cpus.__new__(Cpus)
    cpus.ids, cpus.tick, cpus.free = {f"cpu{i}" for i in range(n)}, tick, max(0, n - needed)
    return cpus


def test_others_intrude_only_when_they_take_more_than_the_cpus_the_passes_leave_free() -> None:
    start = Reading(wall=0.0, busy=0.0, own=0.0)
    # two CPUs, the passes use both: a neighbour on one CPU half the time intrudes, the counters' noise
    # does not
    assert fixed(2, needed=2).intruded(start, Reading(1.0, busy=2.5, own=2.0))
    assert not fixed(2, needed=2).intruded(start, Reading(1.0, busy=2.05, own=2.0))
    # one pass thread of two CPUs: a neighbour on the other CPU leaves it alone, one on both does not
    assert not fixed(2, needed=1).intruded(start, Reading(1.0, busy=2.0, own=1.0))
    assert fixed(2, needed=1).intruded(start, Reading(1.0, busy=2.0, own=0.6))
    # 64 CPUs, 2 for the passes: 30 taken by other pods is no contention; 63 is
    assert not fixed(64, needed=2).intruded(start, Reading(5.0, busy=160.0, own=10.0))
    assert fixed(64, needed=2).intruded(start, Reading(5.0, busy=320.0, own=5.0))


@contextmanager
def busy_cpus(n: int = CPUS) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`n` processes spinning, one per CPU by default."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield hogs
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


@pytest.mark.usefixtures("starts_processes")
def test_a_busy_process_on_every_cpu_intrudes_on_a_span_read_from_proc_stat() -> None:
    cpus = Cpus(needed=CPUS)
    with busy_cpus():
        time.sleep(0.3)
        start = cpus.read()
        time.sleep(0.5)
        end = cpus.read()
    assert cpus.others(start, end) > 0.5 * CPUS * (end.wall - start.wall)
    assert cpus.intruded(start, end)


class Neighbour(Cpus):
    """Two CPUs, both for the passes; another process holds them both from `arrives` to `leaves`."""

    def __init__(self, clock: Clock, arrives: float, leaves: float) -> None:
        self.clock, self.arrives, self.leaves = clock, arrives, leaves
        self.ids, self.tick, self.free = {"cpu0", "cpu1"}, 0.01, 0

    def here(self) -> bool:
        return self.arrives <= self.clock.now < self.leaves

    def read(self) -> Reading:
        held = max(0.0, min(self.clock.now, self.leaves) - self.arrives)
        return Reading(self.clock.now, busy=2 * held, own=0.0)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(trial, "time", fake)
    monkeypatch.setattr(quiet, "time", fake)
    monkeypatch.setattr(quiet, "random", random.Random(0))
    return fake


def paced(clock: Clock, neighbour: Neighbour) -> dict[Choice, Tower]:
    """ONNX Runtime leads alone; beside the neighbour it slows threefold, OpenVINO by a quarter."""

    class Paced(Tower):
        def run(self, x: torch.Tensor, alone: bool) -> torch.Tensor:
            crowded = neighbour.here()
            clock.sleep({ORT: 0.06 if crowded else 0.02, OPENVINO: 0.03 if crowded else 0.024}[self.choice])
            return torch.zeros(len(x), 4)

    split = ThreadSplit(1, 2, 2)
    return {c: Paced(c, "image", False, split) for c in (ORT, OPENVINO)}


WORKLOAD = [trial.Workload(trial.UNDER_LOAD, torch.zeros(2, 3))]


def test_a_round_another_process_intrudes_on_is_timed_again_once_it_leaves(clock: Clock) -> None:
    neighbour = Neighbour(clock, arrives=0.04, leaves=3.0)  # after the untimed passes, in round one
    check = Quiet(neighbour, budget_s=60)
    times = trial.time_towers(paced(clock, neighbour), WORKLOAD, quiet=check)
    assert trial.pick(times) == ORT
    assert times[trial.UNDER_LOAD] == {ORT: pytest.approx(0.02), OPENVINO: pytest.approx(0.024)}
    assert check.redone >= 1 and 2.9 < check.waited_s < 4 and not check.busy
    assert str(check).startswith("waited 3.") and "round(s) again" in str(check)


def test_without_the_check_the_neighbour_picks_the_engine(clock: Clock) -> None:
    neighbour = Neighbour(clock, arrives=0.04, leaves=3.0)
    times = trial.time_towers(paced(clock, neighbour), WORKLOAD)  # what the check above prevents
    assert trial.pick(times) == OPENVINO


def test_past_its_budget_the_trial_keeps_what_it_timed_and_says_so(clock: Clock) -> None:
    neighbour = Neighbour(clock, arrives=0.0, leaves=float("inf"))
    check = Quiet(neighbour, budget_s=2)
    times = trial.time_towers(paced(clock, neighbour), WORKLOAD, quiet=check)
    assert times[trial.UNDER_LOAD] == {ORT: pytest.approx(0.06), OPENVINO: pytest.approx(0.03)}
    assert check.busy and 2 <= check.waited_s < 3
    assert str(check).endswith(STAYED)


def test_no_wait_where_nothing_else_runs(clock: Clock) -> None:
    neighbour = Neighbour(clock, arrives=0.0, leaves=0.0)
    check = Quiet(neighbour, budget_s=60)
    trial.time_towers(paced(clock, neighbour), WORKLOAD, quiet=check)
    assert (check.waited_s, check.redone, check.busy, str(check)) == (0.0, 0, False, "")


def wait_until_idle(pid: int, idle_s: float = 1.0, timeout: float = 180.0) -> None:
    """Until process `pid` has used no CPU for `idle_s`: a loading predictor does so only while it
    waits for the CPUs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(idle_s)
        if cpu_seconds(pid) - before < 0.05:
            return
    raise TimeoutError(f"process {pid} never waited")


def engine_trial(url: str) -> str:
    config = httpx.get(f"{url}/v2/models/clip-image/config", timeout=10).json()
    return str(config["parameters"]["engine_trial"])


@pytest.mark.usefixtures("starts_processes")
def test_a_predictor_times_its_trial_after_busy_processes_leave(log_dir: Path) -> None:
    server = predictor("image", DEMO_MODEL_DIR, log_dir, ["--num_threads", str(CPUS)])
    try:
        with busy_cpus():
            server.launch()
            wait_until_idle(server.pid)
        server.wait_ready(timeout=120)
        text = engine_trial(server.url)
        assert "waited" in text and "for other processes to leave its CPUs" in text, text
        assert "their times include theirs" not in text, text
    finally:
        server.stop()


@pytest.mark.usefixtures("starts_processes")
def test_a_predictor_on_cpus_that_stay_busy_serves_after_its_wait_and_warns(log_dir: Path) -> None:
    server = predictor("image", DEMO_MODEL_DIR, log_dir, ["--num_threads", str(CPUS), "--trial_wait_s", "1"])
    try:
        with busy_cpus():
            server.start(timeout=240)
        text = engine_trial(server.url)
        assert text.endswith(STAYED), text
        assert server.log_path is not None
        lines = [ln for ln in server.log_path.read_text().splitlines() if "engine trial" in ln]
        assert len(lines) == 1 and " WARNING " in lines[0], lines
    finally:
        server.stop()
