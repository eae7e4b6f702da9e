"""Every way a model can fail to load is refused promptly with one clear message; fp16 weights load."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from huggingface_hub import constants
from safetensors.torch import load_file, save_file

from devtools.procs import PYTHON, ROOT, Program
from predictors.loaded import ModelLoadError
from predictors.loading import load_model
from predictors.settings import read_settings
from tests.support.models import TINY_VIT, write_model_dir
from tests.support.predictor_servers import serve
from tests.support.tiers import process_fixture

from .media import Reference, assert_same_embeddings, sample_images

LOAD_BOUND_S = 15.0
UNREACHABLE_HUB = "http://127.0.0.1:9"  # discard port: connection refused at once

# The demo model's shape: ResNet-style vision tower, small text tower.
RESNET: dict[str, object] = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "width": 16, "layers": [1, 1, 1, 1], "head_width": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def broken_dirs(root: Path, tiny_dir: Path) -> dict[str, tuple[Path, str]]:
    """{case: (model dir, expected message)}."""
    no_config = root / "no-config"
    no_config.mkdir()
    bad_json = shutil.copytree(tiny_dir, root / "bad-json")
    (bad_json / "open_clip_config.json").write_text("{not json")
    no_cfg_key = shutil.copytree(tiny_dir, root / "no-model-cfg")
    (no_cfg_key / "open_clip_config.json").write_text(json.dumps({"preprocess_cfg": {}}))
    no_weights = shutil.copytree(tiny_dir, root / "no-weights")
    (no_weights / "open_clip_model.safetensors").unlink()
    wrong_weights = shutil.copytree(tiny_dir, root / "wrong-weights")
    config = json.loads((wrong_weights / "open_clip_config.json").read_text())
    config["model_cfg"]["embed_dim"] = 32
    (wrong_weights / "open_clip_config.json").write_text(json.dumps(config))
    return {
        "missing": (root / "nowhere", "does not exist"),
        "no-config": (no_config, "has no open_clip_config.json"),
        "bad-json": (bad_json, "cannot read"),
        "no-model-cfg": (no_cfg_key, "has no 'model_cfg'"),
        "no-weights": (no_weights, "refusing to serve randomly initialised weights"),
        "wrong-weights": (wrong_weights, "size mismatch"),
    }


@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> dict[str, tuple[Path, str]]:
    return broken_dirs(tmp_path_factory.mktemp("broken"), tiny_dir)


@pytest.fixture
def unreachable_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(constants, "ENDPOINT", UNREACHABLE_HUB)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


@pytest.mark.parametrize(
    "case", ["missing", "no-config", "bad-json", "no-model-cfg", "no-weights", "wrong-weights"]
)
def test_broken_model_dir_is_refused(case: str, broken: dict[str, tuple[Path, str]]) -> None:
    model_dir, message = broken[case]
    with pytest.raises(ModelLoadError, match=message):
        load_model(read_settings("image", ["--model_dir", str(model_dir)]))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--arch", "ViT-Nope-99", "--pretrained", "none"], "unknown open_clip architecture 'ViT-Nope-99'"),
        (["--arch", "ViT-B-32"], "needs --pretrained"),
        (
            ["--arch", "ViT-B-32", "--pretrained", "no-such-tag"],
            "neither a checkpoint file nor a pretrained tag",
        ),
    ],
)
def test_bad_arch_or_pretrained_is_refused(args: list[str], message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_model(read_settings("text", args))


@pytest.mark.usefixtures("unreachable_hub")
def test_random_weights_are_the_same_in_every_load() -> None:
    # The image and the text predictor of `--pretrained none` load the model apart: they must agree.
    settings = read_settings("image", ["--arch", "RN50", "--pretrained", "none"])
    torch.manual_seed(1234)
    first = load_model(settings).model.state_dict()
    after = torch.rand(1)
    second = load_model(settings).model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    torch.manual_seed(1234)
    assert torch.equal(torch.rand(1), after)  # the caller's random numbers are left as they were


def test_tag_with_unreachable_hub_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match="laion2b_s34b_b79k"):
        load_model(read_settings("text", ["--arch", "ViT-B-32", "--pretrained", "laion2b_s34b_b79k"]))
    assert time.monotonic() - started < LOAD_BOUND_S


def test_checkpoint_file_loads(tiny_dir: Path, tiny_ref: Reference, tmp_path: Path) -> None:
    import open_clip

    arch_file = tmp_path / "tiny-test-arch.json"
    arch_file.write_text(json.dumps(TINY_VIT))
    open_clip.add_model_config(arch_file)  # registers the architecture under the file's stem
    args = ["--arch", "tiny-test-arch", "--pretrained", str(tiny_dir / "open_clip_model.safetensors")]
    loaded = load_model(read_settings("text", args))
    assert loaded.arch == "tiny-test-arch"
    assert loaded.pretrained.endswith("open_clip_model.safetensors")
    assert loaded.logit_scale == pytest.approx(tiny_ref.logit_scale)


def run_predictor(args: list[str], env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """Exit code and output lines of a predictor process that must exit by itself (the timeout catches
    one that hangs; how fast it fails, start-up cost aside, is test_tag_with_unreachable_hub_fails_fast)."""
    done = subprocess.run(
        [PYTHON, "-m", "predictors.image", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    return done.returncode, (done.stdout + done.stderr).splitlines()


@pytest.mark.usefixtures("starts_processes")
@pytest.mark.parametrize("case", ["missing", "no-weights"])
def test_process_exits_with_one_clear_line(case: str, broken: dict[str, tuple[Path, str]]) -> None:
    model_dir, message = broken[case]
    code, lines = run_predictor(["--model_dir", str(model_dir)])
    assert code != 0
    errors = [ln for ln in lines if "ERROR" in ln]
    assert len(errors) == 1 and message in errors[0], lines


@pytest.mark.usefixtures("starts_processes")
def test_process_with_unreachable_weights_exits_fast() -> None:
    env = {"HF_ENDPOINT": UNREACHABLE_HUB, "HF_HUB_OFFLINE": "0"}
    code, lines = run_predictor(["--arch", "ViT-B-32", "--pretrained", "laion2b_s34b_b79k"], env)
    assert code != 0
    errors = [ln for ln in lines if "ERROR" in ln]
    assert len(errors) == 1 and "laion2b_s34b_b79k" in errors[0], lines


@pytest.mark.usefixtures("starts_processes")
@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is usable here: --device cuda cannot fail")
@pytest.mark.parametrize("how", ["flag", "env"])
def test_device_cuda_without_usable_cuda_exits_naming_the_mismatch(how: str, tiny_dir: Path) -> None:
    args, env = ["--model_dir", str(tiny_dir)], {}
    if how == "flag":
        args += ["--device", "cuda"]
    else:
        env["CLIP_DEVICE"] = "cuda"
    code, lines = run_predictor(args, env)
    assert code != 0
    errors = [ln for ln in lines if "ERROR" in ln]
    assert len(errors) == 1, lines
    line = errors[0]
    assert "--device cuda but CUDA is not usable" in line
    assert f"built for CUDA {torch.version.cuda}" in line  # torch's CUDA build
    assert "R580+" in line and "no NVIDIA driver was found" in line  # the floor, and the driver here
    assert "--build-arg TORCH_INDEX_URL=" in line


@pytest.fixture(scope="module")
def fp16_resnet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = write_model_dir(tmp_path_factory.mktemp("models") / "resnet-fp16", RESNET, seed=3)
    weights = model_dir / "open_clip_model.safetensors"
    state = load_file(str(weights))
    save_file({k: v.half() if v.is_floating_point() else v for k, v in state.items()}, str(weights))
    return model_dir


@process_fixture(scope="module")
def resnet_server(fp16_resnet_dir: Path, log_dir: Path) -> Iterator[Program]:
    yield from serve("image", fp16_resnet_dir, log_dir)


def test_fp16_resnet_model_dir_serves_in_fp32(fp16_resnet_dir: Path, resnet_server: Program) -> None:
    import base64

    import httpx
    import numpy as np

    images = sample_images()
    body = {
        "inputs": [
            {
                "name": "image",
                "datatype": "BYTES",
                "shape": [len(images)],
                "data": [base64.b64encode(i).decode() for i in images],
            }
        ]
    }
    r = httpx.post(
        f"http://127.0.0.1:{resnet_server.ports['http']}/v2/models/clip-image/infer", json=body, timeout=60
    )
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert_same_embeddings(
        np.array(out["data"]).reshape(out["shape"]), Reference(fp16_resnet_dir).images(images)
    )
    config = httpx.get(f"http://127.0.0.1:{resnet_server.ports['http']}/v2/models/clip-image/config").json()
    assert config["parameters"]["precision"] == "fp32"  # the fp16 file is served as fp32
    assert config["parameters"]["engine"] in ("torch", "onnxruntime", "openvino")
    assert torch.float16 in {
        t.dtype for t in load_file(str(fp16_resnet_dir / "open_clip_model.safetensors")).values()
    }
