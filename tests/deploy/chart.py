"""Render the chart with real helm and find the command-line tools the deploy tests need."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "clip-similarity"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
TOOLS_BIN = ROOT / ".tools" / "bin"
VENV_BIN = ROOT / ".venv" / "bin"
MONITORING_API = "monitoring.coreos.com/v1"
RELEASE = "clip"
NAMESPACE = "ml"
Objects = list[dict[str, Any]]  # Kubernetes objects as rendered


def tool(name: str) -> str:
    """Path of a tool: .tools/bin, then .venv/bin, then PATH. A missing tool fails the test (never skips)."""
    for folder in (TOOLS_BIN, VENV_BIN):
        if os.access(folder / name, os.X_OK):
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found in .tools/bin, .venv/bin or PATH: run `make tools`", pytrace=False)
    return found


def run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False, **kwargs)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def helm_template(
    *values_files: Path,
    sets: Sequence[str] = (),
    monitoring_api: bool = True,
    extra: Sequence[str] = (),
    chart: Path = CHART,
) -> subprocess.CompletedProcess[str]:
    """`helm template`. A `sets` value that is JSON goes through --set-json (`--set` makes 0.5 a string)."""
    argv = [tool("helm"), "template", RELEASE, str(chart), "--namespace", NAMESPACE]
    if monitoring_api:
        argv += ["--api-versions", MONITORING_API]
    for f in values_files:
        argv += ["-f", str(f)]
    for s in sets:
        argv += ["--set-json" if _is_json(s.partition("=")[2]) else "--set", s]
    return run([*argv, *extra])


def render(
    *values_files: Path, sets: Sequence[str] = (), monitoring_api: bool = True
) -> list[dict[str, Any]]:
    """The rendered objects (hooks included), or a test failure with helm's message."""
    result = helm_template(*values_files, sets=sets, monitoring_api=monitoring_api)
    if result.returncode != 0:
        pytest.fail(f"helm template failed:\n{result.stderr}", pytrace=False)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def isvc(objects: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The InferenceService of predictor `key` (image or text)."""
    return next(o for o in by_kind(objects, "InferenceService") if o["metadata"]["name"].endswith(f"-{key}"))


def gateway_env(objects: list[dict[str, Any]]) -> dict[str, Any]:
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def predictor_container(service: dict[str, Any]) -> dict[str, Any]:
    """The one container of an InferenceService's predictor (KServe adds its own beside it later)."""
    containers = service["spec"]["predictor"]["containers"]
    assert [c["name"] for c in containers] == ["kserve-container"]
    return containers[0]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


NOTES_WRAPPER = """apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  notes: {{ tpl (.Files.Get "notes.txt") . | toJson }}
"""


def render_notes(*values_files: Path, sets: Sequence[str] = (), monitoring_api: bool = True) -> str:
    """NOTES.txt as `helm install` prints it, rendered by `helm template` from a copy of the chart whose
    notes are evaluated inside a ConfigMap (`helm template` skips NOTES.txt, and `helm install --dry-run`
    needs a cluster)."""
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / CHART.name
        shutil.copytree(CHART, chart)
        (chart / "templates" / "NOTES.txt").rename(chart / "notes.txt")
        (chart / "templates" / "notes-wrapper.yaml").write_text(NOTES_WRAPPER)
        result = helm_template(
            *values_files,
            sets=sets,
            monitoring_api=monitoring_api,
            extra=["--show-only", "templates/notes-wrapper.yaml"],
            chart=chart,
        )
    if result.returncode != 0:
        pytest.fail(f"helm template failed:\n{result.stderr}", pytrace=False)
    notes: str = yaml.safe_load(result.stdout)["data"]["notes"]
    return notes
