"""Freed blocks stay in the process: a forward pass's worth of activations stops page-faulting."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from devtools.procs import ROOT

pytestmark = pytest.mark.usefixtures("starts_processes")  # its tests start programs

# Four 8 MiB blocks alive at once, then freed, five times a round: the shape of a batched pass's
# activations. Prints the minor page faults of each of 3 rounds.
PASSES = """
import json, resource, sys
import numpy as np
from predictors.memory import keep_freed_memory
kept = keep_freed_memory() if sys.argv[1] == "kept" else None
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        live = [np.ones(8 << 20, dtype=np.uint8) for _ in range(4)]
        del live
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"kept": kept, "faults": faults}))
"""
PAGES_A_PASS = 4 * (8 << 20) // 4096


def run(mode: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", PASSES, mode], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_passes_reuse_freed_memory_instead_of_faulting_it_back() -> None:
    default, kept = run("default"), run("kept")
    assert kept["kept"] is True  # this machine's C library is glibc
    # glibc's default trims the freed heap top, so every pass faults most of its pages back in.
    assert min(default["faults"][1:]) > PAGES_A_PASS  # type: ignore[index]
    assert max(kept["faults"][1:]) < PAGES_A_PASS // 10  # type: ignore[index]
