"""Open Inference Protocol requests and responses of the CLIP models: one BYTES input, one FP32 output."""

from __future__ import annotations

import math
import struct
import uuid
from typing import Any

import numpy as np
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import (
    InferInput,
    InferOutput,
    InferRequest,
    InferResponse,
    deserialize_bytes_tensor,
)

OUTPUT_NAME = "embedding"


def _flatten(data: Any) -> list[Any]:
    if isinstance(data, list | tuple | np.ndarray):
        return [e for d in data for e in _flatten(d)]
    return [data]


def _elements(tensor: InferInput) -> list[Any]:
    # `_raw_data` is private, checked against kserve==0.21.0: the gRPC request's raw_input_contents.
    if tensor._raw_data is not None:  # gRPC raw_input_contents: length-prefixed elements
        try:
            return list(deserialize_bytes_tensor(tensor._raw_data))
        except struct.error:
            raise InvalidInput(f"input '{tensor.name}': malformed length-prefixed BYTES data") from None
    return [] if tensor.data is None else _flatten(tensor.data)


def read_elements(request: InferRequest, input_name: str, max_items: int) -> list[Any]:
    """The elements (bytes or str) of the request's one BYTES input, checked against the limits."""
    names = [t.name for t in request.inputs]
    if names != [input_name]:
        raise InvalidInput(f"expected exactly one input named '{input_name}', got {names}")
    tensor = request.inputs[0]
    if tensor.datatype != "BYTES":
        raise InvalidInput(f"input '{input_name}' must have datatype BYTES, got {tensor.datatype}")
    elements = _elements(tensor)
    if not elements:
        raise InvalidInput(f"input '{input_name}' is an empty batch: send at least one element")
    if len(elements) > max_items:
        raise InvalidInput(
            f"input '{input_name}' has {len(elements)} elements, "
            f"more than the {max_items} allowed per request"
        )
    shape = list(tensor.shape)
    if shape not in ([len(elements)], [len(elements), 1]):
        raise InvalidInput(
            f"input '{input_name}' has shape {shape} but {len(elements)} elements; use shape [N] "
            f"(product {math.prod(shape) if shape else 0} != {len(elements)})"
        )
    return elements


def embedding_response(
    request: InferRequest, model_name: str, embeddings: np.ndarray, parameters: dict[str, Any]
) -> InferResponse:
    """An `InferResponse` carrying `embedding` FP32 [N, D] and the model's response parameters."""
    data = np.ascontiguousarray(embeddings, dtype=np.float32)
    output = InferOutput(name=OUTPUT_NAME, shape=list(data.shape), datatype="FP32", data=data)
    if request.from_grpc:
        # raw_output_contents; kserve's to_grpc cannot take an ndarray when the inputs came raw
        output.set_data_from_numpy(data, binary_data=True)
    return InferResponse(
        response_id=request.id or str(uuid.uuid4()),
        model_name=model_name,
        infer_outputs=[output],
        parameters=parameters,
        use_binary_outputs=request.use_binary_outputs,
        requested_outputs=request.request_outputs,
    )
