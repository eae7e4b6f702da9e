"""The README's client examples run as written against the real predictors."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from devtools.procs import PYTHON, ROOT
from tests.support.stack import LocalStack


@pytest.mark.parametrize("example", ["tritonclient_http.py", "tritonclient_grpc.py", "kserve_clients.py"])
def test_client_example_scores_the_matching_caption_higher(stack: LocalStack, example: str) -> None:
    image, text = stack.servers["clip-image"], stack.servers["clip-text"]
    env = {
        **os.environ,
        "IMAGE_PREDICTOR_URL": image.url,
        "TEXT_PREDICTOR_URL": text.url,
        "IMAGE_PREDICTOR_GRPC": f"127.0.0.1:{image.ports['grpc']}",
        "TEXT_PREDICTOR_GRPC": f"127.0.0.1:{text.ports['grpc']}",
    }
    result = subprocess.run(
        [PYTHON, f"examples/{example}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # Each line: one score per protocol the example used, then the caption.
    scores = {
        line[line.index("a photo of") :]: [float(x) for x in re.findall(r"-?\d+\.\d{4}", line)]
        for line in result.stdout.splitlines()
        if "a photo of" in line
    }
    match, mismatch = scores["a photo of a red circle"], scores["a photo of a blue square"]
    assert all(m > n for m, n in zip(match, mismatch, strict=True)), result.stdout
    assert max(match) - min(match) < 1e-3, "REST and gRPC disagree"


def test_openai_example_finds_the_caption_close_to_its_image(stack: LocalStack) -> None:
    result = subprocess.run(
        [PYTHON, "examples/openai_embeddings.py"],
        cwd=ROOT,
        env={**os.environ, "GATEWAY_URL": stack.gateway_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    model_line, cosine_line = result.stdout.splitlines()
    assert model_line.split()[0] == "custom/clip-shapes", result.stdout
    assert float(cosine_line.split()[-1]) > 0.9, result.stdout
