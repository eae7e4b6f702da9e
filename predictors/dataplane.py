"""KServe's data plane with two fixes for CLIP models: binary BYTES stay bytes, and a platform name.

KServe 0.21 decodes every BYTES element sent with the binary tensor data extension (tritonclient.http,
kserve `InferenceRESTClient`) as UTF-8, so an encoded image fails with a 500 before the model sees it.
`ClipDataPlane` parses such requests itself and hands each element to the model as `bytes`; everything
else is KServe's own behaviour. Model metadata reports `platform: "open_clip"`. Liveness asks the model
whether its forward passes are wedged (`stall`) and raises `Wedged` (503) when they are.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import orjson
from kserve.errors import InvalidInput, ServerNotLive
from kserve.protocol.dataplane import DataPlane
from kserve.protocol.infer_type import InferInput, InferRequest, RequestedOutput, deserialize_bytes_tensor
from kserve.protocol.rest.v2_datamodels import InferenceRequest

INFERENCE_HEADER = "inference-header-content-length"
PLATFORM = "open_clip"


def _input(spec: Any, body: bytes, offset: int) -> tuple[InferInput, int]:
    if not isinstance(spec, dict) or not {"name", "shape", "datatype"} <= spec.keys():
        raise InvalidInput("each entry of 'inputs' needs 'name', 'shape' and 'datatype'")
    params = spec.get("parameters") or {}
    tensor = InferInput(
        name=spec["name"], shape=spec["shape"], datatype=str(spec["datatype"]), parameters=params
    )
    if spec.get("data") is not None:
        tensor.data = spec["data"]
        return tensor, offset
    size = params.get("binary_data_size")
    if not isinstance(size, int) or size < 0 or offset + size > len(body):
        raise InvalidInput(f"input '{spec['name']}' has no 'data' and no valid 'binary_data_size'")
    raw = body[offset : offset + size]
    if tensor.datatype == "BYTES":
        try:
            tensor.data = [bytes(e) for e in deserialize_bytes_tensor(raw)]
        except struct.error:
            raise InvalidInput(f"input '{spec['name']}': malformed length-prefixed BYTES data") from None
    else:
        # Private attribute, checked against kserve==0.21.0: where InferInput keeps raw tensor bytes.
        tensor._raw_data = raw
    return tensor, offset + size


def parse_binary_request(body: bytes, json_length: int, model_name: str) -> InferRequest:
    """An `InferRequest` from a REST body using the binary tensor data extension."""
    try:
        header = orjson.loads(body[:json_length])
    except orjson.JSONDecodeError as e:
        raise InvalidInput(f"the JSON part of the request is malformed: {e}") from None
    if not isinstance(header, dict) or not isinstance(header.get("inputs"), list):
        raise InvalidInput("the request needs an 'inputs' list")
    inputs, offset = [], json_length
    for spec in header["inputs"]:
        tensor, offset = _input(spec, body, offset)
        inputs.append(tensor)
    outputs = header.get("outputs")
    requested = (
        [
            RequestedOutput(name=o["name"], parameters=o.get("parameters"))
            for o in outputs
            if isinstance(o, dict) and "name" in o
        ]
        if isinstance(outputs, list)
        else None
    )
    return InferRequest(
        model_name=model_name,
        request_id=header.get("id"),
        parameters=header.get("parameters"),
        infer_inputs=inputs,
        request_outputs=requested or None,
    )


class Wedged(ServerNotLive):
    """Forward passes are wedged: the liveness endpoints answer 503 saying why (gRPC: UNAVAILABLE)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        # kserve==0.21.0's gRPC interceptor aborts with `ex.reason`, which ServerNotLive lacks.
        self.reason = str(self)


class ClipDataPlane(DataPlane):
    """KServe's `DataPlane`, keeping binary BYTES elements as bytes, with a liveness that checks `stall`.

    `stall()` returns why forward passes are wedged, or None while they progress.
    """

    def __init__(self, *args: Any, stall: Callable[[], str | None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._stall = stall

    async def live(self) -> dict[str, str]:
        reason = self._stall()
        if reason is not None:
            raise Wedged(reason)
        return await super().live()

    def decode_inference_request(
        self, body: bytes | InferenceRequest, headers: dict[str, str], model_name: str
    ) -> InferRequest:
        if isinstance(body, bytes):
            raw_length = headers.get(INFERENCE_HEADER)
            try:
                json_length = int(raw_length) if raw_length is not None else len(body)
            except ValueError:
                raise InvalidInput(f"header {INFERENCE_HEADER} is not an integer: {raw_length!r}") from None
            if not 0 < json_length <= len(body):
                raise InvalidInput(f"header {INFERENCE_HEADER}={json_length} does not fit the body")
            return parse_binary_request(body, json_length, model_name)
        return super().decode_inference_request(body, headers, model_name)

    async def model_metadata(self, model_name: str) -> dict[str, Any]:
        metadata = await super().model_metadata(model_name)
        return {**metadata, "platform": PLATFORM}
