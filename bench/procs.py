"""The benchmarked programs, started and stopped by the project's supervisor (devtools/procs.py), and
their CPU time and peak memory from /proc.

Every program gets SIGTERM from the kernel if the benchmark itself dies without cleaning up (SIGKILL);
the supervisor stops all of them on an interrupt and at exit.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from devtools import procs
from devtools.procs import Program, pick_free_port

TICKS = os.sysconf("SC_CLK_TCK")
GRACE_S = 10.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _program(name: str, argv: list[str], ready_path: str, port: int, env: dict[str, str]) -> Program:
    return Program(
        name, argv, f"http://127.0.0.1:{port}{ready_path}", env={"HF_HUB_OFFLINE": "1", **env},
        ports={"http": port}, stop_with_parent=True,
    )  # fmt: skip


def predictor(kind: str, name: str, model_flags: list[str], extra: list[str]) -> Program:
    port = pick_free_port()
    argv = [
        sys.executable, "-m", f"predictors.{kind}", *model_flags,
        "--http_port", str(port), "--grpc_port", str(pick_free_port()), *extra,
    ]  # fmt: skip
    return _program(name, argv, f"/v2/models/clip-{kind}/ready", port, {})


def gateway(name: str, image: Program, text: Program, cache: bool, batching: bool = True) -> Program:
    """A gateway on `image` and `text`; without `batching`, each request's images and texts go to the
    predictors at once and alone (no shared calls)."""
    port = pick_free_port()
    env = {
        "GATEWAY_HOST": "127.0.0.1",
        "GATEWAY_PORT": str(port),
        "IMAGE_PREDICTOR_URL": image.url,
        "TEXT_PREDICTOR_URL": text.url,
        "PREDICTOR_TIMEOUT_S": "300",  # a full queue of CPU batches is slow, not broken
        "GATEWAY_TEXT_CACHE_SIZE": "4096" if cache else "0",
        "GATEWAY_TEXT_BATCH_WAIT_MS": "250" if batching else "0",
        "GATEWAY_IMAGE_CALLS_IN_FLIGHT": "2" if batching else "0",
    }
    return _program(name, [sys.executable, "-m", "gateway"], "/healthz", port, env)


def start_all(programs: Sequence[Program], log_dir: Path, timeout: float = 300.0) -> None:
    """Start every program at once, each logging to `log_dir/<name>.log`, and wait for each; on failure
    stop them all."""
    for p in programs:
        p.log_path = log_dir / f"{p.name}.log"
    procs.start_all(programs, timeout)


def stop_all(programs: Sequence[Program], grace_s: float = GRACE_S) -> None:
    """SIGTERM every program at once, SIGKILL the groups of those still running after `grace_s`."""
    procs.stop_all(programs, grace_s)
