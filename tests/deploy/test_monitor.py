"""`make monitor` (scripts/monitor.py): Prometheus on 127.0.0.1 with the local config and chart alerts."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from devtools.procs import PYTHON, pick_free_port
from tests.deploy.chart import ROOT
from tests.support.prometheus import poll
from tests.support.tiers import process_fixture

SCRIPT = ROOT / "scripts" / "monitor.py"
ALERTS = {
    "ClipGatewayHighLatency",
    "ClipGatewayHighErrorRatio",
    "ClipTargetDown",
    "ClipPredictorOverloaded",
    "ClipPredictorQueueSaturated",
}


def read_until(proc: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    """The script's output up to the first line matching `pattern` (read by a thread: no blocking read)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stdout or ():
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen = ""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        seen += line
        if re.search(pattern, line):
            return seen
    raise AssertionError(f"no line matching {pattern!r} within {timeout}s; output:\n{seen}")


@process_fixture
def monitor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = pick_free_port()
    tmp = tmp_path_factory.mktemp("monitor")
    proc = subprocess.Popen(
        [PYTHON, str(SCRIPT), "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        assert list(tmp.iterdir()) == [], "the temporary TSDB directory was left behind"


def test_monitor_serves_the_local_config_and_chart_alerts_until_ctrl_c(
    monitor: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = monitor
    url = f"http://127.0.0.1:{port}"
    output = read_until(proc, r"Ctrl-C stops it", timeout=60)
    assert f"Prometheus: {url}" in output and f"alerts:     {url}/alerts" in output
    groups = httpx.get(f"{url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {r["name"] for g in groups for r in g["rules"]} == ALERTS
    assert {g["file"] for g in groups} == {str(ROOT / "prometheus" / "rules.yml")}
    expected = {
        ("clip-gateway", "http://localhost:8000/metrics"),
        ("clip-image", "http://localhost:8001/metrics"),
        ("clip-text", "http://localhost:8002/metrics"),
    }

    def targets() -> set[tuple[str, str]]:  # Prometheus applies discovered targets every 5 s
        active = httpx.get(f"{url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        return {(t["labels"]["job"], t["scrapeUrl"]) for t in active}

    poll(targets, lambda found: found == expected, 20, "scraping the make run ports")
    proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
    assert proc.wait(60) == 0  # Prometheus flushes its head block first: slow on a busy machine
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/-/ready", timeout=2)


@pytest.mark.usefixtures("starts_processes")
def test_monitor_refuses_a_busy_port_and_says_how_to_pick_another() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [PYTHON, str(SCRIPT), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stdout and "PROMETHEUS_PORT" in result.stdout
