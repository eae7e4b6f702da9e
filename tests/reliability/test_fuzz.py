"""Property-based fuzzing of the real gateway from its own OpenAPI schema (schemathesis): generated
valid and invalid requests never get a 5xx, and every response matches what the schema documents.

Schemathesis's data-acceptance checks are left out on purpose: the schema types `image` as a string,
and no JSON Schema can say "a base64 image CLIP can decode", so a schema-valid empty or random string
rightly gets a 400."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks
from schemathesis.schemas import BaseSchema

from tests.support.stack import LocalStack

from .conftest import API_KEY

pytestmark = pytest.mark.slow

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


schema = schemathesis.pytest.from_fixture("gateway_schema")


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_5xx_and_responses_match_the_schema(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=CHECKS)


def test_the_fuzzer_really_sent_its_requests(stack: LocalStack) -> None:
    text = httpx.get(f"{stack.gateway_url}/metrics", timeout=10).text
    sent = {
        handler: sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("http_requests_total{") and f'handler="{handler}"' in line
        )
        for handler in ("/compare/", "/embed/", "/embed_text/")
    }
    assert all(n >= 25 for n in sent.values()), sent
