"""Keep freed memory in the process instead of handing it back to the kernel after every pass.

glibc serves large blocks (an activation of a batched forward pass is megabytes) with mmap and returns
them on free, and trims the heap top as soon as it exceeds 128 KiB; the next pass then page-faults the
same memory back in, zero-filled, which costs system time on every pass. Raising both thresholds keeps
those pages in the process (tests/predictors/test_memory.py shows the faults go away; the throughput
measured with it is in bench/results/predictor-measurements.md). The cost: the resident size stays at
its peak, which a model server reaches with its first full batch anyway. Loading frees more than the
passes will ask back (the engines a trial dropped, the conversion to ONNX): `release_freed_memory`
hands that to the kernel once, when the model is loaded.

Both are rules, not measurements on the machine: they hold for any CPU, with glibc (elsewhere nothing
is changed).
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


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_freed_memory() -> bool:
    """Hand the memory freed so far back to the kernel (glibc's `malloc_trim`), once: after loading,
    which frees more than the passes will ever use again (the engines that lost the trial)."""
    libc = _libc()
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return bool(trim(0))


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; False where the C library is not glibc."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        logger.info("not glibc: malloc thresholds left as they are")
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
