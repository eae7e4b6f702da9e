from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from tests.gateway.fakes import IMAGE_URL, TEXT_URL, FakePredictors

MakeClient = Callable[..., TestClient]


@pytest.fixture
def fake() -> FakePredictors:
    return FakePredictors()


@contextmanager
def clients_over(fake: FakePredictors) -> Iterator[MakeClient]:
    """Make TestClients over gateways wired to `fake` (keyword arguments override settings); closed after."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = Settings(image_predictor_url=IMAGE_URL, text_predictor_url=TEXT_URL, **overrides)
        client = TestClient(create_app(settings, transport=fake.transport()), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in clients:
            client.__exit__(None, None, None)


@pytest.fixture
def make_client(fake: FakePredictors) -> Iterator[MakeClient]:
    """A TestClient over a gateway wired to `fake`; keyword arguments override settings."""
    with clients_over(fake) as make:
        yield make


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()
