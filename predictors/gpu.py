"""CUDA checks: why `--device cuda` cannot run here, in one sentence, and what the GPU is when it can.

Torch reports an unusable CUDA only as "not available" (or a warning at first use); a GPU node with a
driver older than the CUDA that torch was built for then serves silently on its CPU. `cuda_problem()`
names the mismatch instead: torch's CUDA build (`torch.version.cuda`), the CUDA version the installed
driver supports (read from the driver library itself, `cuDriverGetVersion`), the driver floor of that
build, and the image build argument that installs another torch variant. The driver's release number
(e.g. 580.65) comes from NVML when its library is present.
"""

from __future__ import annotations

import ctypes
import warnings

import torch

# Oldest NVIDIA driver branch for a torch built for each CUDA major version (CUDA minor version
# compatibility: any driver of that branch or later runs every minor release of that CUDA).
DRIVER_FLOOR = {13: "R580", 12: "R525", 11: "R450"}
BUILD_ARG = "TORCH_INDEX_URL"
OLDER_CUDA_INDEX = "https://download.pytorch.org/whl/cu126"


def _version(code: int) -> str:
    return f"{code // 1000}.{code % 1000 // 10}"


def driver_cuda_version() -> str | None:
    """The CUDA version the installed NVIDIA driver supports (e.g. "12.4"), or None without a driver."""
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
        version = ctypes.c_int()
        if libcuda.cuDriverGetVersion(ctypes.byref(version)) != 0:
            return None
    except (OSError, AttributeError):
        return None
    return _version(version.value)


def driver_release() -> str | None:
    """The NVIDIA driver's release (e.g. "580.65.06") from NVML, or None where NVML is not present."""
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        if nvml.nvmlInit_v2() != 0:
            return None
        buffer = ctypes.create_string_buffer(96)
        ok = nvml.nvmlSystemGetDriverVersion(buffer, len(buffer)) == 0
        nvml.nvmlShutdown()
    except (OSError, AttributeError):
        return None
    return buffer.value.decode() if ok else None


def _torch_reason() -> str | None:
    """Why torch cannot use CUDA, in torch's words, or None when it can."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    try:
        torch.cuda.init()
    except Exception as e:  # torch raises RuntimeError or AssertionError, with the reason as text
        return str(e)
    if available:
        return None
    return "; ".join(str(w.message) for w in caught) or "torch sees no CUDA device"


def cuda_problem() -> str | None:
    """One sentence on why `--device cuda` cannot run here (None when it can)."""
    reason = _torch_reason()
    if reason is None:
        return None
    built = torch.version.cuda
    if built is None:
        needs = f"this torch {torch.__version__} is a CPU-only build"
    else:
        floor = DRIVER_FLOOR.get(int(built.split(".")[0]), "a driver")
        needs = (
            f"this torch {torch.__version__} is built for CUDA {built} and needs an NVIDIA driver {floor}+"
        )
    driver = driver_cuda_version()
    has = f"the driver here supports CUDA {driver}" if driver else "no NVIDIA driver was found here"
    sentence = (
        f"--device cuda but CUDA is not usable ({reason}): {needs}; {has}. Run on a node with that "
        f"driver, or build the predictor image for another torch variant with --build-arg "
        f"{BUILD_ARG}=... (e.g. {OLDER_CUDA_INDEX}, a CUDA 12.6 build for R525+ drivers)"
    )
    return " ".join(sentence.split())  # torch's messages span lines; this is one log line


def describe_cuda(device: torch.device) -> str:
    """The GPU behind `device`: name, compute capability, torch's CUDA build and the driver."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return (
        f"GPU {index}: {torch.cuda.get_device_name(index)}, compute capability {major}.{minor}, "
        f"torch {torch.__version__} built for CUDA {torch.version.cuda}, NVIDIA driver "
        f"{driver_release() or 'release unknown'} supporting CUDA {driver_cuda_version() or 'unknown'}"
    )
