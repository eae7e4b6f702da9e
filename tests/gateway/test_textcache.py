"""The gateway's text-embedding cache over fake predictors that report a model identity."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.gateway.fakes import FakePredictors, infer_request, png
from tests.support.gateway_clients import MakeClient, clients_over
from tests.support.metrics import sample

LABELS = [f"a photo of a {c} {s}" for c in ("red", "green") for s in ("circle", "square", "star")]


@dataclass
class IdentifiedFakes(FakePredictors):
    """Fake predictors that report arch/pretrained, like the real ones; `arch` changes the model."""

    arch: str = "model-a"

    def seeds(self, name: str, elements: list[bytes]) -> list[bytes]:
        if self.arch == "model-a" or name == "image":
            return elements
        return [f"{self.arch}:".encode() + e for e in elements]  # another model: other text embeddings

    def identity(self) -> dict[str, str]:
        return {"arch": self.arch, "pretrained": "none"}


@pytest.fixture
def fakes() -> IdentifiedFakes:
    return IdentifiedFakes()


@pytest.fixture
def make(fakes: IdentifiedFakes) -> Iterator[MakeClient]:
    with clients_over(fakes) as make:
        yield make


def compare(client: TestClient, image: bytes, texts: list[str]) -> dict[str, Any]:
    r = client.post("/compare/", json={"image": base64.b64encode(image).decode(), "text": texts})
    assert r.status_code == 200, r.text
    return dict(r.json())


def text_calls(fakes: FakePredictors) -> list[list[str]]:
    return [[e.decode() for e in infer_request(r)[1]] for r in fakes.calls("text")]


def metric(client: TestClient, name: str) -> float:
    value = sample(client.get("/metrics").text, name)
    assert value is not None, f"{name} not in /metrics"
    return value


def test_zero_shot_labels_are_encoded_once_and_answers_match_the_uncached_gateway(make, fakes) -> None:
    cached, uncached = make(), make(gateway_text_cache_size=0)
    images = [png(colour=c) for c in ("red", "green", "blue")]
    answers = [compare(cached, image, LABELS) for image in images]
    assert text_calls(fakes) == [LABELS]  # the first request only
    assert answers == [compare(uncached, image, LABELS) for image in images]
    assert metric(cached, "gateway_text_cache_hits_total") == 2 * len(LABELS)
    assert metric(cached, "gateway_text_cache_misses_total") == len(LABELS)
    assert metric(cached, "gateway_text_cache_entries") == len(LABELS)


def test_only_texts_not_cached_are_sent_and_the_order_is_kept(make, fakes) -> None:
    cached, uncached = make(), make(gateway_text_cache_size=0)
    compare(cached, png(), ["a", "b"])
    answer = compare(cached, png(), ["c", "b", "a", "d"])
    assert text_calls(fakes) == [["a", "b"], ["c", "d"]]
    assert answer == compare(uncached, png(), ["c", "b", "a", "d"])


def test_a_single_text_is_cached_too(make, fakes) -> None:
    client = make()
    first = compare(client, png(), ["a red circle"])
    assert compare(client, png(), ["a red circle"]) == first
    assert len(fakes.calls("text")) == 1


def test_a_swapped_model_is_noticed_and_its_answers_are_fresh(make, fakes) -> None:
    cached, uncached = make(), make(gateway_text_cache_size=0)
    before = compare(cached, png(), LABELS)
    fakes.arch = "model-b"  # both predictors now serve another model behind the same URLs
    after = compare(cached, png(), LABELS)
    assert after == compare(uncached, png(), LABELS)
    assert after != before
    partly = compare(cached, png(), [*LABELS[:2], "a new text"])  # hits of model-b only
    assert partly == compare(uncached, png(), [*LABELS[:2], "a new text"])


def test_the_cache_is_bounded_and_evicts_the_least_recently_used(make, fakes) -> None:
    client = make(gateway_text_cache_size=2)
    for texts in (["a"], ["b"], ["a"], ["c"], ["a"], ["b"]):
        compare(client, png(), texts)
    assert text_calls(fakes) == [["a"], ["b"], ["c"], ["b"]]
    assert metric(client, "gateway_text_cache_entries") == 2


def test_a_predictor_that_reports_no_identity_is_never_cached(make_client, fake) -> None:
    client = make_client()
    for _ in range(3):
        compare(client, png(), ["a", "b"])
    assert len(fake.calls("text")) == 3
    assert metric(client, "gateway_text_cache_hits_total") == 0


def test_size_zero_turns_the_cache_off(make, fakes) -> None:
    client = make(gateway_text_cache_size=0)
    for _ in range(3):
        compare(client, png(), ["a", "b"])
    assert len(fakes.calls("text")) == 3
