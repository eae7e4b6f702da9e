"""Property-based fuzzing of the real gateway from its own OpenAPI schema (schemathesis): generated
valid and invalid requests never get a 5xx, and every response matches what the schema documents.

Schemathesis's data-acceptance checks are left out on purpose: the schema types `image` as a string,
and no JSON Schema can say "a base64 image CLIP can decode", so a schema-valid empty or random string
rightly gets a 400."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks
from schemathesis.core.result import Ok
from schemathesis.schemas import BaseSchema

from tests.support.reliability import API_KEY
from tests.support.stack import LocalStack

AUTH = {"authorization": f"Bearer {API_KEY}"}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
]


@pytest.fixture(scope="module")
def gateway_schema(stack: LocalStack) -> BaseSchema:
    spec = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=10).json()
    loaded = schemathesis.openapi.from_dict(spec)
    loaded.config.update(base_url=stack.gateway_url, headers=AUTH, request_timeout=30)
    return loaded


MAX_EXAMPLES = 25  # per operation and generation mode


def fuzz(operation: Any, mode: GenerationMode) -> int:
    """Send MAX_EXAMPLES generated requests to one operation; how many were sent."""
    sent = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        nonlocal sent
        sent += 1
        case.call_and_validate(checks=CHECKS)

    check()
    return sent


# schemathesis's pytest plugin does not run under pytest 9: hypothesis drives each operation instead.
@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
def test_no_5xx_and_responses_match_the_schema(gateway_schema: BaseSchema, mode: GenerationMode) -> None:
    sent = {}
    for result in gateway_schema.get_all_operations():
        assert isinstance(result, Ok), result  # the schema itself is valid
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # GET /healthz and friends take no input that could be wrong
        sent[operation.label] = fuzz(operation, mode)
    posts = {label: n for label, n in sent.items() if label.startswith("POST")}
    assert set(posts) == {
        "POST /compare/",
        "POST /embed/",
        "POST /embed_text/",
        "POST /v1/embeddings",
    }, sent
    assert all(n >= MAX_EXAMPLES // 2 for n in posts.values()), sent
