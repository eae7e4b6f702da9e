"""`python -m bench` on a tiny model, a few requests: its JSON, table and plot are complete and sane."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools.procs import ROOT
from tests.support.tiers import process_fixture

# The run measures every engine choice, the default against each, and int8: minutes on a busy machine.
pytestmark = pytest.mark.timeout(900)
CONCURRENCY = [1, 4]
POINT_KEYS = {"concurrency", "requests", "errors", "requests_per_s", "p50_ms", "p95_ms", "p99_ms"}
PROCESSES = {"gateway", "image", "text", "loadgen"}


@process_fixture(scope="module")
def run(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    out = tmp_path_factory.mktemp("bench") / "results"
    argv = [
        sys.executable, "-m", "bench", "--quick", "--model-dir", str(tiny_dir), "--out", str(out),
        "--name", "t", "--concurrency", ",".join(map(str, CONCURRENCY)), "--warmup-s", "0.5",
        "--measure-s", "1.5", "--batches", "1,4", "--rounds", "2",
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=860, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    yield json.loads((out / "t.json").read_text()), out


def finite_positive(x: Any) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def check_point(point: dict[str, Any]) -> None:
    assert point.keys() >= POINT_KEYS
    assert point["requests"] > 0 and point["errors"] == 0, point
    assert all(finite_positive(point[k]) for k in ("requests_per_s", "p50_ms", "p95_ms", "p99_ms"))
    assert point["p50_ms"] <= point["p95_ms"] <= point["p99_ms"]
    assert set(point["cpu_s_per_request"]) == PROCESSES
    cpu = point["cpu_s_per_request"]
    assert all(math.isfinite(v) and v >= 0 for v in cpu.values()) and cpu["gateway"] > 0, point


def test_every_point_of_the_three_lines_is_measured(run) -> None:
    result, _ = run
    (model,) = result["models"]
    for line in ("batched", "unbatched"):
        assert [p["concurrency"] for p in model[line]] == CONCURRENCY
        for point in model[line]:
            check_point(point)
    for key in ("zero_shot_cached", "zero_shot_uncached"):
        check_point(model[key])
    bound = model["in_process"]
    assert set(bound["batches"]) == {"1", "4"}
    assert bound["best_batch"] in (1, 4) and finite_positive(bound["best_pairs_per_s"])
    assert finite_positive(bound["p50_ms_one_pair"]) and finite_positive(bound["cpu_s_per_pair"])
    assert bound["text_trimmed"] is True


def test_the_limit_is_the_best_of_every_choice_and_the_default_is_measured_beside_it(run) -> None:
    result, _ = run
    bound = result["models"][0]["in_process"]
    forced = set(bound["choices"]) - {"auto"}
    assert "auto" in bound["choices"] and len(forced) >= 2  # at least torch's own kernels and one other
    assert bound["best_choice"] in forced
    assert bound["best_pairs_per_s"] == max(bound["choices"][c]["best_pairs_per_s"] for c in forced)
    assert bound["choices"]["auto"]["choice"] in forced  # the default is one of the forced choices


def test_the_default_is_compared_with_each_forced_choice_per_tower(run) -> None:
    result, out = run
    verdict = result["models"][0]["default_vs_forced"]
    assert {case.split(",")[0] for case in verdict["cases"]} == {"image", "text"}
    for case in verdict["cases"].values():
        assert "auto" in case["items_per_s"] and case["best_forced"] != "auto"
        assert all(finite_positive(v) for v in case["items_per_s"].values())
        assert case["passed"] == (case["default_over_best"] >= verdict["within"])
    assert "against each forced choice" in (out / "t.md").read_text()


def test_int8_is_reported_against_fp32(run) -> None:
    result, out = run
    int8 = result["models"][0]["int8"]
    assert finite_positive(int8["speedup"]) and 0.9 <= int8["min_cosine"] <= 1.0 + 1e-6
    assert "x the fp32 limit" in (out / "t.md").read_text()


def test_the_machine_block_and_the_cpu_breakdown_are_recorded_and_printed(run) -> None:
    result, out = run
    cpu = result["machine"]["cpu"]
    assert cpu["model_name"] and set(cpu["flags"]) >= {"avx2", "avx512f", "avx512_bf16", "amx_tile"}
    assert result["machine"]["versions"]["torch"]
    model = result["models"][0]
    split = model["breakdown"]
    assert split["concurrency"] == CONCURRENCY[-1] and set(split["cpu_ms"]) == PROCESSES
    assert split["outside_model_cpu_ms"] == pytest.approx(split["service_cpu_ms"] - split["model_cpu_ms"])
    for kind in ("image", "text"):  # what each predictor chose at load, from its /config
        choice = model["service_choice"][kind]
        assert choice["engine"] in ("torch", "onnxruntime", "openvino") and choice["engine_trial"]
    assert {t["what"] for t in model["targets"]} >= {"gateway CPU, ms a /compare/"}
    table = (out / "t.md").read_text()
    assert "Machine: " in table and "avx2" in table and "outside the model work" in table
    assert "| target | value | goal | met |" in table


def test_ratios_ceiling_memory_and_decoding_are_reported(run) -> None:
    result, _ = run
    (model,) = result["models"]
    assert len(model["ratios"]) == 6
    assert all(isinstance(v, float) and math.isfinite(v) for v in model["ratios"].values())
    ceiling = result["loadgen_ceiling"]
    assert ceiling["errors"] == 0 and finite_positive(ceiling["over_fastest_service_point"])
    assert set(model["peak_rss_mb"]) == {
        "image", "text", "gateway", "gateway-nocache", "image-unbatched", "text-unbatched",
        "gateway-unbatched",
    }  # fmt: skip
    assert all(finite_positive(v) for v in model["peak_rss_mb"].values())
    decoding = model["in_process"]["reduced_decoding"]
    assert finite_positive(decoding["speedup"]) and 0.99 <= decoding["min_cosine"] <= 1.0 + 1e-6


def test_the_top_ratios_are_medians_of_interleaved_rounds(run) -> None:
    result, out = run
    (model,) = result["models"]
    rounds = model["rounds"]
    assert len(rounds) == 2
    assert all(finite_positive(r[k]) for r in rounds for k in ("limit", "on", "off", "cached", "uncached"))
    first = rounds[0]  # the main sweep's own points
    assert first["on"] == model["batched"][-1]["requests_per_s"]
    assert first["limit"] == model["in_process"]["best_pairs_per_s"]
    top = f"service pairs/s at concurrency {CONCURRENCY[-1]} / in-process limit"
    assert model["ratios"][top] == pytest.approx(statistics.median(r["on"] / r["limit"] for r in rounds))
    cache = statistics.median(r["cached"] / r["uncached"] for r in rounds)
    assert model["ratios"]["zero-shot pairs/s, cache on / cache off"] == pytest.approx(cache)
    assert first["cached"] == model["zero_shot_cached"]["requests_per_s"]
    assert "median of 2 interleaved rounds" in (out / "t.md").read_text()


def test_the_cache_served_the_zero_shot_labels_and_nothing_else(run) -> None:
    result, _ = run
    cache = result["models"][0]["text_cache"]
    assert cache["gateway"]["hits"] > 0
    assert cache["gateway-nocache"]["hits"] == 0 and cache["gateway-nocache"]["misses"] == 0
    assert cache["gateway-unbatched"]["hits"] == 0  # distinct texts only


def test_markdown_table_and_png_plot_are_written(run) -> None:
    _, out = run
    table = (out / "t.md").read_text()
    assert "| service, batching on | 1 |" in table and "| service, batching off" in table
    assert "zero-shot, 10 texts, cached" in table and "Load generator ceiling" in table
    png = (out / "t.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
