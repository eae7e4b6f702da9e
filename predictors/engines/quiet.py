"""Whether other processes take the CPUs a trial times its passes on, and waiting until they leave.

A step's time ranks the engines fairly only when nothing else runs on the CPUs its passes use. When
several predictors load at once on the same cores (a scale-up onto one node, `make run`'s two
predictors, the bench's services), their trials overlap; one busy process beside a pass that uses
every core slows it several times over, by an amount that differs from engine to engine (a pool's
threads wait on the slowest one), so the ranking under contention is not the ranking in service.

`Cpus` reads from /proc/stat how long the CPUs this process may run on were busy (the hypervisor's
steal included) and from the process's own clock how much of that was its own; the rest went to other
processes. They `intrude` on a span when they took more than the CPUs the passes leave free (those of
the affinity mask beyond `needed`), by more than MARGIN of a CPU plus the counters' resolution.

`Quiet` applies that to a trial: a round that others intruded on is timed again once they leave, and
before that it waits, sampling SENSE_S at a time after a random pause of up to PAUSE_S, so that
predictors loading together time their rounds one after another rather than at once. Waiting and
timing again stop after `--trial_wait_s` in all: on a node that stays busy the trial keeps what it timed, and
says so. Where /proc/stat cannot be read, nothing is checked.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

SENSE_S = 0.25
PAUSE_S = 0.5
MARGIN = 0.1  # of one CPU, on average over the span
PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class Reading:
    """Seconds at one moment: the clock, the CPUs' busy time, this process's CPU time."""

    wall: float
    busy: float
    own: float


class Cpus:
    """The CPUs this process may run on, `needed` of them by the passes timed."""

    def __init__(self, needed: int, stat: Path = PROC_STAT) -> None:
        self.ids = {f"cpu{i}" for i in os.sched_getaffinity(0)}
        self.stat = stat
        self.tick = 1 / os.sysconf("SC_CLK_TCK")
        self.free = max(0, len(self.ids) - needed)

    def read(self) -> Reading:
        busy = 0
        with self.stat.open() as lines:
            for line in lines:
                name, *fields = line.split()
                if name in self.ids:  # user nice system idle iowait irq softirq steal
                    counts = [int(f) for f in fields[:8]]
                    busy += sum(counts) - counts[3] - counts[4]
        return Reading(time.monotonic(), busy * self.tick, time.process_time())

    def others(self, start: Reading, end: Reading) -> float:
        """CPU seconds that other processes took on these CPUs from `start` to `end`."""
        return (end.busy - start.busy) - (end.own - start.own)

    def intruded(self, start: Reading, end: Reading) -> bool:
        """Whether others took more than the free CPUs from `start` to `end` (beyond the margin)."""
        wall = end.wall - start.wall
        resolution = 2 * self.tick * len(self.ids)
        return self.others(start, end) > (self.free + MARGIN) * wall + resolution


class Quiet:
    """Times a trial's rounds only while other processes leave its CPUs alone, waiting `budget_s` at most.

    `waited_s`: seconds spent waiting and on rounds timed again; `redone`: rounds timed again;
    `busy`: the budget ran out with others still intruding, so some times are theirs too.
    """

    def __init__(self, cpus: Cpus | None, budget_s: float = 0.0) -> None:
        self.cpus = cpus
        self.left = budget_s
        self.waited_s = 0.0
        self.redone = 0
        self.busy = False

    @classmethod
    def here(cls, needed: int, budget_s: float) -> Quiet:
        """A check of the CPUs this process may run on, or none where /proc/stat cannot be read."""
        try:
            cpus = Cpus(needed)
            cpus.read()
        except (OSError, ValueError, AttributeError):
            return cls(None)
        return cls(cpus, budget_s)

    def start(self) -> Reading | None:
        return self.cpus.read() if self.cpus else None

    def again(self, start: Reading | None) -> bool:
        """Whether to time again the round run since `start`: others intruded on it and the budget is
        not spent. Before saying so, waits until they leave."""
        redo = self.settle(start)
        self.redone += redo
        return redo

    def settle(self, start: Reading | None) -> bool:
        """Whether others intruded on what ran since `start` (passes not kept); if so, waits until
        they leave."""
        if not self._intruded(start):
            return False
        self.wait()
        return True

    def _intruded(self, start: Reading | None) -> bool:
        if self.cpus is None or start is None:
            return False
        end = self.cpus.read()
        if not self.cpus.intruded(start, end):
            return False
        if self.left <= 0:
            self.busy = True
            return False
        self._spend(end.wall - start.wall)
        return True

    def wait(self) -> None:
        """Until the CPUs are free of others for SENSE_S, after a random pause; or the budget is spent."""
        assert self.cpus is not None
        while self.left > 0:
            started = time.monotonic()
            time.sleep(random.uniform(0, PAUSE_S))
            before = self.cpus.read()
            time.sleep(SENSE_S)
            after = self.cpus.read()
            self._spend(time.monotonic() - started)
            if not self.cpus.intruded(before, after):
                return

    def _spend(self, seconds: float) -> None:
        self.left -= seconds
        self.waited_s += seconds

    def __str__(self) -> str:
        """e.g. "waited 4.1 s for other processes to leave its CPUs (timed 2 round(s) again)", or ""."""
        parts = []
        if self.waited_s:
            parts.append(f"waited {self.waited_s:.1f} s for other processes to leave its CPUs")
            parts[-1] += f" (timed {self.redone} round(s) again)" if self.redone else ""
        if self.busy:
            parts.append("other processes took its CPUs during timed rounds, so their times include theirs")
        return "; ".join(parts)
