"""Engine bundles: what `python -m predictors.bundle` writes, which directories load as one, what a bundle
cannot serve (refused with the reason), and a predictor without torch and without a bundle exiting with
the command that makes one. Served embeddings over every client form: test_clients and test_engine_parity."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from devtools.procs import PYTHON, ROOT
from predictors import bpe
from predictors.bundle import FORMAT, MANIFEST, TOWER_FILES, load
from predictors.bundle_export import BundleError, write_bundle
from predictors.engines import choose
from predictors.loaded import LoadedModel, ModelLoadError
from predictors.loading import load_model
from predictors.settings import Settings, read_settings
from predictors.threads import ThreadSplit
from tests.support.predictor_servers import WITHOUT_TORCH


def settings(model_dir: Path, *flags: str) -> Settings:
    return read_settings("image", ["--model_dir", str(model_dir), *flags])


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path) -> LoadedModel:
    return load_model(settings(tiny_dir))


def test_a_bundle_holds_both_towers_the_vocabulary_and_what_serving_needs(
    tiny_bundle: Path, tiny_dir: Path, tiny: LoadedModel
) -> None:
    manifest = json.loads((tiny_bundle / MANIFEST).read_text())
    config = json.loads((tiny_dir / "open_clip_config.json").read_text())
    assert manifest["format"] == FORMAT
    assert (manifest["arch"], manifest["pretrained"]) == ("custom", str(tiny_dir))
    assert manifest["embed_dim"] == config["model_cfg"]["embed_dim"]
    assert manifest["logit_scale"] == tiny.logit_scale
    preprocess = {k: v for k, v in config["preprocess_cfg"].items() if k != "size"}
    assert {k: manifest["preprocess_cfg"][k] for k in preprocess} == preprocess
    assert manifest["preprocess_cfg"]["size"] in (config["preprocess_cfg"]["size"], [32, 32])
    assert manifest["text"] == {
        "tokenizer": "clip-bpe",
        "vocab": bpe.VOCAB_FILE,
        "context_length": config["model_cfg"]["text_cfg"]["context_length"],
        "trim": True,
    }
    assert all(cosine >= 0.9999 for cosine in manifest["min_cosine_to_torch"].values())
    for name in [*TOWER_FILES.values(), bpe.VOCAB_FILE]:
        assert (tiny_bundle / name).stat().st_size > 0
    assert not list(tiny_bundle.glob("*.partial")) and not list(tiny_bundle.glob(".*"))


def test_a_directory_with_a_bundle_loads_it_where_it_has_no_weights(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    loaded = load(settings(tiny_bundle))
    assert loaded.model is None and loaded.bundle == tiny_bundle
    assert (str(loaded.device), loaded.image_size, loaded.trim) == ("cpu", (32, 32), True)

    both = shutil.copytree(tiny_bundle, tmp_path / "both")  # a model dir with a bundle beside its weights
    for name in ("open_clip_config.json", "open_clip_model.safetensors"):
        shutil.copy(Path(loaded.pretrained) / name, both / name)
    assert load(settings(both)).model is not None  # torch is installed here: open_clip's model


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "cuda"], "an engine bundle runs on the CPU, not --device cuda"),
        (
            ["--precision", "int8"],
            "an engine bundle runs at fp32; --precision int8 needs the model's weights",
        ),
    ],
)
def test_a_bundle_refuses_what_it_cannot_run(tiny_bundle: Path, flags: list[str], message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load(settings(tiny_bundle, *flags))


def test_a_bundle_without_torch_model_refuses_the_torch_engine(tiny_bundle: Path) -> None:
    forced = settings(tiny_bundle, "--engine", "torch")
    with pytest.raises(ModelLoadError, match="--engine torch needs open_clip's model"):
        choose(forced, load(forced), "image", ThreadSplit(1, 1, 1))


def test_a_broken_bundle_is_refused_naming_what_is_wrong(tiny_bundle: Path, tmp_path: Path) -> None:
    other = shutil.copytree(tiny_bundle, tmp_path / "other-format")
    manifest = json.loads((other / MANIFEST).read_text())
    (other / MANIFEST).write_text(json.dumps({**manifest, "format": FORMAT + 1}))
    with pytest.raises(
        ModelLoadError, match=f"bundle format {FORMAT + 1}; this predictor reads format {FORMAT}"
    ):
        load(settings(other))

    partial = shutil.copytree(tiny_bundle, tmp_path / "partial")
    (partial / "text.onnx").unlink()
    with pytest.raises(
        ModelLoadError, match=r"cannot serve the engine bundle in .*partial: it lacks text\.onnx"
    ):
        load(settings(partial))


def test_a_model_the_bundle_cannot_reproduce_is_refused(tiny: LoadedModel, tmp_path: Path) -> None:
    out = tmp_path / "refused"
    with pytest.raises(BundleError, match="its tokenizer is object; a bundle holds CLIP's BPE tokenizer"):
        write_bundle(dataclasses.replace(tiny, tokenizer=object()), out)
    cfg = dict(tiny.preprocess_cfg or {})
    with pytest.raises(BundleError, match=r"cannot be rebuilt without torch: .*interpolation"):
        write_bundle(dataclasses.replace(tiny, preprocess_cfg={**cfg, "interpolation": "lanczos"}), out)
    with pytest.raises(BundleError, match="its preprocessing differs from open_clip's on a 1x1 image"):
        write_bundle(dataclasses.replace(tiny, preprocess_cfg={**cfg, "mean": [0.1, 0.2, 0.3]}), out)
    assert not out.exists() or not any(out.iterdir())  # nothing is written for a refused model


@pytest.mark.usefixtures("starts_processes")
def test_the_command_writes_a_bundle_into_the_model_directory(tiny_dir: Path, tmp_path: Path) -> None:
    model_dir = shutil.copytree(tiny_dir, tmp_path / "model")
    done = subprocess.run(
        [PYTHON, "-m", "predictors.bundle", "--model_dir", str(model_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"wrote the engine bundle of custom (pretrained={model_dir}) to {model_dir}" in done.stderr
    assert json.loads((model_dir / MANIFEST).read_text())["format"] == FORMAT


@pytest.mark.usefixtures("starts_processes")
def test_a_predictor_without_torch_and_without_a_bundle_exits_saying_how_to_write_one(tiny_dir: Path) -> None:
    done = subprocess.run(
        [PYTHON, str(WITHOUT_TORCH), "predictors.text", "--model_dir", str(tiny_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    errors = [ln for ln in (done.stdout + done.stderr).splitlines() if "ERROR" in ln]
    assert len(errors) == 1, errors
    assert (
        f"torch is not installed here, so this predictor serves an engine bundle ({MANIFEST}), and model dir"
        in errors[0]
    )
    assert "write one with `python -m predictors.bundle --model_dir DIR`" in errors[0]
