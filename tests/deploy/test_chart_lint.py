"""helm lint --strict on every variant, and values.schema.json refusing bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.chart import CHART, CI_VALUES, helm_template, run, tool

pytestmark = pytest.mark.usefixtures("starts_processes")  # its tests start programs

VARIANTS = [None, *CI_VALUES]


@pytest.mark.parametrize("values", VARIANTS, ids=lambda v: v.name if v else "defaults")
def test_lint_strict_passes(values: Path | None) -> None:
    # forceApiVersions: lint the monitoring templates too (lint has no cluster to report the CRDs).
    argv = [tool("helm"), "lint", "--strict", str(CHART), "--set", "monitoring.forceApiVersions=true"]
    result = run(argv + (["-f", str(values)] if values else []))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("predictors.image.minReplicas=-1", "/predictors/image/minReplicas"),
        ("gateway.replicaCount=-2", "/gateway/replicaCount"),
        ("unknownKey=1", "additional properties 'unknownKey'"),
        ("gateway.replicas=3", "additional properties 'replicas'"),
        ('kserve.deploymentMode="Serverless"', "/kserve/deploymentMode"),
        ('predictor.model.storageUri="ftp://models/clip"', "/predictor/model/storageUri"),
        ('predictor.device="cuda"', "additional properties 'device'"),  # follows predictors.*.gpu.enabled
        ('predictor.autoscaling.scaleMetric="gpu"', "/predictor/autoscaling/scaleMetric"),
        ('kserve.knativeFeatureFlags=["kubernetes.podspec-hostnetwork"]', "/kserve/knativeFeatureFlags"),
        ("predictors.image.gpu.count=0", "/predictors/image/gpu/count"),
        ('monitoring.release="not a label"', "/monitoring/release"),
        ("gateway.service.port=70000", "/gateway/service/port"),
        ("monitoring.prometheusRule.alerts.gatewayErrors.threshold=5", "gatewayErrors/threshold"),
        ('monitoring.prometheusRule.alerts.targetDown.for="soon"', "targetDown/for"),
        ('gateway.apiKeys.keys=["a", "b c"]', "/gateway/apiKeys/keys"),
    ],
)
def test_schema_refuses_bad_values(setting: str, complaint: str) -> None:
    result = helm_template(sets=[setting])
    assert result.returncode != 0
    assert complaint in result.stderr, result.stderr


@pytest.mark.parametrize(
    "setting",
    [
        "predictor.model.storageUri=hf://laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
        "predictor.model.storageUri=pvc://models/clip-vit-b-32",
        "predictors.text.minReplicas=0",
        "monitoring.prometheusRule.alerts.targetDown.for=90s",
        "kserve.legacyDeploymentModeNames=true",
        "predictors.text.gpu.enabled=false",
        "predictors.image.stallTimeoutSeconds=45.5",
        "monitoring.release=kube-prometheus-stack",
    ],
)
def test_schema_accepts_good_values(setting: str) -> None:
    result = helm_template(sets=[setting])
    assert result.returncode == 0, result.stderr
