"""Dockerfiles, plain manifests, docker-compose and kind files: linted, fresh, and saying what they should."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.deploy.chart import ROOT, run, tool

DOCKERFILES = ["Dockerfile.predictor", "Dockerfile.predictor-cpu", "Dockerfile.gateway"]


@pytest.mark.usefixtures("starts_processes")
@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_passes_hadolint(name: str) -> None:
    result = run([tool("hadolint"), str(ROOT / name)])
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def instructions(name: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / name).read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_every_stage_builds_on_the_base_image_argument(name: str) -> None:
    """The base is a build argument (python:3.11-slim, or a local stand-in), used by every stage."""
    steps = instructions(name)
    assert steps[0][0] == "ARG" and steps[0][1].startswith("PYTHON_IMAGE=python:3.11-slim")
    stages = [args for keyword, args in steps if keyword == "FROM"]
    assert stages and all(args.split()[0] == "${PYTHON_IMAGE}" for args in stages)


def test_dockerignore_sends_only_the_sources() -> None:
    lines = (ROOT / ".dockerignore").read_text().split()
    assert lines[lines.index("**")] == "**"
    assert {"!pyproject.toml", "!predictors/", "!gateway/"} <= set(lines)


@pytest.mark.usefixtures("starts_processes")
def test_manifests_equal_a_fresh_render(tmp_path: Path) -> None:
    result = run([str(ROOT / "scripts" / "render-manifests.sh"), str(tmp_path)])
    assert result.returncode == 0, result.stderr
    for name in ("clip-similarity.yaml", "monitoring.yaml"):
        assert (ROOT / "manifests" / name).read_text() == (tmp_path / name).read_text(), (
            f"manifests/{name} drifted from the chart: run `make manifests`"
        )


def test_manifests_split_the_operator_objects_from_the_rest() -> None:
    main = [d for d in yaml.safe_load_all((ROOT / "manifests" / "clip-similarity.yaml").read_text()) if d]
    monitoring = [d for d in yaml.safe_load_all((ROOT / "manifests" / "monitoring.yaml").read_text()) if d]
    assert {d["kind"] for d in monitoring} == {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert {d["kind"] for d in main} >= {"InferenceService", "Deployment", "Service", "NetworkPolicy"}
    assert all(d["metadata"]["namespace"] == "clip-similarity" for d in main + monitoring)
    assert not any(d["kind"] == "Pod" for d in main), "the helm test hook is not a manifest"


@pytest.mark.usefixtures("starts_processes")
def test_compose_file_is_valid_and_runs_the_three_programs() -> None:
    compose = ROOT / "docker-compose.yml"
    result = run([tool("docker-compose"), "-f", str(compose), "config"])
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert set(services) == {"clip-image", "clip-text", "gateway"}
    for key, port in (("image", 8001), ("text", 8002)):
        svc = services[f"clip-{key}"]
        assert svc["command"][:2] == ["-m", f"predictors.{key}"]
        assert svc["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
        assert svc["read_only"] is True
        assert f"127.0.0.1:{port}:8080/tcp" in svc["ports"], "published on loopback at make run's port"
    env = services["gateway"]["environment"]
    assert env["IMAGE_PREDICTOR_URL"] == "http://clip-image:8080"
    assert env["TEXT_PREDICTOR_URL"] == "http://clip-text:8080"
    assert "CPU only" in compose.read_text()


@pytest.mark.usefixtures("starts_processes")
def test_kind_path_is_complete() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    assert config["kind"] == "Cluster" and config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    up = (ROOT / "scripts" / "kind-up.sh").read_text()
    for step in (
        "kind create cluster",
        "kind load docker-image",
        "cert-manager",
        "deploymentMode=Standard",
        "ci/cpu-values.yaml",
        "condition=Ready",
    ):
        assert step in up, step
    assert "/compare/" in (ROOT / "scripts" / "kind-smoke.sh").read_text()
    for script in ("kind-up.sh", "kind-smoke.sh", "kind-down.sh", "render-manifests.sh", "render-rules.sh"):
        path = ROOT / "scripts" / script
        assert path.stat().st_mode & 0o111, f"{script} is not executable"
        assert run(["bash", "-n", str(path)]).returncode == 0, script
