"""Fixtures: the tiny model's in-process reference, and real predictor servers serving the tiny model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.procs import Program
from tests.support.predictor_servers import serve
from tests.support.tiers import process_fixture

from .media import Reference


@pytest.fixture(scope="session")
def tiny_ref(tiny_dir: Path) -> Reference:
    return Reference(tiny_dir)


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@process_fixture(scope="module")
def image_server(tiny_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("image", tiny_dir, log_dir)


@process_fixture(scope="module")
def text_server(tiny_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("text", tiny_dir, log_dir)
