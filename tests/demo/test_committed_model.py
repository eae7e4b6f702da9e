import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from demo import evaluate, samples, shapes
from demo import model as demo_model

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "models" / "clip-shapes"


@pytest.fixture(scope="module")
def loaded():
    return demo_model.load(MODEL_DIR)


def test_the_committed_model_directory_is_small_complete_and_world_readable():
    files = {p.name: p for p in MODEL_DIR.iterdir()}
    assert {"open_clip_config.json", "open_clip_model.safetensors", "README.md"} <= set(files)
    assert sum(p.stat().st_size for p in files.values()) < 10 * 1024 * 1024
    assert os.stat(files["open_clip_model.safetensors"]).st_mode & 0o444 == 0o444
    config = json.loads(files["open_clip_config.json"].read_text())
    assert config == {"model_cfg": demo_model.MODEL_CFG, "preprocess_cfg": demo_model.PREPROCESS_CFG}


@pytest.mark.parametrize("jpeg", [False, True], ids=["plain", "jpeg"])
def test_zero_shot_accuracy_on_held_out_drawings_is_at_least_95_percent(loaded, jpeg):
    items = shapes.heldout(4, seed=11)
    if jpeg:
        items = [(c, s, evaluate.jpeg_round_trip(im, 75)) for c, s, im in items]
    assert evaluate.accuracy(*loaded, items) >= 0.95


def test_each_sample_image_best_matches_its_documented_caption(loaded):
    model, preprocess, tokenizer = loaded
    readme = (ROOT / "samples" / "README.md").read_text()
    with torch.no_grad():
        text = model.encode_text(tokenizer(shapes.captions()), normalize=True)
        for sample in samples.SAMPLES:
            image = Image.open(ROOT / "samples" / sample.filename).convert("RGB")
            assert image.size == sample.size
            emb = model.encode_image(preprocess(image).unsqueeze(0), normalize=True)
            assert shapes.captions()[int((emb @ text.T).argmax())] == sample.caption
            assert f"`{sample.filename}`" in readme and sample.caption in readme


def test_shorter_phrasings_pick_the_right_class_too(loaded):
    model, preprocess, tokenizer = loaded
    image = preprocess(shapes.draw("yellow", "triangle", shapes.heldout_seed(3, 0), 128)).unsqueeze(0)
    texts = ["a yellow triangle", "a yellow square", "an orange triangle", "a green triangle"]
    with torch.no_grad():
        sims = (
            model.encode_image(image, normalize=True) @ model.encode_text(tokenizer(texts), normalize=True).T
        )
    assert int(sims.argmax()) == 0


def test_committed_samples_are_what_the_script_draws(tmp_path):
    samples.write(tmp_path)
    for name in [s.filename for s in samples.SAMPLES] + ["README.md"]:
        assert (tmp_path / name).read_bytes() == (ROOT / "samples" / name).read_bytes(), name


@pytest.mark.usefixtures("starts_processes")
def test_evaluate_command_prints_plain_and_jpeg_accuracy():
    proc = subprocess.run(
        [sys.executable, "-m", "demo.evaluate", "--model-dir", str(MODEL_DIR), "--per-class", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=ROOT,
    )
    assert "held-out zero-shot top-1 on 24 images:" in proc.stdout and "after JPEG" in proc.stdout
