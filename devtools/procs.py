"""The one supervisor of the project's programs run as child processes on this machine.

`make run` (scripts/run_stack.py), the benchmark (bench/) and the tests (tests/support/) start, wait
for and stop the predictors, the gateway and Prometheus through `Program` and `stop_all`:

- each program leads its own session (process group), so a terminal's Ctrl-C reaches only the parent,
  and stopping it also reaches whatever it started;
- readiness is an HTTP GET answering 200 at `ready_url`, while the process is still alive;
- stopping sends SIGTERM to every program at once, then SIGKILLs the process group of each one still
  running after the grace period (and of each one that exited, for anything it left behind);
- every launched program is tracked until it is stopped, and an exit hook stops what is still tracked.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
LOOPBACK = "127.0.0.1"
PYTHON = sys.executable  # the interpreter of the project's own programs: this one, in its virtualenv
_LIVE: list[Program] = []
# Loopback URLs are fetched directly, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def pick_free_port(host: str = LOOPBACK) -> int:
    """A port on `host` that nothing listens on right now, chosen by the kernel. Another program may
    take it before it is used, so it is for programs started next, on a machine shared with others."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def is_port_free(port: int, host: str = "0.0.0.0") -> bool:
    """Whether a server could listen on `port` now (on every interface by default): nothing listens
    there. A port whose old connections linger in TIME_WAIT counts as free, as servers set SO_REUSEADDR."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def answers_200(url: str, timeout: float = 1.0) -> bool:
    """Whether a GET of `url` answers 200 within `timeout` seconds."""
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (OSError, http.client.HTTPException):
        return False


def term_with_parent() -> None:
    """`preexec_fn` for a child: the kernel sends it SIGTERM when the thread that started it ends (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@dataclass
class Program:
    """A program run as a child process: its command, where it answers ready, its ports and output.

    `env` is added to this process's environment. Output goes to `log_path` (or is dropped) unless
    `launch` is given a stream. `stop_with_parent`: the kernel stops the program if the thread that
    launched it ends first, even by SIGKILL; only for programs launched from the main thread.
    """

    name: str
    argv: Sequence[str]
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)
    stop_with_parent: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of its HTTP port."""
        return f"http://{LOOPBACK}:{self.ports['http']}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was not launched"
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self, output: int | IO[bytes] | None = None) -> Program:
        """Start the program without waiting (launch several, then `wait_ready` on each).

        `output` is where its stdout and stderr go (e.g. `subprocess.PIPE`); default its log file."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with contextlib.ExitStack() as files:
            if output is None:
                log = self.log_path
                output = files.enter_context(open(log, "wb")) if log is not None else subprocess.DEVNULL
            self.proc = subprocess.Popen(
                list(self.argv),
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=term_with_parent if self.stop_with_parent else None,
            )
        _LIVE.append(self)
        return self

    def ready(self) -> bool:
        """Whether it answers 200 at its ready URL now."""
        return answers_200(self.ready_url)

    def wait_ready(self, timeout: float = 60.0, poll_s: float = 0.1) -> None:
        """Return once it is ready; raise if it exits first or is not ready within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(poll_s)
        raise TimeoutError(
            f"{self.name} not ready at {self.ready_url} after {timeout:.0f}s:\n{self.log_tail()}"
        )

    def start(self, timeout: float = 60.0) -> Program:
        """Launch and wait until ready; a program that never gets ready is killed."""
        self.launch()
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def signal_group(self, sig: signal.Signals) -> None:
        """Send `sig` to the program's process group."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL its process group after `grace_s`; its exit code (None: never launched)."""
        stop_all([self], grace_s)
        return None if self.proc is None else self.proc.returncode

    def kill(self) -> None:
        """SIGKILL its process group now."""
        stop_all([self], grace_s=0.0, sig=signal.SIGKILL)


def start_all(programs: Sequence[Program], timeout: float = 300.0) -> None:
    """Launch every program at once, then wait for each; on failure stop them all."""
    try:
        for p in programs:
            p.launch()
        for p in programs:
            p.wait_ready(timeout)
    except BaseException:
        stop_all(programs)
        raise


def stop_all(
    programs: Iterable[Program],
    grace_s: float = 10.0,
    on_late: Callable[[Program], None] | None = None,
    sig: signal.Signals = signal.SIGTERM,
) -> None:
    """Send `sig` to every running program at once, wait up to `grace_s` in all, then SIGKILL the
    process group of each (a late one, with `on_late(program)` first; or what an exited one left)."""
    launched = [p for p in programs if p.proc is not None]
    try:
        for p in launched:
            if p.running():
                assert p.proc is not None
                p.proc.send_signal(sig)
        deadline = time.monotonic() + grace_s
        for p in launched:
            assert p.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.proc.wait(max(0.0, deadline - time.monotonic()))
            if p.running() and on_late is not None:
                on_late(p)
    finally:  # also when interrupted again while waiting
        for p in launched:
            p.signal_group(signal.SIGKILL)
            assert p.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.proc.wait(5)
            if p in _LIVE:
                _LIVE.remove(p)


atexit.register(lambda: stop_all(list(_LIVE)))
