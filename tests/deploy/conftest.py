"""Each chart variant rendered once per session with real helm; the real local stack, once per package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.chart import CHART, Objects, render
from tests.support.stack import LocalStack, plan_stack, start_stack
from tests.support.tiers import process_fixture


@process_fixture(scope="session")
def variants() -> dict[str, Objects]:
    """Defaults plus each ci/*-values.yaml, on a cluster that has the Prometheus Operator."""
    rendered = {"defaults": render()}
    for values in sorted((CHART / "ci").glob("*-values.yaml")):
        rendered[values.name.removesuffix("-values.yaml")] = render(values)
    return rendered


@process_fixture(scope="package")
def local_stack(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Both predictors (tiny model) and the gateway as real processes on 127.0.0.1, shared by the
    real-Prometheus tests of this package; stopped when the package's tests are done, even on failure."""
    tmp = tmp_path_factory.mktemp("stack")
    stack = start_stack(plan_stack(tiny_dir, tmp))
    try:
        yield stack
    finally:
        stack.stop_all()
