"""The report's parts from given numbers: machine block, CPU breakdown, targets, the default-vs-forced
verdict, the limit over choices, and the README's performance table (no process, no timing)."""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bench import breakdown, choices, machine, readme, report
from bench.inprocess import limit
from devtools.procs import ROOT

AVX512_CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512_vnni avx512_bf16 xsave

processor\t: 1
model name\t: AMD EPYC 9R14 96-Core Processor
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512dq avx512_vnni avx512_bf16 xsave
"""
AVX2_CPUINFO = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC\nflags\t\t: avx avx2 fma\n"


def test_cpuinfo_names_the_model_and_each_vector_extension() -> None:
    cpu = machine.parse_cpuinfo(AVX512_CPUINFO)
    assert cpu["model_name"] == "AMD EPYC 9R14 96-Core Processor"
    assert (cpu["family"], cpu["model"]) == ("25", "17")
    assert cpu["flags"] == {
        "avx2": True, "fma": True, "avx512f": True, "avx512_vnni": True, "avx512_bf16": True,
        "amx_tile": False,
    }  # fmt: skip
    assert machine.parse_cpuinfo(AVX2_CPUINFO)["flags"]["avx512f"] is False


def block_of(cpuinfo: str) -> dict[str, Any]:
    return {
        "cpu": machine.parse_cpuinfo(cpuinfo), "cpus": 2, "gpus": [], "os": "Linux 6", "python": "3.11",
        "versions": {"torch": "2.14.1", "onnxruntime": None}, "load_avg_at_start": [1.0],
    }  # fmt: skip


def test_the_machine_line_tells_an_avx2_machine_from_an_avx512_one() -> None:
    avx2, avx512 = machine.describe(block_of(AVX2_CPUINFO)), machine.describe(block_of(AVX512_CPUINFO))
    assert "no avx512f" in avx2 and "avx2" in avx2
    assert "avx512f" in avx512 and "no avx512f" not in avx512 and "no amx_tile" in avx512
    assert "torch 2.14.1" in avx2 and "onnxruntime" not in avx2  # absent packages are left out
    assert machine.describe("2 CPUs (AMD EPYC)") == "2 CPUs (AMD EPYC)"  # an older result's text
    assert machine.short(block_of(AVX512_CPUINFO)).endswith("avx512_bf16")  # the widest it has
    assert machine.short(block_of(AVX2_CPUINFO)) == "2 CPUs AMD EPYC, avx2"


def test_the_breakdown_subtracts_the_model_work_from_the_service_cpu() -> None:
    point = {"concurrency": 32, "cpu_s_per_request": {"gateway": 0.002, "image": 0.007, "text": 0.001,
                                                      "loadgen": 0.0003}}  # fmt: skip
    b = breakdown.cpu(point, {"cpu_s_per_pair": 0.006})
    assert b["cpu_ms"]["gateway"] == pytest.approx(2.0)
    assert b["service_cpu_ms"] == pytest.approx(10.0)  # the load generator is not the service
    assert b["outside_model_cpu_ms"] == pytest.approx(4.0)


def _model(key: str, service_over_limit: float, outside_ms: float, gateway_ms: float) -> dict[str, Any]:
    return {
        "key": key,
        "name": key,
        "ratios": {
            "service pairs/s at concurrency 32 / in-process limit": service_over_limit,
            "batching on / batching off, pairs/s at concurrency 32": 1.6,
            "service p50 - in-process p50 at concurrency 1 (ms)": 5.0,
            "zero-shot pairs/s, cache on / cache off": 1.2,
        },
        "breakdown": {"outside_model_cpu_ms": outside_ms, "cpu_ms": {"gateway": gateway_ms}},
        "default_vs_forced": {"worst_default_over_best": 0.99},
        "int8": {"speedup": 1.3, "min_cosine": 0.9998},
    }


def test_targets_hold_the_demo_to_065_and_other_models_to_09_of_the_limit() -> None:
    def met(model: dict[str, Any]) -> dict[str, bool | None]:
        return {t["what"]: t["passed"] for t in breakdown.targets(model)}

    demo = met(_model("demo", 0.7, 2.5, 1.6))
    assert demo["service default / in-process limit, pairs/s at the top concurrency"] is True
    assert demo["CPU outside the model work, ms a /compare/"] is True
    assert demo["gateway CPU, ms a /compare/"] is False
    assert not any("int8" in what for what in demo)  # int8 goals are set on ViT-B-32 only
    vit = met(_model("vit-b-32", 0.7, 2.5, 1.0))
    assert vit["service default / in-process limit, pairs/s at the top concurrency"] is False
    assert vit["int8 / fp32 in-process limit"] is True and vit["int8 min cosine to fp32"] is True


def test_a_goal_not_measured_is_neither_met_nor_missed() -> None:
    model = _model("demo", 0.7, 2.5, 1.0)
    del model["default_vs_forced"], model["int8"]
    verdicts = {t["what"]: t for t in breakdown.targets(model)}
    unmeasured = verdicts["default / best forced choice in-process (worst tower and workload)"]
    assert unmeasured["value"] is None and unmeasured["passed"] is None


def test_the_default_passes_within_3_percent_of_the_best_forced_choice() -> None:
    close = choices.verdict({"auto": [98.0, 97.5, 99.0], "torch fp32": [90.0, 91.0, 89.0],
                             "onnxruntime fp32": [100.0, 99.0, 101.0]})  # fmt: skip
    assert close["best_forced"] == "onnxruntime fp32"
    assert close["default_over_best"] == pytest.approx(99.0 / 101.0) and close["passed"] is True  # round 3
    slow = choices.verdict({"auto": [95.0], "torch fp32": [100.0]})
    assert slow["passed"] is False and slow["slower_beyond_noise"] is True  # 5% slower than the best forced


def test_a_default_below_the_bound_only_within_the_noise_is_told_apart_from_a_slower_one() -> None:
    # The same engine twice on a machine whose speed drifts: the rounds' ratios straddle 1.
    drifting = choices.verdict({"auto": [90.0, 104.0, 95.0, 88.0, 101.0], "onnxruntime fp32": [100.0] * 5})
    assert drifting["default_over_best"] == pytest.approx(0.95) and drifting["passed"] is False
    assert drifting["interval"] == pytest.approx([0.88, 1.04]) and drifting["slower_beyond_noise"] is False
    assert drifting["interval_coverage"] == pytest.approx(1 - 2 / 32)  # 5 rounds: from the least to the most
    slower = choices.verdict({"auto": [90.0, 93.0, 95.0, 88.0, 94.0], "onnxruntime fp32": [100.0] * 5})
    assert slower["passed"] is False and slower["slower_beyond_noise"] is True
    assert report.case_verdict(drifting).startswith("FAIL (within the noise")
    assert report.case_verdict(slower) == "FAIL"


def test_the_interval_of_a_median_narrows_with_more_rounds() -> None:
    assert choices.median_interval([3.0, 1.0, 2.0]) == (1.0, 3.0, 0.75)  # too few rounds for 90%
    low, high, coverage = choices.median_interval([float(i) for i in range(1, 16)])
    assert (low, high) == (4.0, 12.0) and coverage == pytest.approx(0.9648, abs=1e-4)


@pytest.mark.parametrize("n", [4, 5])
def test_each_choice_runs_first_and_after_each_other_choice_equally_often_over_a_cycle(n: int) -> None:
    labels = [f"choice {i}" for i in range(n)]
    cycle = n if n % 2 == 0 else 2 * n
    rounds = [choices.balanced_order(labels, r) for r in range(cycle)]
    assert all(sorted(order) == labels for order in rounds)
    assert Counter(order[0] for order in rounds) == {label: cycle // n for label in labels}
    follows = Counter((a, b) for order in rounds for a, b in itertools.pairwise(order))
    assert set(follows.values()) == {cycle // n} and len(follows) == n * (n - 1)
    assert choices.balanced_order(labels, cycle) == rounds[0]  # and then again


def _choice(label: str, pairs: float, one_ms: float) -> dict[str, Any]:
    return {"choice": label, "configs": {}, "best_config": "one pipeline", "batches": {}, "best_batch": 8,
            "best_pairs_per_s": pairs, "cpu_s_per_pair": 1 / pairs, "one_pair_ms": {},
            "one_pair_config": "one pipeline", "p50_ms_one_pair": one_ms}  # fmt: skip


def test_the_limit_is_the_best_forced_choice_and_the_default_stands_beside_it() -> None:
    got = limit({
        "auto": _choice("onnxruntime fp32", 200.0, 1.0),
        "torch fp32": _choice("torch fp32", 120.0, 3.0),
        "onnxruntime fp32": _choice("onnxruntime fp32", 150.0, 2.0),
    })  # fmt: skip
    assert got["best_choice"] == "onnxruntime fp32" and got["best_pairs_per_s"] == 150.0  # auto not counted
    assert got["p50_ms_one_pair"] == 2.0 and got["one_pair_config"].startswith("onnxruntime fp32")
    assert set(got["choices"]) == {"auto", "torch fp32", "onnxruntime fp32"}


def test_the_readme_table_comes_from_the_result_json(tmp_path: Path) -> None:
    result = {"machine": {"cpu": machine.parse_cpuinfo(AVX2_CPUINFO), "cpus": 2, "gpus": [], "os": "Linux",
                          "python": "3.11", "versions": {"torch": "2.14.1"}, "load_avg_at_start": [0.5]},
              "models": [_model("vit-b-32", 0.93, 2.5, 1.2)]}  # fmt: skip
    (tmp_path / "cpu-full.json").write_text(json.dumps(result))
    text = readme.section(tmp_path)
    assert text.startswith("Machine: 2 CPUs AMD EPYC") and "no avx512f" in text
    top = "service default / in-process limit, pairs/s at the top concurrency"
    assert f"| vit-b-32 | {top} | 0.93x | >= 0.9 (met) |" in text
    assert "| vit-b-32 | CPU outside the model work, ms a /compare/ | 2.50 ms | <= 3 (met) |" in text
    assert "](bench/results/cpu-full.png)" in text and "](bench/results/cpu-full.md)" in text
    assert "cuda-full" not in text  # no GPU run recorded
    assert "run `make bench`" in readme.section(tmp_path / "none")


def test_the_readme_performance_section_equals_the_committed_results() -> None:
    sys.path.insert(0, str(ROOT / "scripts"))
    from docgen import performance

    readme_text = (ROOT / "README.md").read_text()
    match = re.search(
        r"<!-- BEGIN generated: performance -->\n(.*?)<!-- END generated -->", readme_text, re.S
    )
    assert match, "README.md has no generated performance section"
    assert match[1] == performance.table(), "README's performance table is stale: run `make docs`"


def test_pinning_puts_every_thread_of_the_process_on_the_cpus_given() -> None:
    everywhere = os.sched_getaffinity(0)
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        choices.pin({max(everywhere)})
        assert os.sched_getaffinity(worker.native_id) == {max(everywhere)}
        assert os.sched_getaffinity(0) == {max(everywhere)}
        choices.pin(everywhere)
        assert os.sched_getaffinity(worker.native_id) == everywhere
    finally:
        choices.pin(everywhere)
        stop.set()
        worker.join()
