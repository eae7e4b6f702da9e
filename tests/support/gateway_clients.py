"""TestClients over in-process gateways wired to fake predictors (tests/gateway/fakes.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.settings import Settings
from tests.gateway.fakes import IMAGE_URL, TEXT_URL, FakePredictors

MakeClient = Callable[..., TestClient]


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
