"""Fixtures: fake predictors, the gateway's clients of them, TestClients over in-process gateways wired
to them, and (for the tests through real processes) both real predictors on the tiny model or the
local stack with slow image batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from devtools.procs import Program
from gateway.metrics import Metrics
from gateway.predictor import PredictorClient
from tests.gateway.fakes import IMAGE_URL, TEXT_URL, FakePredictors
from tests.support.gateway_clients import MakeClient, clients_over
from tests.support.predictor_servers import start_predictor
from tests.support.stack import LocalStack, plan_stack, start_stack
from tests.support.tiers import process_fixture


@pytest.fixture
def anyio_backend() -> str:
    """The event loop of the `anyio`-marked tests: the gateway runs on asyncio."""
    return "asyncio"


@pytest.fixture
def fake() -> FakePredictors:
    return FakePredictors()


async def _client_of(fake: FakePredictors, kind: str, url: str) -> AsyncIterator[PredictorClient]:
    client = PredictorClient(kind, url, f"clip-{kind}", 5.0, Metrics(), 8, fake.transport())
    yield client
    await client.aclose()


@pytest.fixture
async def image(fake: FakePredictors) -> AsyncIterator[PredictorClient]:
    """The gateway's client of the fake image predictor."""
    async for client in _client_of(fake, "image", IMAGE_URL):
        yield client


@pytest.fixture
async def text(fake: FakePredictors) -> AsyncIterator[PredictorClient]:
    """The gateway's client of the fake text predictor."""
    async for client in _client_of(fake, "text", TEXT_URL):
        yield client


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


@contextmanager
def slow_image_stack(tiny_dir: Path, log_dir: Path, gateway_env: dict[str, str]) -> Iterator[LocalStack]:
    """The local stack on the tiny model with the image predictor holding each batch open for 300 ms
    (`--max_batch_delay_ms`), so that its calls last as long as a real model's under load, and the
    gateway's settings overridden by `gateway_env`."""
    stack = plan_stack(tiny_dir, log_dir)
    image = stack.servers["clip-image"]
    image.argv = [*image.argv, "--max_batch_delay_ms", "300"]
    stack.servers["clip-gateway"].env.update(gateway_env)
    start_stack(stack)
    try:
        yield stack
    finally:
        stack.stop_all()
