"""The demo model through the real gateway with each engine forced on both predictors: the right caption
still wins, and each predictor says which engine served it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from demo import shapes
from tests.support.models import DEMO_MODEL_DIR
from tests.support.stack import LocalStack, plan_stack, start_stack
from tests.support.tiers import process_fixture

from .test_demo_model import compare, png

ENGINES = {
    "torch": ["--engine", "torch", "--cpu_kernels", "torch"],
    "torch/onednn": ["--engine", "torch", "--cpu_kernels", "onednn"],
    "onnxruntime": ["--engine", "onnxruntime"],
    "openvino": ["--engine", "openvino"],
}


@process_fixture(scope="module", params=list(ENGINES))
def forced_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    log_dir = tmp_path_factory.mktemp("e2e-engine-logs")
    stack = start_stack(plan_stack(DEMO_MODEL_DIR, log_dir, ENGINES[request.param]))
    try:
        yield stack
    finally:
        stack.stop_all()


def test_zero_shot_with_each_engine(forced_stack: LocalStack) -> None:
    captions = shapes.captions()
    held_out = shapes.heldout(n_per_class=1, seed=7)
    correct = 0
    for colour, shape, image in held_out:
        body = compare(forced_stack.gateway_url, png(image), captions)
        best = max(range(len(captions)), key=body["probabilities"].__getitem__)
        correct += captions[best] == shapes.caption(colour, shape)
    assert correct / len(held_out) >= 0.95, f"{correct}/{len(held_out)} ranked the right caption first"
    flags = forced_stack.servers["clip-image"].argv[-4:]
    engine = flags[flags.index("--engine") + 1]
    for job in ("clip-image", "clip-text"):
        url = forced_stack.servers[job].url
        params = httpx.get(f"{url}/v2/models/{job}/config").json()["parameters"]
        assert params["engine"] == engine, params
