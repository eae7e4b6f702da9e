"""int8 towers (`--precision int8`): close to fp32, any batch and text length, demo accuracy kept."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import onnxruntime
import open_clip
import pytest
import torch

from demo import evaluate, shapes
from demo import model as demo_model
from predictors.engines.onnx_export import export_model
from predictors.engines.tower import INPUT
from predictors.quantize import quantize_onnx, quantize_torch, swap_attention
from predictors.text_encoding import encode_text, token_length
from tests.support.models import DEMO_MODEL_DIR, TINY_VIT

Encode = Callable[[torch.Tensor], torch.Tensor]
TEXTS = ["a red star", "a photo of a big blue circle on a grey background", "x", "an orange square"]


@pytest.fixture(scope="module")
def tiny_vit() -> open_clip.CLIP:
    torch.manual_seed(0)
    return open_clip.CLIP(**TINY_VIT).eval()


@pytest.fixture(scope="module")
def model(tiny_vit: open_clip.CLIP) -> open_clip.CLIP:
    return tiny_vit


@pytest.fixture(scope="module")
def demo() -> open_clip.CLIP:
    return demo_model.load(DEMO_MODEL_DIR)[0]


def images(n: int, model: open_clip.CLIP, seed: int = 0) -> torch.Tensor:
    size = model.visual.image_size
    height, width = (size, size) if isinstance(size, int) else size
    return torch.randn(n, 3, height, width, generator=torch.Generator().manual_seed(seed))


def tokens(texts: list[str]) -> torch.Tensor:
    return open_clip.get_tokenizer("ViT-B-32", context_length=16)(texts)


def session(path: Path) -> Callable[..., torch.Tensor]:
    run = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run
    return lambda **inputs: torch.from_numpy(run(None, {k: v.numpy() for k, v in inputs.items()})[0])


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory: pytest.TempPathFactory) -> Callable[[open_clip.CLIP, bool], list[Path]]:
    """The (image, text) ONNX files of a model, fp32 or int8, exported once per module."""
    done: dict[tuple[int, bool], list[Path]] = {}

    def files(model: open_clip.CLIP, int8: bool) -> list[Path]:
        if (id(model), False) not in done:
            workdir = tmp_path_factory.mktemp("onnx")
            done[id(model), False] = [
                export_model(model, tokens, k, k == "text", workdir / f"{k}.onnx") for k in ("image", "text")
            ]
        if int8 and (id(model), True) not in done:
            done[id(model), True] = [
                quantize_onnx(p, p.with_suffix(".int8.onnx")) for p in done[id(model), False]
            ]
        return done[id(model), int8]

    return files


def onnx_towers(paths: list[Path]) -> tuple[Encode, Encode]:
    """(image, text) encoders on ONNX Runtime; the text one trims tokens as the predictors do."""
    image, text = (session(p) for p in paths)
    return (lambda x: image(**{INPUT: x})), (lambda t: text(**{INPUT: t[:, : token_length(t)]}))


def min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a, b, dim=-1).min())


@torch.inference_mode()
def fp32_features(model: open_clip.CLIP) -> tuple[torch.Tensor, torch.Tensor]:
    return model.encode_image(images(8, model)), encode_text(model, tokens(TEXTS), trim=True)


@torch.inference_mode()
def test_torch_int8_embeddings_are_within_cosine_0_99_of_fp32_but_not_equal(model):
    image_fp32, text_fp32 = fp32_features(model)
    int8 = quantize_torch(copy.deepcopy(model))
    image_int8, text_int8 = int8.encode_image(images(8, model)), encode_text(int8, tokens(TEXTS), trim=True)
    assert min_cosine(text_int8, text_fp32) >= 0.99 and not torch.allclose(text_int8, text_fp32, atol=1e-5)
    assert min_cosine(image_int8, image_fp32) >= 0.99 and not torch.allclose(
        image_int8, image_fp32, atol=1e-5
    )


def test_onnx_int8_embeddings_are_within_cosine_0_99_of_fp32_but_not_equal(model, onnx_files):
    image_fp32, text_fp32 = fp32_features(model)
    image, text = onnx_towers(onnx_files(model, True))
    image_int8, text_int8 = image(images(8, model)), text(tokens(TEXTS))
    for int8, fp32 in ((image_int8, image_fp32), (text_int8, text_fp32)):
        assert min_cosine(int8, fp32) >= 0.99 and not torch.allclose(int8, fp32, atol=1e-5)
    fp32_file, int8_file = onnx_files(model, False)[1], onnx_files(model, True)[1]
    assert int8_file.stat().st_size < fp32_file.stat().st_size / 2


def test_fp32_onnx_towers_equal_open_clip_at_any_batch_size_and_text_length(tiny_vit, onnx_files):
    image, text = onnx_towers(onnx_files(tiny_vit, False))
    with torch.inference_mode():
        for n in (1, 7):
            x = images(n, tiny_vit, seed=n)
            torch.testing.assert_close(image(x), tiny_vit.encode_image(x), atol=1e-5, rtol=1e-4)
        for texts in (TEXTS[:1], TEXTS[2:3], TEXTS):  # 3, 1 and 11 real tokens
            t = tokens(texts)
            torch.testing.assert_close(text(t), tiny_vit.encode_text(t), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("engine", ["torch", "onnxruntime"])
def test_int8_item_alone_is_within_cosine_0_99_of_the_same_item_in_a_batch(tiny_vit, onnx_files, engine):
    # Activations are quantized per pass, so a row depends slightly on its batch-mates: close, not equal.
    if engine == "torch":
        int8 = quantize_torch(copy.deepcopy(tiny_vit))
        image, text = int8.encode_image, (lambda t: encode_text(int8, t, trim=True))
    else:
        image, text = onnx_towers(onnx_files(tiny_vit, True))
    with torch.inference_mode():
        batch = images(7, tiny_vit)
        alone = torch.cat([image(batch[i : i + 1]) for i in range(7)])
        assert min_cosine(alone, image(batch)) >= 0.99
        alone = torch.cat([text(tokens([t])) for t in TEXTS])
        assert min_cosine(alone, text(tokens(TEXTS))) >= 0.99


def test_attention_swapped_for_linear_layers_gives_the_same_fp32_embeddings(tiny_vit):
    swapped = swap_attention(copy.deepcopy(tiny_vit))
    with torch.inference_mode():
        x, t = images(4, tiny_vit), tokens(TEXTS)
        torch.testing.assert_close(swapped.encode_image(x), tiny_vit.encode_image(x), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(swapped.encode_text(t), tiny_vit.encode_text(t), atol=1e-5, rtol=1e-4)


def test_demo_zero_shot_accuracy_with_int8_is_within_1_point_of_fp32(demo, onnx_files):
    _, transform, tokenizer = demo_model.load(DEMO_MODEL_DIR)
    items = shapes.heldout(5, seed=1)
    fp32 = evaluate.accuracy(demo, transform, tokenizer, items)
    for int8 in (quantize_torch(copy.deepcopy(demo)), evaluate.OnnxClip(*onnx_files(demo, True))):
        assert abs(evaluate.accuracy(int8, transform, tokenizer, items) - fp32) <= 0.01, type(int8)


def test_evaluate_command_reports_the_engine_and_precision_it_measured(capsys):
    args = [
        "--model-dir",
        str(DEMO_MODEL_DIR),
        "--per-class",
        "1",
        "--engine",
        "torch",
        "--precision",
        "int8",
    ]
    assert evaluate.main(args) == 0
    assert "torch int8: held-out zero-shot top-1 on 24 images:" in capsys.readouterr().out
