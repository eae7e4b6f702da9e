"""Fixtures: the tiny model directory, its in-process reference, and real predictor servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.models import write_tiny_model
from tests.support.predictor_servers import start_predictor
from tests.support.procs import Server

from .media import Reference


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_ref(tiny_dir: Path) -> Reference:
    return Reference(tiny_dir)


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


def serve(kind: str, model_dir: Path, log_dir: Path, *args: str) -> Iterator[Server]:
    server = start_predictor(kind, model_dir, log_dir, args)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def image_server(tiny_dir: Path, log_dir: Path) -> Iterator[Server]:
    yield from serve("image", tiny_dir, log_dir)


@pytest.fixture(scope="module")
def text_server(tiny_dir: Path, log_dir: Path) -> Iterator[Server]:
    yield from serve("text", tiny_dir, log_dir)
