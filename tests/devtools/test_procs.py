"""The supervisor (devtools/procs.py): free ports, readiness, and stopping a program with what it started."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from devtools.procs import PYTHON, Program, is_port_free, pick_free_port, stop_all
from tests.support.prometheus import poll

# Ignores SIGTERM, starts a grandchild that does too, prints both pids, then waits: only SIGKILL of the
# whole process group ends them.
STUBBORN = """
import os, signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, "
                          "signal.SIG_IGN); time.sleep(600)"])
print(os.getpid(), child.pid, flush=True)
time.sleep(600)
"""


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, exited and not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_port_something_listens_on_is_not_free_and_is_free_once_closed() -> None:
    port = pick_free_port()
    assert is_port_free(port, "127.0.0.1")
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert not is_port_free(port, "127.0.0.1")
    assert is_port_free(port, "127.0.0.1")


@pytest.mark.usefixtures("starts_processes")
def test_a_program_that_exits_before_it_is_ready_is_reported_with_its_log(tmp_path: Path) -> None:
    port = pick_free_port()
    program = Program(
        "failing",
        [PYTHON, "-c", "import sys; print('no model here'); sys.exit(3)"],
        f"http://127.0.0.1:{port}/ready",
        log_path=tmp_path / "failing.log",
    )
    with pytest.raises(RuntimeError, match=r"failing exited with 3:\nno model here"):
        program.start(timeout=60)


@pytest.mark.usefixtures("starts_processes")
def test_stopping_kills_a_program_that_ignores_sigterm_and_what_it_started() -> None:
    program = Program("stubborn", [PYTHON, "-c", STUBBORN], "http://127.0.0.1:9/never")
    program.launch(output=subprocess.PIPE)
    assert program.proc is not None and program.proc.stdout is not None
    pid, grandchild = map(int, program.proc.stdout.readline().split())
    late: list[str] = []
    stop_all([program], grace_s=0.5, on_late=lambda p: late.append(p.name))
    assert late == ["stubborn"]
    assert program.proc.returncode == -signal.SIGKILL
    assert not alive(pid)
    poll(lambda: alive(grandchild), lambda up: not up, 10, "the program's own child stopped too")
