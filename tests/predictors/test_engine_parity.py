"""Every engine gives open_clip's own embeddings on the demo model, in this process: images at any batch
size, texts at any token length (trimmed as served), alone or beside another pass; and so does every
engine on the model's engine bundle, with the bundle's own preprocessing and tokenizer."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from predictors.bundle import load_bundle
from predictors.bundle_export import write_bundle
from predictors.engines import Choice, Tower, build, candidates
from predictors.loaded import LoadedModel
from predictors.loading import load_model
from predictors.settings import read_settings
from predictors.threads import ThreadSplit
from predictors.tokens import token_ids
from tests.support.models import DEMO_MODEL_DIR

from .media import Reference, assert_same_embeddings, distinct_image, encode

TEXTS = ["a red square", "a photo of a dog on the beach", "word " * 200, "a", "a blue star on a green field"]
SPLIT = ThreadSplit(workers=2, total=2, shared=1)


SETTINGS = read_settings("image", ["--model_dir", str(DEMO_MODEL_DIR)])


@pytest.fixture(scope="module")
def open_clip_model() -> LoadedModel:
    return load_model(SETTINGS)


@pytest.fixture(scope="module")
def bundle(open_clip_model: LoadedModel, tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    directory = tmp_path_factory.mktemp("bundle")
    write_bundle(open_clip_model, directory)
    return load_bundle(directory, SETTINGS)


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference(DEMO_MODEL_DIR)


def _choices(torch_model: bool) -> list[Choice]:
    return candidates(SETTINGS, torch.device("cpu"), torch_model)


CASES = [("open_clip", c) for c in _choices(True)] + [("bundle", c) for c in _choices(False)]


@pytest.fixture(scope="module", params=CASES, ids=lambda case: f"{case[0]}-{case[1]}")
def case(request: pytest.FixtureRequest) -> tuple[str, Choice]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def choice(case: tuple[str, Choice]) -> Choice:
    return case[1]


@pytest.fixture(scope="module")
def loaded(case: tuple[str, Choice], request: pytest.FixtureRequest) -> LoadedModel:
    return request.getfixturevalue("open_clip_model" if case[0] == "open_clip" else "bundle")  # type: ignore[no-any-return]


def test_every_engine_is_a_candidate_here() -> None:
    assert {c.engine for c in _choices(True)} == {"torch", "onnxruntime", "openvino"}
    assert {c.engine for c in _choices(False)} == {"onnxruntime", "openvino"}


def embed(tower: Tower, x: np.ndarray, alone: bool) -> np.ndarray:
    features = tower.encode(x, alone)
    assert isinstance(features, np.ndarray) and features.dtype == np.float32
    return features / np.linalg.norm(features, axis=-1, keepdims=True)


def test_image_embeddings(choice: Choice, loaded: LoadedModel, reference: Reference) -> None:
    tower = build(choice, loaded, "image", SPLIT)
    files = [encode(distinct_image(i, (40 + 3 * i, 50))) for i in range(7)]
    pixels = np.stack([np.asarray(loaded.preprocess(Image.open(io.BytesIO(f)))) for f in files])
    want = reference.images(files)
    for alone in (True, False):
        for rows in (slice(0, 1), slice(0, 7), slice(2, 5)):  # batch sizes 1, 7 and 3
            assert_same_embeddings(embed(tower, pixels[rows], alone), want[rows])


def test_text_embeddings_at_every_length(choice: Choice, loaded: LoadedModel, reference: Reference) -> None:
    tower = build(choice, loaded, "text", SPLIT)
    assert tower.trim  # the demo model's text tower runs at the batch's token length
    tokens = token_ids(loaded.tokenizer, TEXTS)
    want = reference.texts(TEXTS)
    for alone in (True, False):
        assert_same_embeddings(embed(tower, tokens, alone), want)  # the context's full length
        for i in range(len(TEXTS)):  # one text a batch: each its own length
            assert_same_embeddings(embed(tower, tokens[i : i + 1], alone), want[i : i + 1])
        assert_same_embeddings(embed(tower, tokens[[0, 3]], alone), want[[0, 3]])  # two short ones


def test_passes_beside_each_other(choice: Choice, loaded: LoadedModel, reference: Reference) -> None:
    tower = build(choice, loaded, "text", SPLIT)
    tokens = token_ids(loaded.tokenizer, TEXTS)
    want = reference.texts(TEXTS)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: embed(tower, tokens[i % 5 : i % 5 + 1], i % 2 == 0), range(20)))
    for i, got in enumerate(results):
        assert_same_embeddings(got, want[i % 5 : i % 5 + 1])


def test_a_new_split_keeps_the_embeddings(choice: Choice, loaded: LoadedModel, reference: Reference) -> None:
    tower = build(choice, loaded, "text", SPLIT)
    tokens = token_ids(loaded.tokenizer, TEXTS)
    for split in (ThreadSplit(2, 1, 1), ThreadSplit(1, 2, 2), SPLIT):
        tower.use(split)
        assert_same_embeddings(embed(tower, tokens, True), reference.texts(TEXTS))
    tower.close()


def test_prepare_makes_a_session_for_each_pass_that_may_run_at_once(open_clip_model: LoadedModel) -> None:
    from predictors.engines.ort_tower import OrtTower

    tower = build(
        Choice("onnxruntime", "onnxruntime", "fp32"), open_clip_model, "image", ThreadSplit(2, 4, 2)
    )
    assert isinstance(tower, OrtTower)
    tower.prepare()
    sessions = {threads: len(pool._idle) for threads, pool in tower._pools.items()}
    assert sessions == {4: 1, 2: 2}  # one pass alone on 4 threads; two at once on 2 each
    tower.use(ThreadSplit(2, 1, 1))
    tower.prepare()
    assert set(tower._pools) == {1} and tower._pools[1]._one is not None  # one session serves both
