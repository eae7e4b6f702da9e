import json
import os
import subprocess
import sys

import open_clip
import pytest
import torch

from demo import model as demo_model
from demo import shapes, train


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("clip-shapes")
    return out, train.train(out, steps=30, batch_size=48, threads=1)


def test_a_short_training_run_lowers_the_loss(short_run):
    _, result = short_run
    assert len(result.losses) == 30
    assert sum(result.losses[-5:]) / 5 < 0.9 * sum(result.losses[:5]) / 5


def test_the_output_loads_as_an_open_clip_local_dir_with_the_trained_preprocessing(short_run):
    out, _ = short_run
    ident = f"local-dir:{out}"
    model, _, preprocess = open_clip.create_model_and_transforms(ident)
    tokenizer = open_clip.get_tokenizer(ident)
    model.eval()
    assert model.visual.preprocess_cfg["mean"] == demo_model.PREPROCESS_CFG["mean"]
    assert (
        json.loads((out / "open_clip_config.json").read_text())["preprocess_cfg"] == demo_model.PREPROCESS_CFG
    )

    with torch.no_grad():
        image = model.encode_image(preprocess(shapes.draw("red", "circle", 0, 200)).unsqueeze(0))
        text = model.encode_text(tokenizer(shapes.captions()))
    assert image.shape == (1, 64) and text.shape == (len(shapes.captions()), 64)
    assert image.dtype == torch.float32


def test_weights_are_fp16_on_disk_and_readable_by_other_users(short_run):
    out, _ = short_run
    from safetensors import safe_open

    weights = out / "open_clip_model.safetensors"
    assert os.stat(weights).st_mode & 0o777 == 0o644
    with safe_open(str(weights), "pt") as f:
        assert f.get_tensor("visual.conv1.weight").dtype == torch.float16


def test_training_is_deterministic_for_a_seed_and_leaves_torch_settings_alone(tmp_path):
    threads = torch.get_num_threads()
    a = train.train(tmp_path / "a", steps=3, batch_size=16, seed=7, threads=1)
    b = train.train(tmp_path / "b", steps=3, batch_size=16, seed=7, threads=1)
    c = train.train(tmp_path / "c", steps=3, batch_size=16, seed=8, threads=1)
    assert a.losses == b.losses != c.losses
    weights = "open_clip_model.safetensors"
    assert (tmp_path / "a" / weights).read_bytes() == (tmp_path / "b" / weights).read_bytes()
    assert torch.get_num_threads() == threads
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.usefixtures("starts_processes")
def test_the_command_line_shows_progress_and_reports_held_out_accuracy(tmp_path):
    out = tmp_path / "m"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo.train",
            "--out",
            str(out),
            "--steps",
            "2",
            "--batch-size",
            "8",
            "--eval-per-class",
            "1",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "step 2/2" in proc.stderr and "it/s" in proc.stderr
    assert "held-out zero-shot top-1:" in proc.stdout
    assert (out / "open_clip_model.safetensors").is_file()
