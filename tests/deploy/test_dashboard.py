"""The Grafana dashboard: structure, PromQL that parses, and only metric names the programs export."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.chart import CHART, ROOT, run, tool

DASHBOARD = CHART / "dashboards" / "clip-similarity.json"
DEFINITION = CHART / "dashboards" / "dashboard.py"
GRAFANA_VARS = {"$__rate_interval": "5m", "${datasource}": "prometheus", "$namespace": ".*", "$job": ".*"}
CONTRACT = {  # docs/metrics.md: the programs' metrics, KServe's histograms, process_*, NVIDIA DCGM exporter
    "http_requests_total",
    "http_request_duration_seconds",
    "predictor_request_duration_seconds",
    "predictor_errors_total",
    "clip_batch_size",
    "clip_queue_seconds",
    "clip_inference_seconds",
    "clip_inference_errors_total",
    "clip_rejected_requests_total",  # predictors' overload bound (predictors/metrics.py)
    "clip_queued_items",
    "gateway_rejected_requests_total",  # gateway's concurrency bound and text cache (gateway/metrics.py)
    "gateway_text_cache_hits_total",
    "gateway_text_cache_misses_total",
    "gateway_text_cache_entries",
    "request_preprocess_seconds",
    "request_predict_seconds",
    "request_postprocess_seconds",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "DCGM_FI_DEV_GPU_UTIL",
    "DCGM_FI_DEV_FB_USED",
    "up",
}
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\{")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def expressions(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in panels(dashboard) for t in p["targets"]]


def metric_family(name: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", name)


def test_dashboard_has_datasource_namespace_and_job_variables(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "job"}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    for p in panels(dashboard):
        assert p["datasource"]["uid"] == "${datasource}"
        assert all(t["datasource"]["uid"] == "${datasource}" for t in p["targets"])


def test_panels_are_laid_out_and_distinct(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
    assert dashboard["uid"] == "clip-similarity"


def test_every_query_filters_by_the_variables_and_uses_rate_interval(dashboard: dict[str, Any]) -> None:
    for expr in expressions(dashboard):
        assert '=~"$namespace"' in expr, expr
        assert "rate(" not in expr or "[$__rate_interval]" in expr, expr
        assert not re.search(r"\[\d+[smh]\]", expr), expr


def test_panels_cover_what_operators_need(dashboard: dict[str, Any]) -> None:
    used = {metric_family(m) for e in expressions(dashboard) for m in SELECTOR.findall(e)}
    assert CONTRACT - {"request_preprocess_seconds", "request_postprocess_seconds", "up"} <= used
    text = json.dumps(expressions(dashboard))
    for quantile in ("0.5", "0.95", "0.99"):
        assert (
            f"histogram_quantile({quantile}, sum by (le) (rate(http_request_duration_seconds_bucket" in text
        )
        assert (
            f"histogram_quantile({quantile}, sum by (model_name, le) (rate(request_predict_seconds_bucket"
            in text
        )
    assert 'http_status=~\\"5..\\"' in text


def test_dashboard_names_only_contract_metrics(dashboard: dict[str, Any]) -> None:
    queries = expressions(dashboard) + [
        v["query"]["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), dict)
    ]
    assert len(queries) > len(expressions(dashboard)), "the variables' queries are checked too"
    used = {metric_family(m) for e in queries for m in SELECTOR.findall(e)}
    assert used - CONTRACT == set()


@pytest.mark.usefixtures("starts_processes")
def test_every_panel_query_parses(dashboard: dict[str, Any], tmp_path: Path) -> None:
    rules = []
    for i, expr in enumerate(expressions(dashboard)):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        assert "$" not in expr, f"unsubstituted Grafana variable in {expr}"
        rules.append({"record": f"dashboard:panel_query_{i}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run([tool("promtool"), "check", "rules", str(path)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.usefixtures("starts_processes")
def test_a_broken_query_would_be_caught(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "x",
                        "rules": [{"record": "x:y", "expr": "sum by (le (rate(http_requests_total[5m]))"}],
                    }
                ]
            }
        )
    )
    assert run([tool("promtool"), "check", "rules", str(path)]).returncode != 0


@pytest.mark.usefixtures("starts_processes")
def test_dashboard_json_equals_a_fresh_build_of_its_definition() -> None:
    result = run([sys.executable, str(DEFINITION), "--check"], cwd=ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.usefixtures("starts_processes")
def test_the_drift_check_catches_an_edited_json(tmp_path: Path) -> None:
    edited = tmp_path / "dashboards"
    edited.mkdir()
    (edited / "dashboard.py").write_text(DEFINITION.read_text())
    (edited / "clip-similarity.json").write_text(DASHBOARD.read_text().replace("p95", "p96", 1))
    result = run([sys.executable, str(edited / "dashboard.py"), "--check"], cwd=ROOT)
    assert result.returncode == 1 and "make dashboard" in result.stderr
