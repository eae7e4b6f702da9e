"""The ONNX conversion at load: cached next to a writable model, keyed by its contents, never required."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from predictors.engines import onnx_export
from predictors.engines.openvino_tower import core
from predictors.loaded import LoadedModel
from predictors.loading import load_model
from predictors.quantize import LinearSelfAttention
from predictors.settings import read_settings
from tests.support.models import write_tiny_model


def loaded_from(model_dir: Path) -> LoadedModel:
    return load_model(read_settings("image", ["--model_dir", str(model_dir)]))


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process that has converted nothing yet."""
    monkeypatch.setattr(onnx_export, "_done", {})


@pytest.fixture
def model_dir(tmp_path: Path, tiny_dir: Path) -> Path:
    return shutil.copytree(tiny_dir, tmp_path / "tiny", ignore=shutil.ignore_patterns(onnx_export.CACHE_DIR))


def no_export(*args: object) -> None:
    raise AssertionError("converted again")


@pytest.mark.usefixtures("fresh")
def test_a_writable_model_dir_keeps_the_file_for_the_next_load(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = loaded_from(model_dir)
    path = onnx_export.onnx_file(loaded, "image", False)
    assert path.parent == model_dir / ".engine-cache" and path.name.startswith("image-")
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no partial file left
    assert onnx_export.onnx_file(loaded, "image", False) == path  # once per process
    monkeypatch.setattr(onnx_export, "_done", {})  # the next process
    monkeypatch.setattr(onnx_export, "export", no_export)
    assert onnx_export.onnx_file(loaded_from(model_dir), "image", False) == path


@pytest.mark.usefixtures("fresh")
def test_the_key_follows_the_weights_the_tower_and_its_axes(model_dir: Path, tmp_path: Path) -> None:
    loaded = loaded_from(model_dir)
    key = onnx_export.cache_key(loaded, "text", True)
    assert key != onnx_export.cache_key(loaded, "text", False)
    assert onnx_export.cache_key(loaded, "text", False) != onnx_export.cache_key(loaded, "image", False)
    assert key == onnx_export.cache_key(loaded_from(model_dir), "text", True)
    other = loaded_from(write_tiny_model(tmp_path / "other", seed=1))
    assert onnx_export.cache_key(other, "text", True) != key


@pytest.mark.usefixtures("fresh")
def test_a_read_only_model_dir_converts_into_a_temporary_dir(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(onnx_export.os, "access", lambda path, mode: False)  # as a read-only mount
    path = onnx_export.onnx_file(loaded_from(model_dir), "image", False)
    assert path.is_file() and model_dir not in path.parents
    assert path.parent.name.startswith("clip-engines-")


@pytest.mark.usefixtures("fresh")
def test_random_weights_convert_into_a_temporary_dir() -> None:
    loaded = load_model(read_settings("image", ["--arch", "RN50", "--pretrained", "none"]))
    assert loaded.source_files == ()
    assert onnx_export.cache_dir(loaded) is None


@pytest.mark.usefixtures("fresh")
def test_each_model_of_random_weights_gets_its_own_file(model_dir: Path, tmp_path: Path) -> None:
    # As two loads of `--pretrained none` in one process (the bench loads one per engine): same
    # architecture and versions, different weights, no file to key on.
    first, second = (
        dataclasses.replace(loaded_from(d), source_files=())
        for d in (model_dir, write_tiny_model(tmp_path / "other", seed=1))
    )
    path = onnx_export.onnx_file(first, "image", False)
    assert onnx_export.onnx_file(first, "image", False) == path  # once per model
    other = onnx_export.onnx_file(second, "image", False)
    assert other != path
    example = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.inference_mode():
        expected = second.model.encode_image(torch.from_numpy(example)).numpy()
    session = onnxruntime.InferenceSession(str(other), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"input": example})[0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.usefixtures("fresh")
def test_a_failed_write_to_the_cache_converts_for_this_process_only(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = onnx_export.export

    def full_volume(loaded: LoadedModel, kind: str, trim: bool, path: Path) -> None:
        if model_dir in path.parents:
            raise OSError(28, "No space left on device")
        real(loaded, kind, trim, path)

    monkeypatch.setattr(onnx_export, "export", full_volume)
    path = onnx_export.onnx_file(loaded_from(model_dir), "image", False)
    assert path.is_file() and model_dir not in path.parents


def test_openvino_is_imported_without_its_telemetry() -> None:
    core()
    assert sys.modules["openvino_telemetry"] is None


def test_the_traced_copy_shares_the_weights_and_leaves_the_model_as_it_is(model_dir: Path) -> None:
    model = load_model(read_settings("image", ["--model_dir", str(model_dir)])).model
    before = {name: p.data_ptr() for name, p in model.named_parameters()}
    traced = onnx_export.traceable(model)
    attentions = [m for m in traced.modules() if isinstance(m, LinearSelfAttention)]
    assert attentions and not any(isinstance(m, LinearSelfAttention) for m in model.modules())
    # a converted tower of a big model would otherwise hold a second copy of every weight while it exports
    assert {p.data_ptr() for p in traced.parameters()} <= set(before.values())
    assert {name: p.data_ptr() for name, p in model.named_parameters()} == before
