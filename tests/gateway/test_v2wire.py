"""The gateway reads embeddings sent with the binary tensor data extension, and plain JSON ones."""

from __future__ import annotations

import json
import struct

import pytest

from gateway.v2wire import MalformedResponse, read_response

ROWS = [[0.5, -0.25, 1.0], [0.0, 2.0, -1.5]]  # exact in float32


def binary(rows: list[list[float]], datatype: str = "FP32", size: int | None = None) -> tuple[bytes, int]:
    raw = struct.pack(f"<{len(rows) * len(rows[0])}f", *(x for row in rows for x in row))
    output = {
        "name": "embedding",
        "datatype": datatype,
        "shape": [len(rows), len(rows[0])],
        "parameters": {"binary_data_size": len(raw) if size is None else size},
    }
    header = json.dumps({"outputs": [output], "parameters": {"logit_scale": 100.0}}).encode()
    return header + raw, len(header)


def test_binary_embeddings_and_parameters_are_read() -> None:
    got = read_response(*binary(ROWS), expected_rows=2)
    assert got.rows == ROWS
    assert got.parameters == {"logit_scale": 100.0}


def test_a_json_answer_is_read_too() -> None:
    body = {"outputs": [{"name": "embedding", "datatype": "FP32", "shape": [2, 3], "data": ROWS}]}
    assert read_response(json.dumps(body).encode(), None, expected_rows=2).rows == ROWS


@pytest.mark.parametrize(
    ("content", "header_length", "problem"),
    [
        (*binary(ROWS, size=20), "24 after the header"),  # the header lies about the size
        (*binary(ROWS, datatype="FP16"), "FP16"),
        (binary(ROWS)[0], 10_000, "does not fit"),
        (b"{not json", 9, "not JSON"),
        (b'{"outputs": []}', 15, "no binary embedding output"),
    ],
)
def test_malformed_binary_answers_are_refused(content: bytes, header_length: int, problem: str) -> None:
    with pytest.raises(MalformedResponse, match=problem):
        read_response(content, header_length, expected_rows=2)


def test_a_row_count_other_than_asked_is_refused() -> None:
    with pytest.raises(MalformedResponse, match="expected 3 rows"):
        read_response(*binary(ROWS), expected_rows=3)
