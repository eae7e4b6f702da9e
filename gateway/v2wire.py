"""The Open Inference Protocol (KServe v2) bodies the gateway sends and reads.

Requests use the binary tensor data extension (no base64, no JSON number lists: the predictors parse
a small JSON header and the raw bytes), and ask for the embedding back in binary; a v2 server that
answers in plain JSON is read too.
"""

from __future__ import annotations

import json
import math
import struct
import sys
from array import array
from dataclasses import dataclass, field
from typing import Any

INFERENCE_HEADER = "inference-header-content-length"
OUTPUT = "embedding"


class MalformedResponse(ValueError):
    """A predictor answered 200 with a body that is not the embedding tensor we asked for."""


@dataclass(frozen=True)
class InferResult:
    """What one infer response carries: the rows of its `embedding` output and its response-level
    parameters (arch, pretrained, embed_dim, logit_scale)."""

    rows: list[list[float]]
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InferBody:
    """An infer request body with the binary tensor data extension: a JSON header, then raw tensors."""

    content: bytes
    header_length: int

    @property
    def headers(self) -> dict[str, str]:
        return {
            "content-type": "application/octet-stream",
            INFERENCE_HEADER: str(self.header_length),
        }


def _bytes_request(
    name: str, elements: list[bytes], request_id: str, parameters: dict[str, Any] | None = None
) -> InferBody:
    # BYTES elements, each behind its 4-byte little-endian length; the embedding comes back raw too.
    raw = b"".join(b for e in elements for b in (struct.pack("<I", len(e)), e))
    header = json.dumps(
        {
            "id": request_id,
            **({"parameters": parameters} if parameters else {}),
            "inputs": [
                {
                    "name": name,
                    "datatype": "BYTES",
                    "shape": [len(elements)],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": OUTPUT, "parameters": {"binary_data": True}}],
        }
    ).encode()
    return InferBody(header + raw, len(header))


def image_request(images: list[bytes], request_id: str) -> InferBody:
    """An infer body carrying each encoded image file as one BYTES element."""
    return _bytes_request("image", images, request_id)


def text_request(texts: list[str], request_id: str, token_counts: bool = False) -> InferBody:
    """An infer body carrying the texts as UTF-8 BYTES elements; with `token_counts`, it asks the text
    predictor for each text's token count (the response parameter `token_counts`)."""
    parameters = {"token_counts": True} if token_counts else None
    return _bytes_request("text", [t.encode() for t in texts], request_id, parameters)


def token_counts(result: InferResult) -> list[int]:
    """The token counts a text predictor reported (a comma-separated string, or a list); raise
    MalformedResponse when they are missing or do not fit the embeddings."""
    value = result.parameters.get("token_counts")
    if isinstance(value, str):
        value = value.split(",") if value else []
    try:
        counts = [int(n) for n in value] if isinstance(value, list) else None
    except (TypeError, ValueError):
        counts = None
    if counts is None or len(counts) != len(result.rows) or any(n < 0 for n in counts):
        raise MalformedResponse("the text predictor did not report a token count for each text")
    return counts


def read_response(content: bytes, header_length: int | None, expected_rows: int) -> InferResult:
    """The embeddings of an infer response: binary (`header_length` = its JSON header's size) or JSON."""
    if header_length is None:
        return parse_embeddings(_json(content), expected_rows)
    if not 0 < header_length <= len(content):
        raise MalformedResponse(f"{INFERENCE_HEADER} {header_length} does not fit a {len(content)}-byte body")
    header = _json(content[:header_length])
    try:
        output = next(o for o in header["outputs"] if o.get("name") == OUTPUT)
        size = int(output["parameters"]["binary_data_size"])
        datatype = output["datatype"]
    except (KeyError, TypeError, ValueError, AttributeError, StopIteration) as exc:
        raise MalformedResponse(f"no binary {OUTPUT} output in the response ({exc!r})") from exc
    raw = content[header_length:]
    if datatype != "FP32" or size != len(raw) or size % 4:
        raise MalformedResponse(f"{OUTPUT} is {datatype} of {size} bytes, {len(raw)} after the header")
    values = array("f", raw)
    if sys.byteorder == "big":
        values.byteswap()
    output["data"] = values.tolist()
    return parse_embeddings(header, expected_rows)


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError as exc:
        raise MalformedResponse(f"the response is not JSON ({exc})") from exc


def parse_embeddings(body: Any, expected_rows: int) -> InferResult:
    """Read the `embedding` output of an infer response; raise MalformedResponse if it is not one."""
    try:
        outputs = body["outputs"]
        output = next((o for o in outputs if o.get("name") == OUTPUT), outputs[0])
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
    return InferResult(
        rows=[data[i * dim : (i + 1) * dim] for i in range(rows)],
        parameters=parameters if isinstance(parameters, dict) else {},
    )
