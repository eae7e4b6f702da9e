"""How many CPUs this process may use: the cores it may run on, capped by its container's CPU limit.

A Kubernetes CPU limit is a CFS quota, not a set of cores: a pod limited to 1 CPU on a 64-core node
still sees 64 cores in its affinity mask, and 64 busy threads would be throttled to one core's worth
of time. The quota is read from the process's own cgroup and every ancestor (the tightest wins):
cgroup v2 `cpu.max` ("QUOTA PERIOD" or "max PERIOD"), cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`
(quota -1: none).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

PROC_SELF_CGROUP = Path("/proc/self/cgroup")
CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


@dataclass(frozen=True)
class CpuQuota:
    """A CPU limit: `cpus` CPUs' worth of time (may be fractional), and the file it was read from."""

    cpus: float
    source: str


@dataclass(frozen=True)
class CpuBudget:
    """Whole CPUs this process may use, and what set the number."""

    count: int
    source: str


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _ints(*texts: str) -> list[int] | None:
    try:
        return [int(t) for t in texts]
    except ValueError:
        return None


def _v2_quota(directory: Path) -> CpuQuota | None:
    parts = (_read(directory / "cpu.max") or "").split()
    numbers = _ints(*parts) if len(parts) == 2 and parts[0] != "max" else None
    if numbers is None or numbers[0] <= 0 or numbers[1] <= 0:
        return None
    quota, period = numbers
    return CpuQuota(quota / period, f"cgroup v2 {directory / 'cpu.max'} ({quota} {period})")


def _v1_quota(directory: Path) -> CpuQuota | None:
    quota_text, period_text = _read(directory / "cpu.cfs_quota_us"), _read(directory / "cpu.cfs_period_us")
    numbers = _ints(quota_text, period_text) if quota_text and period_text else None
    if numbers is None or numbers[0] <= 0 or numbers[1] <= 0:  # -1: no quota
        return None
    quota, period = numbers
    return CpuQuota(quota / period, f"cgroup v1 {directory / 'cpu.cfs_quota_us'} ({quota} / {period})")


def _up_to(base: Path, relative: str) -> list[Path]:
    """`base/relative` and each of its parents down to `base` itself."""
    directory = base / relative.lstrip("/")
    chain = [directory, *directory.parents]
    return chain[: chain.index(base) + 1] if base in chain else [base]


def cgroup_cpu_quota(proc_self_cgroup: Path = PROC_SELF_CGROUP, root: Path = CGROUP_ROOT) -> CpuQuota | None:
    """The tightest CPU quota over this process's cgroups (v2 and v1), or None when there is none.

    In a container with its own cgroup namespace the process's cgroup is the mount's root; without one
    `/proc/self/cgroup` names the host's path, which the container does not have: the root is checked too.
    """
    text = _read(proc_self_cgroup)
    if text is None:
        return None
    found: list[CpuQuota] = []
    for line in text.splitlines():
        hierarchy, _, rest = line.partition(":")
        controllers, _, relative = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            found += [q for d in _up_to(root, relative) if (q := _v2_quota(d)) is not None]
        elif "cpu" in controllers.split(","):
            for name in V1_CPU_DIRS:
                found += [q for d in _up_to(root / name, relative) if (q := _v1_quota(d)) is not None]
    return min(found, key=lambda q: q.cpus, default=None)


def affinity_cpus() -> int:
    """Cores this process may be scheduled on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_budget(affinity: int, quota: CpuQuota | None) -> CpuBudget:
    """min(affinity cores, quota rounded up to whole CPUs), naming whichever is the smaller."""
    if quota is not None and math.ceil(quota.cpus) < affinity:
        return CpuBudget(max(1, math.ceil(quota.cpus)), f"CPU limit {quota.cpus:g} from {quota.source}")
    return CpuBudget(affinity, f"CPU affinity ({affinity} cores)")


def available_cpus() -> CpuBudget:
    """This process's `CpuBudget`, read now."""
    return cpu_budget(affinity_cpus(), cgroup_cpu_quota())
