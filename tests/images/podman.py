"""The project's images run with podman the way the Helm chart runs its pods.

Each container gets the pod's restrictions: read-only root filesystem, uid 10001, every capability
dropped, no-new-privileges, tmpfs for the writable cache and /tmp, and the model (when one is served)
mounted read-only at /mnt/models, where KServe's storage initializer puts it. Containers share the
host network and listen on free ports, so the tests reach them on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devtools.procs import ROOT

PREDICTOR_IMAGE = os.environ.get("PREDICTOR_IMAGE", "clip-similarity/predictor:dev")
PREDICTOR_CPU_IMAGE = os.environ.get("PREDICTOR_CPU_IMAGE", "clip-similarity/predictor-cpu:dev")
GATEWAY_IMAGE = os.environ.get("GATEWAY_IMAGE", "clip-similarity/gateway:dev")
DEMO_MODEL = ROOT / "models" / "clip-shapes"
# The pod's terminationGracePeriodSeconds (Kubernetes' default, and the chart's).
GRACE_S = 30
# The chart gives a predictor half of what is left of its grace after 5 s, for each of REST and gRPC.
PREDICTOR_SHUTDOWN_GRACE_S = (GRACE_S - 5) // 2

POD_FLAGS = [
    "--network=host",
    "--read-only",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--user=10001:10001",
    "--tmpfs=/tmp:rw,mode=1777",
]


def podman(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one podman command; a failure raises with its output when `check`."""
    exe = shutil.which("podman")
    if exe is None:
        raise RuntimeError("podman is not installed: run scripts/podman-setup.sh (as root), then make images")
    result = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def require_image(image: str) -> None:
    """Fail (never skip) when an image under test has not been built."""
    if podman("image", "exists", image, check=False).returncode != 0:
        raise RuntimeError(f"image {image} is missing: build it with `make images`")


@dataclass
class Container:
    """One detached container, named uniquely for this test run."""

    name: str
    image: str
    args: list[str]
    ready_url: str
    env: dict[str, str] = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL of its HTTP port on the host network."""
        return f"http://127.0.0.1:{self.ports['http']}"

    def start(self) -> Container:
        """`podman run -d` with the pod's restrictions (does not wait for readiness)."""
        flags = [*POD_FLAGS, *(f"--tmpfs={t}:rw,mode=1777" for t in self.tmpfs)]
        flags += [f"--volume={v}" for v in self.volumes]
        flags += [f"--env={k}={v}" for k, v in self.env.items()]
        podman("run", "--detach", f"--name={self.name}", *flags, self.image, *self.args)
        return self

    def state(self) -> str:
        return podman("inspect", "--format", "{{.State.Status}}", self.name).stdout.strip()

    def exit_code(self) -> int:
        return int(podman("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout)

    def logs(self, lines: int = 40) -> str:
        result = podman("logs", "--tail", str(lines), self.name, check=False)
        return result.stdout + result.stderr

    def wait_ready(self, timeout: float = 300.0) -> None:
        """Poll the ready URL until 200; a container that exits or never gets ready fails with its log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.state() not in ("running", "created", "configured"):
                raise RuntimeError(f"{self.name} stopped ({self.exit_code()}):\n{self.logs()}")
            try:
                if httpx.get(self.ready_url, timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"{self.name} not ready at {self.ready_url} after {timeout}s:\n{self.logs()}")

    def stop(self, grace_s: int = GRACE_S) -> int:
        """SIGTERM, then SIGKILL after `grace_s` (as the kubelet does); returns the exit code.

        0 means the program ended by itself within its grace; a SIGKILL shows as 137.
        """
        podman("stop", f"--time={grace_s}", self.name, timeout=grace_s + 60)
        return self.exit_code()

    def remove(self) -> None:
        podman("rm", "--force", "--time=0", self.name, check=False)


def image_size(image: str) -> int:
    """The image's size in bytes, as `podman images` reports it."""
    return int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout)


def run_once(image: str, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run `argv` in a throwaway container of `image` (no network, read-only, pod restrictions)."""
    flags = [f for f in POD_FLAGS if f != "--network=host"]
    entrypoint = f"--entrypoint={argv[0]}"
    return podman("run", "--rm", "--network=none", *flags, entrypoint, image, *argv[1:], check=False)


def model_mount(model_dir: Path = DEMO_MODEL) -> str:
    """The model directory mounted read-only where KServe's storage initializer leaves it."""
    return f"{model_dir}:/mnt/models:ro"


@contextmanager
def running(pods: dict[str, Container]) -> Iterator[dict[str, Container]]:
    """`pods`, started together and each ready; removed afterwards."""
    try:
        for pod in pods.values():
            pod.start()
        for pod in pods.values():
            pod.wait_ready()
        yield pods
    finally:
        for pod in pods.values():
            pod.remove()


def distributions(image: str) -> set[str]:
    """The names of the Python distributions installed in `image`, lower-cased."""
    listing = "import importlib.metadata as m; print(*(d.metadata['Name'] for d in m.distributions()))"
    result = run_once(image, "python", "-c", listing)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.lower().split())
