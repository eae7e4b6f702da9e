"""Fixtures: fake predictors, TestClients over in-process gateways wired to them, and (for the tests
through real processes) both real predictors on the tiny model."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devtools.procs import Program
from tests.gateway.fakes import FakePredictors
from tests.support.gateway_clients import MakeClient, clients_over
from tests.support.predictor_servers import start_predictor
from tests.support.tiers import process_fixture


@pytest.fixture
def anyio_backend() -> str:
    """The event loop of the `anyio`-marked tests: the gateway runs on asyncio."""
    return "asyncio"


@pytest.fixture
def fake() -> FakePredictors:
    return FakePredictors()


@pytest.fixture
def make_client(fake: FakePredictors) -> Iterator[MakeClient]:
    """A TestClient over a gateway wired to `fake`; keyword arguments override settings."""
    with clients_over(fake) as make:
        yield make


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@process_fixture(scope="module")
def predictors(tiny_dir: Path, logs: Path) -> Iterator[dict[str, Program]]:
    with ThreadPoolExecutor(2) as pool:  # both load their model at once
        futures = {kind: pool.submit(start_predictor, kind, tiny_dir, logs) for kind in ("image", "text")}
    try:
        yield {kind: future.result() for kind, future in futures.items()}
    finally:
        for future in futures.values():
            if future.exception() is None:
                future.result().stop()
