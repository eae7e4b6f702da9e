"""The Open Inference Protocol (KServe v2) JSON bodies the gateway sends and reads."""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from typing import Any


class MalformedResponse(ValueError):
    """A predictor answered 200 with a body that is not the embedding tensor we asked for."""


@dataclass(frozen=True)
class Embeddings:
    """Rows of one `embedding` output, plus the response-level parameters (arch, logit_scale, ...)."""

    rows: list[list[float]]
    parameters: dict[str, Any] = field(default_factory=dict)


def image_request(image: bytes, request_id: str) -> bytes:
    """An infer body with the encoded image file as one base64 BYTES element."""
    # base64 is JSON-safe, so the (possibly large) element is spliced in without json.dumps.
    head = json.dumps({"id": request_id})[:-1].encode()
    return b"".join(
        (
            head,
            b', "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["',
            base64.b64encode(image),
            b'"]}]}',
        )
    )


def text_request(texts: list[str], request_id: str) -> bytes:
    """An infer body with the texts as UTF-8 BYTES elements."""
    body = {
        "id": request_id,
        "inputs": [{"name": "text", "datatype": "BYTES", "shape": [len(texts)], "data": texts}],
    }
    return json.dumps(body, ensure_ascii=False).encode()


def parse_embeddings(body: Any, expected_rows: int) -> Embeddings:
    """Read the `embedding` output of an infer response; raise MalformedResponse if it is not one."""
    try:
        outputs = body["outputs"]
        output = next((o for o in outputs if o.get("name") == "embedding"), outputs[0])
        rows, dim = (int(n) for n in output["shape"])
        data = output["data"]
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedResponse(f"no [N, D] embedding output in the response ({exc!r})") from exc
    if data and isinstance(data[0], list):  # nested rows are legal JSON tensors too
        data = [x for row in data for x in row]
    if rows != expected_rows or dim <= 0 or len(data) != rows * dim:
        raise MalformedResponse(
            f"embedding shape {[rows, dim]} with {len(data)} values, expected {expected_rows} rows"
        )
    if not all(isinstance(x, int | float) and math.isfinite(x) for x in data):
        raise MalformedResponse("embedding holds values that are not finite numbers")
    parameters = body.get("parameters")
    return Embeddings(
        rows=[data[i * dim : (i + 1) * dim] for i in range(rows)],
        parameters=parameters if isinstance(parameters, dict) else {},
    )
