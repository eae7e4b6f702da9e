"""Which machine a result came from: CPU model and vector extensions, cores, versions, chosen engines.

Recorded in every result file so that numbers from different machines are never confused: the same
kind of cloud machine may or may not have AVX-512, and the engines' speed depends on it."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import urllib.request
from importlib import metadata
from pathlib import Path
from typing import Any

# The extensions the engines' kernels depend on (AVX-512 and AMX are absent on many cloud CPUs).
VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
PACKAGES = {
    "torch": "torch",
    "onnxruntime": "onnxruntime",
    "openvino": "openvino",
    "open_clip": "open_clip_torch",
}
# What the predictors' config says about the path they serve with (the engines branch adds the first).
CHOICE_PARAMETERS = (
    "engine",
    "cpu_kernels",
    "precision",
    "engine_trial",
    "device",
    "torch_threads",
    "forward_workers",
)


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model name, vendor, family/model numbers and which of `VECTOR_FLAGS` the first processor has."""
    first = text.strip().split("\n\n", 1)[0]
    fields = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in first.splitlines())}
    flags = set(fields.get("flags", "").split())
    return {
        "model_name": fields.get("model name") or platform.processor() or "unknown",
        "vendor": fields.get("vendor_id"),
        "family": fields.get("cpu family"),
        "model": fields.get("model"),
        "flags": {f: f in flags for f in VECTOR_FLAGS},
    }


def versions() -> dict[str, str | None]:
    """Installed versions of torch, the engines and open_clip (None: not installed)."""
    out: dict[str, str | None] = {}
    for name, dist in PACKAGES.items():
        try:
            out[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _gpus() -> list[str]:
    if shutil.which("nvidia-smi") is None:
        return []
    done = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                          text=True, timeout=30, check=False)  # fmt: skip
    return [line.strip() for line in done.stdout.splitlines() if line.strip()] if done.returncode == 0 else []


def block(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """This machine, now: what a result file records."""
    return {
        "cpu": parse_cpuinfo(cpuinfo.read_text() if cpuinfo.is_file() else ""),
        "cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "gpus": _gpus(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions(),
        "load_avg_at_start": [round(x, 1) for x in os.getloadavg()],
    }


def describe(machine: dict[str, Any] | str) -> str:
    """One line naming the machine (an older result's plain text as it is)."""
    if isinstance(machine, str):
        return machine
    cpu = machine["cpu"]
    numbers = f" (family {cpu['family']} model {cpu['model']})" if cpu.get("family") else ""
    has = [f for f, on in cpu["flags"].items() if on]
    lacks = [f for f, on in cpu["flags"].items() if not on]
    flags = ", ".join(has) or "none of " + "/".join(VECTOR_FLAGS)
    flags += f"; no {', '.join(lacks)}" if has and lacks else ""
    gpus = f", GPU {', '.join(machine['gpus'])}" if machine.get("gpus") else ""
    libs = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    load = ", ".join(str(x) for x in machine["load_avg_at_start"])
    return (
        f"{machine['cpus']} CPUs {cpu['model_name']}{numbers} [{flags}]{gpus}; {machine['os']}; {libs}; "
        f"load avg at start {load}"
    )


def short(machine: dict[str, Any] | str) -> str:
    """The CPU and its widest vector extension, for a plot's title."""
    if isinstance(machine, str):
        return machine
    cpu = machine["cpu"]
    widest = next(
        (f for f in ("amx_tile", "avx512_bf16", "avx512f", "avx2") if cpu["flags"].get(f)), "no AVX2"
    )
    gpus = f", {', '.join(machine['gpus'])}" if machine.get("gpus") else ""
    return f"{machine['cpus']} CPUs {cpu['model_name']}, {widest}{gpus}"


def service_choice(predictor_url: str, model_name: str) -> dict[str, Any]:
    """The engine, kernels and precision a running predictor chose (its config's parameters); only the
    parameters it reports, and {} when it cannot be read."""
    try:
        with urllib.request.urlopen(f"{predictor_url}/v2/models/{model_name}/config", timeout=10) as r:
            parameters = json.loads(r.read()).get("parameters", {})
    except (OSError, ValueError):
        return {}
    return {k: parameters[k] for k in CHOICE_PARAMETERS if k in parameters}


def describe_choice(choice: dict[str, Any]) -> str:
    """e.g. "engine onnxruntime, cpu_kernels torch, precision float32" ('not reported' when empty)."""
    shown = [f"{k} {v}" for k, v in choice.items() if k != "engine_trial"]
    return ", ".join(shown) or "not reported"
