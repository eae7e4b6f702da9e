"""Run one tritonclient.grpc call in its own process and print the outcome as JSON.

tritonclient.grpc and kserve register the same `inference.*` protobuf symbols, so they cannot be
imported into one process; the tests (which import kserve) call this instead.
stdin: {"url", "model", "input", "datatype", "items": [base64, ...]}  stdout: JSON, see `main`.
"""

from __future__ import annotations

import base64
import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException


def main() -> None:
    spec = json.load(sys.stdin)
    client = grpcclient.InferenceServerClient(spec["url"])
    items = np.array([base64.b64decode(i) for i in spec["items"]], dtype=np.object_)
    tensor = grpcclient.InferInput(spec["input"], [len(items)], spec.get("datatype", "BYTES"))
    tensor.set_data_from_numpy(items)
    try:
        result = client.infer(spec["model"], [tensor])
    except InferenceServerException as e:
        json.dump({"status": e.status(), "message": e.message()}, sys.stdout)
        return
    params = result.get_response().parameters
    metadata = client.get_model_metadata(spec["model"], as_json=True)
    json.dump(
        {
            "embedding": result.as_numpy("embedding").tolist(),
            "parameters": {k: getattr(v, v.WhichOneof("parameter_choice")) for k, v in params.items()},
            "metadata": metadata,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
