"""The PrometheusRule's alerts: valid for promtool, unit-tested, thresholds from values, local copy fresh."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.deploy.chart import CI_VALUES, ROOT, Objects, one, render, run, tool

HERE = Path(__file__).parent
JOBS = {"clip-gateway", "clip-image", "clip-text"}


def write_rules(objects: Objects, path: Path) -> Path:
    path.write_text(yaml.safe_dump(one(objects, "PrometheusRule")["spec"], sort_keys=False))
    return path


@pytest.mark.parametrize("variant", ["defaults", "cpu", "knative", "ingress-tls"])
def test_rendered_rules_pass_promtool_check(
    variants: dict[str, Objects], variant: str, tmp_path: Path
) -> None:
    rules = write_rules(variants[variant], tmp_path / "rules.yml")
    result = run([tool("promtool"), "check", "rules", str(rules)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_every_alert_carries_severity_and_annotations(variants: dict[str, Objects]) -> None:
    rules = one(variants["defaults"], "PrometheusRule")["spec"]["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == [
        "ClipGatewayHighLatency",
        "ClipGatewayHighErrorRatio",
        "ClipTargetDown",
        "ClipPredictorOverloaded",
        "ClipPredictorQueueSaturated",
    ]
    for rule in rules:
        assert rule["for"] and rule["labels"]["severity"] in {"warning", "critical"}
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
        assert rule["annotations"]["runbook_url"].endswith("#" + rule["alert"].lower())


def promtool_unit_tests(objects: Objects, tmp_path: Path) -> str:
    write_rules(objects, tmp_path / "rules.yml")
    shutil.copy(HERE / "alerts_test.yml", tmp_path / "alerts_test.yml")
    result = run([tool("promtool"), "test", "rules", "alerts_test.yml"], cwd=tmp_path)
    return result.stdout + result.stderr if result.returncode else "SUCCESS"


def test_each_alert_fires_and_stays_silent_as_specified(variants: dict[str, Objects], tmp_path: Path) -> None:
    assert promtool_unit_tests(variants["defaults"], tmp_path) == "SUCCESS"


@pytest.mark.usefixtures("starts_processes")
@pytest.mark.parametrize(
    ("setting", "alert"),
    [
        ("monitoring.prometheusRule.alerts.gatewayLatency.thresholdSeconds=2.5", "ClipGatewayHighLatency"),
        ("monitoring.prometheusRule.alerts.gatewayErrors.threshold=0.2", "ClipGatewayHighErrorRatio"),
        ("monitoring.prometheusRule.alerts.targetDown.for=15m", "ClipTargetDown"),
        ("monitoring.prometheusRule.alerts.predictorOverloaded.threshold=0.2", "ClipPredictorOverloaded"),
        ("monitoring.prometheusRule.alerts.predictorOverloaded.for=15m", "ClipPredictorOverloaded"),
        # ml's 1 request/s is then under the floor.
        (
            "monitoring.prometheusRule.alerts.predictorOverloaded.minRequestsPerSecond=2",
            "ClipPredictorOverloaded",
        ),
        ("monitoring.prometheusRule.alerts.queueSaturated.thresholdSeconds=3", "ClipPredictorQueueSaturated"),
    ],
)
def test_thresholds_and_durations_come_from_values(setting: str, alert: str, tmp_path: Path) -> None:
    # The unit tests pin the defaults: moving a threshold past the test series silences that alert.
    report = promtool_unit_tests(render(sets=[setting]), tmp_path)
    assert "FAILED" in report and f"alertname: {alert}" in report
    others = {
        "ClipGatewayHighLatency",
        "ClipGatewayHighErrorRatio",
        "ClipTargetDown",
        "ClipPredictorOverloaded",
        "ClipPredictorQueueSaturated",
    } - {alert}
    assert not any(f"alertname: {other}" in report for other in others)


@pytest.mark.usefixtures("starts_processes")
def test_disabled_alerts_are_left_out() -> None:
    objects = render(sets=["monitoring.prometheusRule.alerts.queueSaturated.enabled=false"])
    rules = one(objects, "PrometheusRule")["spec"]["groups"][0]["rules"]
    assert "ClipPredictorQueueSaturated" not in {r["alert"] for r in rules}


@pytest.mark.usefixtures("starts_processes")
def test_local_rule_file_is_fresh(tmp_path: Path) -> None:
    fresh = tmp_path / "rules.yml"
    result = run([str(ROOT / "scripts" / "render-rules.sh"), str(fresh)], env=None)
    assert result.returncode == 0, result.stderr
    assert (ROOT / "prometheus" / "rules.yml").read_text() == fresh.read_text(), (
        "prometheus/rules.yml is stale: run `make rules`"
    )


def test_local_prometheus_config_scrapes_the_stack_with_the_chart_jobs(variants: dict[str, Objects]) -> None:
    config_path = ROOT / "prometheus" / "prometheus.yml"
    result = run([tool("promtool"), "check", "config", str(config_path)])
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(config_path.read_text())
    targets = {c["job_name"]: c["static_configs"][0]["targets"] for c in config["scrape_configs"]}
    assert targets == {
        "clip-gateway": ["localhost:8000"],
        "clip-image": ["localhost:8001"],
        "clip-text": ["localhost:8002"],
    }
    chart_jobs = {
        r["replacement"]
        for o in variants["defaults"]
        if o["kind"] in {"ServiceMonitor", "PodMonitor"}
        for e in o["spec"].get("endpoints", o["spec"].get("podMetricsEndpoints"))
        for r in e["relabelings"]
        if r.get("targetLabel") == "job"
    }
    assert chart_jobs == set(targets) == JOBS


def test_ci_values_files_exist_for_the_main_variants() -> None:
    assert {p.name for p in CI_VALUES} == {
        "cpu-values.yaml",
        "no-monitoring-values.yaml",
        "knative-values.yaml",
        "ingress-tls-values.yaml",
        "keda-values.yaml",
        "text-on-cpu-values.yaml",
    }
