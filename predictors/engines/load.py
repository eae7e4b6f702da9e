"""Build a tower for a choice (`build`), or choose one among the candidates by a trial (`choose`).

A candidate that cannot serve under `--engine auto` (its conversion or engine fails, or its features
are not torch's) is dropped with one warning and the others still compete; a choice the flags leave
alone (forced, or the only one) that cannot serve stops the load with one `ModelLoadError`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..loaded import LoadedModel, ModelLoadError
from ..settings import Settings
from ..threads import ThreadSplit, set_torch_threads, torch_threads
from . import trial
from .choice import Choice, candidates, installed, why_none
from .quiet import Quiet
from .tower import Tower

Builder = Callable[[Choice, LoadedModel, str, bool, ThreadSplit], Tower]

logger = logging.getLogger(__name__)


def _torch(choice: Choice, loaded: LoadedModel, kind: str, trim: bool, split: ThreadSplit) -> Tower:
    from .torch_tower import TorchTower

    return TorchTower(choice, kind, trim, split, loaded.model, loaded.device, loaded.dtype)


def _onnx(loaded: LoadedModel, kind: str, trim: bool) -> Path:
    """The tower's ONNX file: the bundle's, or the model's converted (or cached) one."""
    if loaded.bundle is not None:
        from ..bundle import tower_file

        return tower_file(loaded.bundle, kind)
    from .onnx_export import onnx_file

    return onnx_file(loaded, kind, trim)


def _onnxruntime(choice: Choice, loaded: LoadedModel, kind: str, trim: bool, split: ThreadSplit) -> Tower:
    from .ort_tower import OrtTower

    return OrtTower(choice, kind, trim, split, _onnx(loaded, kind, trim))


def _openvino(choice: Choice, loaded: LoadedModel, kind: str, trim: bool, split: ThreadSplit) -> Tower:
    from .openvino_tower import OpenVinoTower

    return OpenVinoTower(choice, kind, trim, split, _onnx(loaded, kind, trim))


def _torch_int8(choice: Choice, loaded: LoadedModel, kind: str, trim: bool, split: ThreadSplit) -> Tower:
    from ..quantize import quantize_torch
    from .torch_tower import TorchTower

    model = quantize_torch(copy.deepcopy(loaded.model))
    return TorchTower(choice, kind, trim, split, model, loaded.device, loaded.dtype)


def _onnxruntime_int8(
    choice: Choice, loaded: LoadedModel, kind: str, trim: bool, split: ThreadSplit
) -> Tower:
    from .onnx_export import int8_file
    from .ort_tower import OrtTower

    return OrtTower(choice, kind, trim, split, int8_file(loaded, kind, trim))


# (engine, precision): the function that builds such a tower; more can be added with `register`.
BUILDERS: dict[tuple[str, str], Builder] = {
    **{("torch", p): _torch for p in ("fp32", "fp16", "bf16")},
    ("onnxruntime", "fp32"): _onnxruntime,
    ("openvino", "fp32"): _openvino,
    ("torch", "int8"): _torch_int8,
    ("onnxruntime", "int8"): _onnxruntime_int8,
}


def register(engine: str, precision: str, builder: Builder) -> None:
    """Let `build` make `engine` towers at `precision` with `builder`."""
    BUILDERS[engine, precision] = builder


def build(choice: Choice, loaded: LoadedModel, kind: str, threads: ThreadSplit) -> Tower:
    """The `kind` ("image" or "text") tower of `loaded` run by `choice`, on `threads`."""
    builder = BUILDERS.get((choice.engine, choice.precision))
    if builder is None:
        raise ValueError(f"{choice} is not built in")
    return builder(choice, loaded, kind, kind == "text" and loaded.trim, threads)


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


def _why_alone(settings: Settings, device: Any, choice: Choice) -> str:
    if settings.engine != "auto":
        return f"--engine {settings.engine}" + (
            f" --cpu_kernels {settings.cpu_kernels}" if settings.cpu_kernels != "auto" else ""
        )
    if device.type != "cpu" or choice.precision != "fp32":
        return f"{device.type} {choice.precision} runs torch"
    return "the only candidate installed"


def _serving(choice: Choice, loaded: LoadedModel, kind: str, threads: ThreadSplit, how: str) -> Tower:
    """The one tower there is to serve with; ModelLoadError naming the choice if it cannot."""
    try:
        tower = build(choice, loaded, kind, threads)
        reference = _reference(loaded)
        if reference is not None and choice != Choice(reference.engine, reference.kernels, choice.precision):
            trial.Parity(build(reference, loaded, kind, threads), loaded).check(tower)
    except Exception as e:
        raise ModelLoadError(f"{choice} cannot serve the {kind} tower ({how}): {_reason(e)}") from e
    return tower


def _reference(loaded: LoadedModel) -> Choice | None:
    """What every other choice's features must equal: torch's own fp32 path; for a bundle (checked
    against torch when it was made) ONNX Runtime on its files, where installed."""
    if loaded.model is not None:
        return Choice("torch", "torch", "fp32")
    return Choice("onnxruntime", "onnxruntime", "fp32") if installed("onnxruntime") else None


def choose(
    settings: Settings, loaded: LoadedModel, kind: str, threads: ThreadSplit
) -> tuple[Tower, trial.Trial]:
    """The fastest of `candidates(settings, loaded.device)` for the `kind` tower, by a trial on
    `threads`, and the trial; the only candidate, untimed, where there is one."""
    torch_model = loaded.model is not None
    options = candidates(settings, loaded.device, torch_model)
    if not options:
        raise ModelLoadError(why_none(settings, loaded.device, torch_model))
    loading_threads = torch_threads()  # the checks' and the trial's torch passes set their own
    try:
        if len(options) == 1:
            how = _why_alone(settings, loaded.device, options[0])
            return _serving(options[0], loaded, kind, threads, how), trial.Trial(options[0], how=how)
        return _run_trial(settings, loaded, kind, threads, options)
    finally:
        if loading_threads is not None:
            set_torch_threads(loading_threads)


def _run_trial(
    settings: Settings, loaded: LoadedModel, kind: str, threads: ThreadSplit, options: list[Choice]
) -> tuple[Tower, trial.Trial]:
    started = time.monotonic()
    first = _reference(loaded) or options[0]
    try:
        reference = build(first, loaded, kind, threads)
    except Exception as e:
        raise ModelLoadError(f"{first} cannot run the {kind} tower: {_reason(e)}") from e
    parity = trial.Parity(reference, loaded)
    towers: dict[Choice, Tower] = {}
    dropped: dict[Choice, str] = {}
    for choice in options:
        try:
            tower = reference if choice == reference.choice else build(choice, loaded, kind, threads)
            parity.check(tower)
            towers[choice] = tower
        except Exception as e:
            dropped[choice] = _reason(e)
            logger.warning("%s tower: %s dropped from the engine trial: %s", kind, choice, dropped[choice])
    if not towers:
        raise ModelLoadError(f"no engine can serve the {kind} tower: " + "; ".join(
            f"{c}: {why}" for c, why in dropped.items()))  # fmt: skip
    if len(towers) == 1:
        ((choice, tower),) = towers.items()
        return tower, trial.Trial(choice, dropped=dropped, how="the only candidate that loaded")
    built = time.monotonic()
    quiet = Quiet.here(max(threads.total, threads.workers * threads.shared), settings.trial_wait_s)
    per_worker = -(-settings.max_batch_size // threads.workers)
    one = trial.inputs(loaded, kind, 1)

    def sized() -> tuple[int, int]:  # timed on the reference: again if others took the CPUs meanwhile
        start = quiet.start()
        n = trial.batch_size(reference, loaded, threads, per_worker)
        repeat = trial.alone_repeat(reference, one)
        return sized() if quiet.settle(start) else (n, repeat)

    n, repeat = sized()
    workloads = [
        trial.Workload(trial.UNDER_LOAD, trial.inputs(loaded, kind, n), threads.workers),
        trial.Workload(trial.ALONE, one, alone=True, repeat=repeat),
    ]
    times = trial.time_towers(towers, workloads, quiet=quiet)
    winner = trial.pick(times)
    for choice, tower in towers.items():
        if choice != winner:
            tower.close()
    items = "image(s)" if kind == "image" else "text(s)"
    workload = (
        f"under load {threads.workers} pass(es) at once of {n} {items} on {threads.shared} thread(s) "
        f"each; alone 1 item on {threads.total} thread(s); best of {trial.ROUNDS} interleaved rounds, "
        "the least behind on its worse workload wins"
    )
    result = trial.Trial(winner, times[trial.UNDER_LOAD], dropped, workload, alone_seconds=times[trial.ALONE],
                         contention=str(quiet))  # fmt: skip
    level = logging.WARNING if quiet.busy else logging.INFO  # its times may not rank the engines as served
    line = "%s tower engine trial (%s): %s; chose %s (building and checking %.1f s, timing %.1f s)"
    logger.log(level, line, kind, workload, result, winner, built - started, time.monotonic() - built)
    return towers[winner], result
