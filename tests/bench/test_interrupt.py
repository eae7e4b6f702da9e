"""Interrupting `python -m bench` (Ctrl-C or SIGTERM) mid-run stops every program it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.procs import ROOT

pytestmark = pytest.mark.usefixtures("starts_processes")  # its tests start programs

PROGRAMS = 7  # per model: 2 batched predictors, 2 unbatched, 3 gateways


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a live process, None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every process below `root`, pid -> start time (pids are not reused under the same start time)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            children.setdefault(st[0], []).append(int(entry.name))
            starts[int(entry.name)] = st[2]
    found, todo = {}, [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def alive(pid: int, start: str) -> bool:
    st = _stat(pid)
    return st is not None and st[2] == start and st[1] != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


@pytest.mark.parametrize(
    ("how", "exit_code"),
    [("Ctrl-C (SIGINT to its process group)", 130), ("SIGTERM to the benchmark alone", 143)],
)
def test_interrupting_a_run_leaves_no_program_behind(
    tiny_dir: Path, tmp_path: Path, how: str, exit_code: int
) -> None:
    argv = [sys.executable, "-m", "bench", "--quick", "--model-dir", str(tiny_dir), "--out", str(tmp_path),
            "--measure-s", "30"]  # fmt: skip
    bench = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        seen: dict[int, str] = {}
        while time.monotonic() < deadline and bench.poll() is None:  # until the servers are up and measured
            seen |= descendants(bench.pid)
            servers = [p for p in seen if "-m predictors." in cmdline(p) or "-m gateway" in cmdline(p)]
            if len(servers) >= PROGRAMS and any("bench.inprocess" in cmdline(p) for p in seen):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"the run never reached its in-process step; exit {bench.poll()}")
        assert len(servers) == PROGRAMS
        if exit_code == 130:
            os.killpg(bench.pid, signal.SIGINT)
        else:
            bench.send_signal(signal.SIGTERM)
        _, err = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            os.killpg(bench.pid, signal.SIGKILL)
            bench.wait()
    assert bench.returncode == exit_code, err.decode()[-2000:]
    assert "stopped every program it started" in err.decode()
    left = [cmdline(p) or str(p) for p, start in seen.items() if alive(p, start)]
    assert left == [], f"{how}: still running after the benchmark exited: {left}"
