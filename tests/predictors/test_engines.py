"""The engine choice: which candidates the flags allow, how the trial times and picks, what it drops."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from predictors import onednn
from predictors.engines import Choice, Tower, Trial, candidates, choose, load, trial
from predictors.engines import choice as choice_module
from predictors.loaded import LoadedModel, ModelLoadError
from predictors.loading import load_model
from predictors.settings import Settings, read_settings
from predictors.threads import ThreadSplit

CPU, CUDA = torch.device("cpu"), torch.device("cuda")
FP32 = "fp32"
ONEDNN, TORCH = Choice("torch", "onednn", FP32), Choice("torch", "torch", FP32)
ORT, OPENVINO = Choice("onnxruntime", "onnxruntime", FP32), Choice("openvino", "openvino", FP32)


def settings(*args: str) -> Settings:
    return read_settings("image", ["--arch", "ViT-B-32", "--pretrained", "none", *args])


def labels(s: Settings, device: torch.device = CPU) -> list[str]:
    return [str(c) for c in candidates(s, device)]


def test_labels_name_engine_kernels_and_precision() -> None:
    assert [str(c) for c in (ONEDNN, TORCH, ORT, OPENVINO)] == [
        "torch/onednn fp32",
        "torch fp32",
        "onnxruntime fp32",
        "openvino fp32",
    ]
    assert str(Choice("torch", "torch", "int8")) == "torch int8"


def test_auto_on_a_cpu_has_every_engine_installed() -> None:
    assert onednn.available()
    assert labels(settings()) == ["torch/onednn fp32", "torch fp32", "onnxruntime fp32", "openvino fp32"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--engine", "torch"], ["torch/onednn fp32", "torch fp32"]),
        (["--engine", "torch", "--cpu_kernels", "torch"], ["torch fp32"]),
        (["--cpu_kernels", "onednn"], ["torch/onednn fp32", "onnxruntime fp32", "openvino fp32"]),
        (["--engine", "onnxruntime"], ["onnxruntime fp32"]),
        (["--engine", "openvino", "--cpu_kernels", "torch"], ["openvino fp32"]),
        (["--precision", "bf16"], ["torch bf16"]),  # only torch runs bf16
    ],
)
def test_each_flag_narrows_its_own_part(args: list[str], expected: list[str]) -> None:
    assert labels(settings(*args)) == expected


def test_a_gpu_runs_torch_fp16() -> None:
    assert labels(settings(), CUDA) == ["torch fp16"]
    assert labels(settings("--engine", "onnxruntime"), CUDA) == []
    assert "cuda fp16 runs torch" in choice_module.why_none(settings("--engine", "onnxruntime"), CUDA)


def test_int8_candidates_only_when_asked() -> None:
    int8 = replace(settings(), precision="int8")  # the flag value comes with predictors.quantize
    assert labels(int8) == ["torch int8", "onnxruntime int8"]
    assert "int8" not in " ".join(labels(settings()))
    assert "no int8 path" in choice_module.why_none(replace(int8, engine="openvino"), CPU)


def test_an_engine_not_installed_is_no_candidate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(choice_module, "installed", lambda engine: engine != "openvino")
    assert "openvino fp32" not in labels(settings())
    forced = settings("--engine", "openvino")
    assert labels(forced) == []
    assert "openvino package is not installed" in choice_module.why_none(forced, CPU)


def test_the_trial_reads_as_a_list_fastest_first() -> None:
    result = Trial(ORT, {TORCH: 0.0450, ORT: 0.0412}, {OPENVINO: "RuntimeError: no"})
    assert str(result) == "onnxruntime fp32 41.2 ms, torch fp32 45.0 ms, openvino fp32 dropped"
    assert str(Trial(TORCH, how="--engine torch --cpu_kernels torch")) == (
        "none (--engine torch --cpu_kernels torch)"
    )


class FakeTower(Tower):
    """torch's features (from `real`), after `seconds`; `wrong`: other features. Records its calls."""

    def __init__(self, real: Tower, choice: Choice, seconds: float, wrong: bool = False) -> None:
        super().__init__(choice, real.kind, real.trim, real.split)
        self.real, self.seconds, self.wrong = real, seconds, wrong
        self.calls: list[tuple[str, bool, int]] = []  # (thread, alone, items)
        self.closed = False

    def run(self, x: np.ndarray, alone: bool) -> np.ndarray:
        self.calls.append((threading.current_thread().name, alone, len(x)))
        time.sleep(self.seconds)
        features = self.real.run(x, False)  # one thread: only the sleep tells the fakes apart
        return (
            np.random.default_rng().standard_normal(features.shape, dtype=np.float32)
            if self.wrong
            else features
        )

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> LoadedModel:
    return load_model(read_settings("image", ["--model_dir", str(tiny_dir)]))


SPLIT = ThreadSplit(workers=2, total=2, shared=1)


def fakes(
    monkeypatch: pytest.MonkeyPatch,
    tiny: LoadedModel,
    seconds: dict[Choice, float],
    broken: dict[Choice, str],
) -> dict[Choice, FakeTower]:
    """Builders of fake towers in place of the real ones: `broken` ones fail to build ("build") or give
    other features ("features")."""
    made: dict[Choice, FakeTower] = {}
    real = load._torch(TORCH, tiny, "image", False, SPLIT)

    def builder(c: Choice, loaded: LoadedModel, kind: str, trim: bool, split: ThreadSplit) -> Tower:
        if c == TORCH and c not in seconds:
            return real  # the reference
        if broken.get(c) == "build":
            raise RuntimeError(f"{c} cannot convert\nsecond line")
        made[c] = FakeTower(real, c, seconds[c], wrong=broken.get(c) == "features")
        return made[c]

    for c in (ONEDNN, TORCH, ORT, OPENVINO):
        monkeypatch.setitem(load.BUILDERS, (c.engine, c.precision), builder)
    return made


def test_the_fastest_wins_each_timed_on_the_workers_passes_at_once(
    monkeypatch: pytest.MonkeyPatch, tiny: LoadedModel, caplog: pytest.LogCaptureFixture
) -> None:
    seconds = {ONEDNN: 0.06, TORCH: 0.04, ORT: 0.005, OPENVINO: 0.02}
    made = fakes(monkeypatch, tiny, seconds, {})
    with caplog.at_level(logging.INFO, "predictors.engines"):
        tower, result = choose(settings("--max_batch_size", "8"), tiny, "image", SPLIT)
    assert tower is made[ORT] and result.choice == ORT
    assert list(result.seconds) == [ONEDNN, TORCH, ORT, OPENVINO] and not result.dropped
    assert result.seconds[ORT] < result.seconds[OPENVINO] < result.seconds[TORCH] < result.seconds[ONEDNN]
    assert set(result.alone_seconds) == set(result.seconds)
    assert all(made[c].closed for c in (ONEDNN, TORCH, OPENVINO)) and not made[ORT].closed
    timed = [call for call in made[ORT].calls if call[0].startswith("engine-trial")]
    assert len(timed) == 2 * (1 + trial.ROUNDS)  # both workers, the untimed step and every round
    assert all(not alone and 1 <= items <= 4 for _, alone, items in timed)  # a worker's share of 8
    alone = [call for call in made[ORT].calls if call[1]]
    assert alone and all(items == 1 for _, _, items in alone)  # one lone request
    lines = [r.getMessage() for r in caplog.records if "engine trial" in r.getMessage()]
    assert len(lines) == 1 and "chose onnxruntime fp32" in lines[0] and "2 pass(es) at once" in lines[0]
    assert str(result).startswith("onnxruntime fp32 ") and "(alone " in str(result)


def test_the_least_behind_on_its_worse_workload_wins() -> None:
    load_, alone = {ORT: 1.00, OPENVINO: 0.98, TORCH: 1.5}, {ORT: 0.10, OPENVINO: 0.14, TORCH: 0.09}
    times = {trial.UNDER_LOAD: load_, trial.ALONE: alone}
    # openvino leads under load by 2% but is 56% behind alone; onnxruntime is 11% behind at worst
    assert trial.pick(times) == ORT
    assert trial.regret(times, ORT) == pytest.approx(0.10 / 0.09)
    result = Trial(ORT, load_, {}, "", alone_seconds=alone)
    assert str(result).split(", ")[0] == "onnxruntime fp32 1000.0 ms (alone 100.00 ms)"


class Clock:
    """`trial`'s clock (and `quiet`'s), advanced by the fake towers' paces and by waits: timings exact
    whatever the machine's load."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    monotonic = perf_counter

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(trial, "time", fake)
    return fake


def test_rounds_interleave_the_candidates(clock: Clock) -> None:
    order: list[str] = []

    class Recorded(Tower):
        def run(self, x: np.ndarray, alone: bool) -> np.ndarray:
            order.append(str(self.choice))
            clock.sleep(0.01)  # all as fast: none falls out of the race
            return x

    towers = {c: Recorded(c, "image", False, SPLIT) for c in (TORCH, ORT, OPENVINO)}
    trial.time_towers(
        towers, [trial.Workload(trial.UNDER_LOAD, np.zeros((1, 3), dtype=np.float32))], rounds=3
    )
    names = ["torch fp32", "onnxruntime fp32", "openvino fp32"]
    rounds = names + names + names[1:] + names[:1] + names[2:] + names[:2]  # untimed first
    assert order[: len(rounds)] == rounds
    # a tie: the extra rounds time those within CLOSE of the best, still interleaved
    extra = order[len(rounds) :]
    assert len(extra) == 3 * trial.EXTRA_ROUNDS
    assert all(sorted(extra[i : i + 3]) == sorted(names) for i in range(0, len(extra), 3))


def test_a_candidate_far_behind_after_two_rounds_is_timed_no_more(clock: Clock) -> None:
    calls: list[str] = []

    class Paced(Tower):
        def run(self, x: np.ndarray, alone: bool) -> np.ndarray:
            calls.append(str(self.choice))
            clock.sleep({ORT: 0.02, OPENVINO: 0.024, TORCH: 0.1}[self.choice])  # 1.2x: in the race, not close
            return x

    towers = {c: Paced(c, "image", False, SPLIT) for c in (TORCH, ORT, OPENVINO)}
    workload = trial.Workload(trial.UNDER_LOAD, np.zeros((1, 3), dtype=np.float32))
    seconds = trial.time_towers(towers, [workload], rounds=3)[trial.UNDER_LOAD]
    assert calls.count("torch fp32") == 3 and calls.count("onnxruntime fp32") == 4  # untimed step too
    assert seconds[TORCH] > trial.OUT_OF_RACE * seconds[ORT]  # still reported, from its two rounds


def test_one_slow_round_does_not_put_the_fastest_out(clock: Clock) -> None:
    passes = {ORT: 0, OPENVINO: 0}

    class Paced(Tower):
        def run(self, x: np.ndarray, alone: bool) -> np.ndarray:
            passes[self.choice] += 1
            slowed = self.choice == ORT and passes[ORT] == 2  # its first timed round, 2.5x its pace
            clock.sleep(0.05 if slowed else {ORT: 0.02, OPENVINO: 0.024}[self.choice])
            return x

    towers = {c: Paced(c, "image", False, SPLIT) for c in (ORT, OPENVINO)}
    times = trial.time_towers(
        towers, [trial.Workload(trial.UNDER_LOAD, np.zeros((1, 3), dtype=np.float32))], rounds=3
    )
    assert times[trial.UNDER_LOAD][ORT] == pytest.approx(0.02)
    assert trial.pick(times) == ORT


def test_a_split_between_the_workloads_gets_the_extra_rounds_however_far_apart(clock: Clock) -> None:
    calls: list[tuple[str, bool]] = []
    pace = {ORT: (0.03, 0.01), OPENVINO: (0.02, 0.017), TORCH: (0.1, 0.1)}  # (under load, alone)

    class Paced(Tower):
        def run(self, x: np.ndarray, alone: bool) -> np.ndarray:
            calls.append((str(self.choice), alone))
            clock.sleep(pace[self.choice][alone])
            return x

    towers = {c: Paced(c, "image", False, SPLIT) for c in (TORCH, ORT, OPENVINO)}
    workloads = [trial.Workload(trial.UNDER_LOAD, np.zeros((1, 3), dtype=np.float32)),
                 trial.Workload(trial.ALONE, np.zeros((1, 3), dtype=np.float32), alone=True)]  # fmt: skip
    times = trial.time_towers(towers, workloads, rounds=3)
    # openvino leads under load, onnxruntime alone; their regrets (1.7, 1.5) are far from CLOSE
    assert trial.pick(times) == ORT
    assert trial.contenders(times, [ORT, OPENVINO]) == [ORT, OPENVINO]
    for engine in ("onnxruntime fp32", "openvino fp32"):  # the untimed step, 3 rounds, every extra one
        assert calls.count((engine, False)) == 1 + 3 + trial.EXTRA_ROUNDS
    assert calls.count(("torch fp32", False)) == 3  # out of the race after its second round


def test_a_step_alone_is_timed_warm(clock: Clock) -> None:
    last: list[tuple[Choice, bool]] = []  # what ran last: a pass after anything else runs cold
    warm = {ORT: 0.012, OPENVINO: 0.010}  # openvino is the faster alone, but loses more when cold

    class Cached(Tower):
        def run(self, x: np.ndarray, alone: bool) -> np.ndarray:
            cold = last != [(self.choice, alone)]
            if not alone:
                clock.sleep(0.05)  # a tie under load
            else:
                clock.sleep(warm[self.choice] * (2 if cold and self.choice == OPENVINO else 1))
            last[:] = [(self.choice, alone)]
            return x

    towers = {c: Cached(c, "text", False, SPLIT) for c in (ORT, OPENVINO)}
    workloads = [trial.Workload(trial.UNDER_LOAD, np.zeros((4, 3), dtype=np.float32)),
                 trial.Workload(trial.ALONE, np.zeros((1, 3), dtype=np.float32), alone=True)]  # fmt: skip
    times = trial.time_towers(towers, workloads, rounds=3)
    assert times[trial.ALONE] == {ORT: pytest.approx(0.012), OPENVINO: pytest.approx(0.010)}
    assert trial.pick(times) == OPENVINO


def test_a_candidate_that_fails_or_differs_is_dropped_with_one_warning(
    monkeypatch: pytest.MonkeyPatch, tiny: LoadedModel, caplog: pytest.LogCaptureFixture
) -> None:
    seconds = {ONEDNN: 0.002, TORCH: 0.03, ORT: 0.0, OPENVINO: 0.0}
    fakes(monkeypatch, tiny, seconds, {ORT: "build", OPENVINO: "features"})
    with caplog.at_level(logging.INFO, "predictors.engines"):
        _, result = choose(settings(), tiny, "image", SPLIT)
    assert result.choice == ONEDNN
    assert set(result.dropped) == {ORT, OPENVINO}
    assert result.dropped[ORT] == "RuntimeError: onnxruntime fp32 cannot convert"
    assert "differ from torch fp32's" in result.dropped[OPENVINO]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("dropped from the engine trial" in w for w in warnings)
    assert str(result).endswith("onnxruntime fp32 dropped, openvino fp32 dropped")


def test_a_forced_engine_that_cannot_serve_stops_the_load(
    monkeypatch: pytest.MonkeyPatch, tiny: LoadedModel
) -> None:
    fakes(monkeypatch, tiny, {OPENVINO: 0.0}, {ORT: "build", OPENVINO: "features"})
    with pytest.raises(ModelLoadError, match=r"onnxruntime fp32 cannot serve the image tower \(--engine "):
        choose(settings("--engine", "onnxruntime"), tiny, "image", SPLIT)
    with pytest.raises(ModelLoadError, match=r"openvino fp32 cannot serve.*differ from torch fp32's"):
        choose(settings("--engine", "openvino"), tiny, "image", SPLIT)
    with pytest.raises(ModelLoadError, match="runs on a CPU at fp32 or int8 only"):
        choose(settings("--engine", "openvino", "--precision", "bf16"), tiny, "image", SPLIT)


def test_a_forced_choice_is_not_timed(monkeypatch: pytest.MonkeyPatch, tiny: LoadedModel) -> None:
    made = fakes(monkeypatch, tiny, {ORT: 0.0}, {})
    tower, result = choose(settings("--engine", "onnxruntime"), tiny, "image", SPLIT)
    assert tower is made[ORT] and result == Trial(ORT, how="--engine onnxruntime")
    assert all(alone is False for _, alone, _ in made[ORT].calls)  # only the parity check ran


def test_all_candidates_failing_stops_the_load(monkeypatch: pytest.MonkeyPatch, tiny: LoadedModel) -> None:
    fakes(monkeypatch, tiny, {}, {c: "build" for c in (ONEDNN, ORT, OPENVINO)})
    with pytest.raises(ModelLoadError, match="no engine can serve the image tower: torch/onednn fp32: Runt"):
        choose(settings("--cpu_kernels", "onednn"), tiny, "image", SPLIT)


def test_the_timed_batch_is_a_workers_share_cut_to_a_short_pass(
    tiny: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trial, "PASS_S", 0.05)  # the same rule, a shorter test

    class Slow(Tower):
        def __init__(self, seconds: float) -> None:
            super().__init__(TORCH, "image", False, SPLIT)
            self.seconds = seconds

        def run(self, x: np.ndarray, alone: bool) -> np.ndarray:
            time.sleep(self.seconds)
            return x

    k = trial.MIN_ITEMS  # the calibration's items
    assert trial.batch_size(Slow(0.0), tiny, SPLIT, per_worker=16) == 16
    assert trial.batch_size(Slow(k * trial.PASS_S / 8), tiny, SPLIT, per_worker=16) in (7, 8)  # per pass
    assert trial.batch_size(Slow(k * trial.PASS_S * 2), tiny, SPLIT, per_worker=16) == trial.MIN_ITEMS
    assert trial.batch_size(Slow(k * trial.PASS_S * 2), tiny, SPLIT, per_worker=1) == 1
    assert trial.batch_size(Slow(0.0), tiny, SPLIT, per_worker=2) == 2
