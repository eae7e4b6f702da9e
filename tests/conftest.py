"""Hooks and fixtures of the whole suite: the slow tier by rule (tests/support/tiers.py), the tiny model."""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import pytest

from tests.support.models import write_tiny_model
from tests.support.tiers import ProcessGuard, ProcessInFastTest, mark_slow_by_rule, process_fixture

GUARD = ProcessGuard()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_slow_by_rule(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    GUARD.begin(item)
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Fail a fast test that tried to start a process, even if the code under test caught the error."""
    try:
        result = yield
    finally:
        attempts = GUARD.end()
    if attempts:
        raise ProcessInFastTest(f"{item.nodeid} tried to start processes: {attempts}")
    return result


@process_fixture
def starts_processes() -> None:
    """Requested by a test whose own body starts processes: that places it in the slow tier."""


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny CLIP model directory (`write_tiny_model`), written once for the whole session."""
    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny")
