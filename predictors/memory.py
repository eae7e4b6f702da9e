"""Keep freed memory in the process instead of handing it back to the kernel after every pass.

glibc serves large blocks (an activation of a batched forward pass is megabytes) with mmap and returns
them on free, and trims the heap top as soon as it exceeds 128 KiB; the next pass then page-faults the
same memory back in, zero-filled, which costs system time on every pass. Raising both thresholds keeps
those pages in the process (tests/predictors/test_memory.py shows the faults go away; the throughput
measured with it is in bench/results/predictor-measurements.md). The cost: the resident size stays at
its peak, which a model server reaches with its first full batch anyway.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

logger = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's upper bound on 64-bit: larger blocks are still mmapped
TRIM_THRESHOLD = 1024 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; False where the C library is not glibc."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        logger.info("not glibc: malloc thresholds left as they are")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
