"""`make run` as a user runs it: ready within a minute, gives the README's outputs, stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from devtools.procs import ROOT

pytestmark = pytest.mark.usefixtures("starts_processes")  # its tests start programs


PORTS = (8000, 8001, 8002, 9001, 9002)


def listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


NUMBER = re.compile(r"-?\d+\.\d+(?:e-?\d+)?")


def readme_gateway_examples() -> list[tuple[str, str]]:
    """(command, output shown) for each README example that calls the local gateway."""
    text = (ROOT / "README.md").read_text()
    pattern = r"^\$ ((?:curl|printf) .*localhost:8000/.*)\n([^$`].*)$"
    return re.findall(pattern, text, re.M)


def assert_same_output(command: str, shown: str, actual: str) -> None:
    """The output matches what the README shows: same text, numbers equal to 1e-4, `...` elides."""
    shown = shown.split(", ...")[0].split("...")[0]
    assert NUMBER.sub("#", actual).startswith(NUMBER.sub("#", shown)), f"{command}\n{actual[:300]}"
    expected = [float(x) for x in NUMBER.findall(shown)]
    got = [float(x) for x in NUMBER.findall(actual)][: len(expected)]
    assert got == pytest.approx(expected, abs=1e-4), f"{command}\n{actual[:300]}"


def descendants(pid: int) -> set[int]:
    """Every process started, directly or not, by `pid` (whatever session it moved to)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if _state(p) != "Z"}


def _state(pid: int) -> str:
    """The process state letter; "Z" (zombie) also for a process that is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_make_run_answers_the_readme_examples_as_shown_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    busy = [p for p in PORTS if listening(p)]
    assert not busy, f"ports {busy} are taken: stop whatever runs there (an earlier `make run`?)"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # offline: the demo model, with its warning
    proc = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        text=True,
    )
    lines: list[str] = []
    started: set[int] = set()
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "[run] ready in" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60), "make run was not ready within a minute:\n" + "".join(lines[-30:])
        started = descendants(proc.pid)
        assert len(started) >= 4, "expected the launcher and its three programs"
        output = "".join(lines)
        assert "DEMO model" in output, "offline, make run must say it serves the demo model"
        examples = readme_gateway_examples()
        assert len(examples) >= 6, "README.md shows too few gateway examples"
        for command, shown in examples:
            result = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, f"{command}\n{result.stderr}"
            assert_same_output(command, shown, result.stdout)
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        code = proc.wait(30)
        reader.join(5)
    # make, interrupted itself, ends by re-raising SIGINT once the launcher has stopped cleanly.
    assert code in (0, -signal.SIGINT), "".join(lines[-30:])
    assert "[run] stopped" in "".join(lines)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (any(listening(p) for p in PORTS) or alive(started)):
        time.sleep(0.2)
    assert not [p for p in PORTS if listening(p)], "a port is still served after Ctrl-C"
    assert not alive(started), f"processes left behind: {alive(started)}"
