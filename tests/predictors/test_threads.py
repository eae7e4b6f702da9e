"""Forward workers and torch threads follow the device, and a pass alone keeps every thread only
when that is faster for the model."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch

from predictors.threads import ThreadSplit


@pytest.mark.parametrize(
    ("num_threads", "forward_workers", "device", "expected"),
    [
        (2, 0, "cpu", ThreadSplit(workers=2, total=2, shared=1)),  # 2 cores
        (8, 0, "cpu", ThreadSplit(workers=2, total=8, shared=4)),
        (1, 0, "cpu", ThreadSplit(workers=1, total=1, shared=1)),  # no thread to share
        (8, 0, "cuda", ThreadSplit(workers=1, total=8, shared=8)),  # one pass feeds a GPU
        (3, 3, "cuda", ThreadSplit(workers=3, total=3, shared=1)),  # an explicit count is kept
    ],
)
def test_forward_workers_follow_the_device(
    num_threads: int, forward_workers: int, device: str, expected: ThreadSplit
) -> None:
    assert ThreadSplit.of(num_threads, forward_workers, torch.device(device)) == expected


def test_the_default_thread_count_is_probed_on_a_cpu_only() -> None:
    cores = torch.get_num_threads()
    assert ThreadSplit.of(0, 0, torch.device("cpu")).probe == (cores > 1)
    assert not ThreadSplit.of(0, 0, torch.device("cuda")).probe
    assert not ThreadSplit.of(2, 0, torch.device("cpu")).probe  # the user's count is kept as given


def pass_taking(ms_by_threads: dict[int, float]) -> tuple[list[int], Callable[[], None]]:
    """A fake forward pass that sleeps as long as `ms_by_threads` says for the current thread count."""
    seen: list[int] = []

    def one_pass() -> None:
        seen.append(torch.get_num_threads())
        time.sleep(ms_by_threads[torch.get_num_threads()] / 1000)

    return seen, one_pass


def test_a_model_with_long_passes_keeps_every_thread() -> None:
    split = ThreadSplit(workers=2, total=4, shared=2, probe=True)
    seen, one_pass = pass_taking({1: 40, 4: 10})
    assert split.one_thread_if_short(one_pass) == split
    assert set(seen) == {1}  # timed on one thread


def test_a_model_with_short_passes_runs_on_one_thread() -> None:
    split = ThreadSplit(workers=2, total=4, shared=2, probe=True)
    before = torch.get_num_threads()
    _, one_pass = pass_taking({1: 3, 4: 1})  # faster alone on 4, but too short to gain beside other work
    assert split.one_thread_if_short(one_pass) == ThreadSplit(workers=2, total=1, shared=1)
    assert torch.get_num_threads() == before  # the probe leaves the loading thread as it was


def test_a_pass_slowed_once_by_a_neighbour_still_counts_as_short() -> None:
    split = ThreadSplit(workers=2, total=4, shared=2, probe=True)
    times = iter([80.0, 3.0, 3.0])  # another process loading during the first pass

    def one_pass() -> None:
        time.sleep(next(times) / 1000)

    assert split.one_thread_if_short(one_pass).total == 1


def test_a_count_the_user_gave_is_not_probed() -> None:
    split = ThreadSplit(workers=2, total=4, shared=2, probe=False)
    seen, one_pass = pass_taking({1: 10, 4: 30})
    assert split.one_thread_if_short(one_pass) == split
    assert seen == []
