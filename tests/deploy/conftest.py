"""Each chart variant rendered once per test session with real helm."""

from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.chart import CHART, render

Objects = list[dict[str, Any]]


@pytest.fixture(scope="session")
def variants() -> dict[str, Objects]:
    """Defaults plus each ci/*-values.yaml, on a cluster that has the Prometheus Operator."""
    rendered = {"defaults": render()}
    for values in sorted((CHART / "ci").glob("*-values.yaml")):
        rendered[values.name.removesuffix("-values.yaml")] = render(values)
    return rendered
