"""The benchmarked programs as subprocesses on 127.0.0.1, and their CPU time and peak memory from /proc.

Every started program is tracked until it is stopped: `stop_all` sends SIGTERM to all at once and
SIGKILLs each one's process group after `GRACE_S`; an exit hook stops whatever is still tracked, and
each program gets SIGTERM from the kernel if the benchmark itself dies without cleaning up (SIGKILL).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")
GRACE_S = 10.0
_LIVE: list[Proc] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def term_with_parent() -> None:
    """In the child before exec: the kernel sends SIGTERM when the benchmark process dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Proc:
    name: str
    argv: list[str]
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, log_dir: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", **self.env}
        with open(log_dir / f"{self.name}.log", "wb") as log:
            self.proc = subprocess.Popen(
                self.argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=term_with_parent,
            )  # fmt: skip
        _LIVE.append(self)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} (see its log)")
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f} s")

    def signal_group(self, sig: signal.Signals) -> None:
        """Send `sig` to the program's process group (it leads its own session)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)


def predictor(kind: str, name: str, model_flags: list[str], extra: list[str]) -> Proc:
    p = Proc(name, [], f"/v2/models/clip-{kind}/ready")
    p.argv = [
        sys.executable, "-m", f"predictors.{kind}", *model_flags,
        "--http_port", str(p.port), "--grpc_port", str(free_port()), *extra,
    ]  # fmt: skip
    return p


def gateway(name: str, image: Proc, text: Proc, cache: bool, text_batching: bool = True) -> Proc:
    p = Proc(name, [sys.executable, "-m", "gateway"], "/healthz")
    p.env = {
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(p.port),
        "IMAGE_PREDICTOR_URL": image.url,
        "TEXT_PREDICTOR_URL": text.url,
        "PREDICTOR_TIMEOUT_S": "300",  # a full queue of CPU batches is slow, not broken
        "GATEWAY_TEXT_CACHE_SIZE": "4096" if cache else "0",
        "GATEWAY_TEXT_BATCH_WAIT_MS": "250" if text_batching else "0",
    }
    return p


def start_all(procs: list[Proc], log_dir: Path, timeout: float = 300.0) -> None:
    """Start every program at once and wait for each; on failure stop them all."""
    try:
        for p in procs:
            p.start(log_dir)
        for p in procs:
            p.wait_ready(timeout)
    except BaseException:
        stop_all(procs)
        raise


def stop_all(procs: list[Proc], grace_s: float = GRACE_S) -> None:
    """SIGTERM every program at once, SIGKILL the groups of those still running after `grace_s`."""
    running = [p for p in procs if p.proc is not None]
    try:
        for p in running:
            if p.proc is not None and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for p in running:
            assert p.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.proc.wait(max(0.0, deadline - time.monotonic()))
    finally:  # also when interrupted again while waiting
        for p in running:
            p.signal_group(signal.SIGKILL)  # the leader if late, and anything it left behind
            assert p.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.proc.wait(5)
            if p in _LIVE:
                _LIVE.remove(p)


atexit.register(lambda: stop_all(list(_LIVE)))
