"""The thread count follows a container's CPU limit (cgroup v2 or v1 quota), read from fake cgroup trees."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from predictors.cpus import CpuBudget, CpuQuota, cgroup_cpu_quota, cpu_budget
from predictors.threads import ThreadCount, ThreadSplit, thread_count


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def v2_tree(tmp_path: Path, cpu_max: dict[str, str], own: str = "/") -> tuple[Path, Path]:
    """(/proc/self/cgroup, cgroup root) of a pure cgroup v2 host; `cpu_max` maps a cgroup to its file."""
    root = tmp_path / "cgroup"
    for group, text in cpu_max.items():
        write(root / group.lstrip("/") / "cpu.max", text)
    write(tmp_path / "proc-self-cgroup", f"0::{own}\n")
    return tmp_path / "proc-self-cgroup", root


def test_v2_limit_of_the_container(tmp_path: Path) -> None:
    proc, root = v2_tree(tmp_path, {"/": "150000 100000"})
    quota = cgroup_cpu_quota(proc, root)
    assert quota is not None and quota.cpus == 1.5 and "cpu.max" in quota.source


def test_v2_no_limit(tmp_path: Path) -> None:
    proc, root = v2_tree(tmp_path, {"/": "max 100000"})
    assert cgroup_cpu_quota(proc, root) is None


def test_v2_the_tightest_ancestor_wins(tmp_path: Path) -> None:
    proc, root = v2_tree(
        tmp_path,
        {"/kubepods": "400000 100000", "/kubepods/pod1": "200000 100000", "/kubepods/pod1/c1": "max 100000"},
        own="/kubepods/pod1/c1",
    )
    quota = cgroup_cpu_quota(proc, root)
    assert quota is not None and quota.cpus == 2.0


def test_v1_quota_and_period(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "50000\n")
    write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    # Without a cgroup namespace the process's path is the host's, absent in the container's mount.
    write(tmp_path / "proc-self-cgroup", "4:memory:/kubepods/x\n3:cpu,cpuacct:/kubepods/x\n0::/\n")
    quota = cgroup_cpu_quota(tmp_path / "proc-self-cgroup", root)
    assert quota is not None and quota.cpus == 0.5 and "cfs_quota_us" in quota.source


def test_v1_no_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu" / "cpu.cfs_quota_us", "-1")
    write(root / "cpu" / "cpu.cfs_period_us", "100000")
    write(tmp_path / "proc-self-cgroup", "2:cpu:/\n")
    assert cgroup_cpu_quota(tmp_path / "proc-self-cgroup", root) is None


@pytest.mark.parametrize("garbage", ["", "lots 100000", "100000", "0 100000"])
def test_unreadable_files_mean_no_limit(tmp_path: Path, garbage: str) -> None:
    proc, root = v2_tree(tmp_path, {"/": garbage})
    assert cgroup_cpu_quota(proc, root) is None
    assert cgroup_cpu_quota(tmp_path / "missing", root) is None


@pytest.mark.parametrize(
    ("affinity", "cpus", "count", "limited"),
    [(16, 1.0, 1, True), (16, 1.5, 2, True), (16, 0.2, 1, True), (2, 4.0, 2, False), (4, None, 4, False)],
)
def test_budget_is_the_smaller_of_cores_and_the_limit_rounded_up(
    affinity: int, cpus: float | None, count: int, limited: bool
) -> None:
    quota = None if cpus is None else CpuQuota(cpus, "cpu.max")
    budget = cpu_budget(affinity, quota)
    assert budget.count == count
    assert ("CPU limit" in budget.source) == limited and ("affinity" in budget.source) != limited


def test_threads_follow_a_cpu_limit_below_torch_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch, "get_num_threads", lambda: 16)  # a big node
    limited = CpuBudget(1, "CPU limit 1 from cgroup v2 cpu.max")
    assert thread_count(0, limited) == ThreadCount(1, limited.source)
    unlimited = thread_count(0, CpuBudget(64, "CPU affinity (64 cores)"))
    assert unlimited.count == 16 and "torch's default" in unlimited.source
    assert thread_count(3, limited) == ThreadCount(3, "--num_threads")  # the user's count is kept
    split = ThreadSplit.of(0, 0, torch.device("cpu"), thread_count(0, limited))
    assert (split.workers, split.total, split.probe, split.source) == (1, 1, False, limited.source)
