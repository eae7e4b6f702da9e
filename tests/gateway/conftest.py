"""Fixtures: fake predictors, and TestClients over in-process gateways wired to them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.gateway.fakes import FakePredictors
from tests.support.gateway_clients import MakeClient, clients_over


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
