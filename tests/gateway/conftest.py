from __future__ import annotations

from collections.abc import Callable, Iterator
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


@pytest.fixture
def make_client(fake: FakePredictors) -> Iterator[MakeClient]:
    """A TestClient over a gateway wired to `fake`; keyword arguments override settings."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        settings = Settings(image_predictor_url=IMAGE_URL, text_predictor_url=TEXT_URL, **overrides)
        client = TestClient(create_app(settings, transport=fake.transport()), raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: MakeClient) -> TestClient:
    return make_client()
