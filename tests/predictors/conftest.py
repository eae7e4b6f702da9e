"""Fixtures: the tiny model's in-process reference, and real predictor servers serving the tiny model:
from its open_clip files, and from its engine bundle in processes without torch."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.procs import Program
from predictors.bundle_export import write_bundle
from predictors.loading import load_model
from predictors.settings import read_settings
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


@pytest.fixture(scope="session")
def tiny_bundle(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model's engine bundle, in a directory of its own (no weights beside it)."""
    directory = tmp_path_factory.mktemp("tiny-bundle")
    write_bundle(load_model(read_settings("image", ["--model_dir", str(tiny_dir)])), directory)
    return directory


@process_fixture(scope="module")
def bundle_image_server(tiny_bundle: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("image", tiny_bundle, log_dir, torch=False)


@process_fixture(scope="module")
def bundle_text_server(tiny_bundle: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("text", tiny_bundle, log_dir, torch=False)
