"""Call both predictors with KServe's own clients: InferenceRESTClient (v2) and InferenceGRPCClient.

python examples/kserve_clients.py  # REST at IMAGE_/TEXT_PREDICTOR_URL, gRPC at IMAGE_/TEXT_PREDICTOR_GRPC
"""

import asyncio
import os
from pathlib import Path

import numpy as np
from kserve import InferenceGRPCClient, InferenceRESTClient, RESTConfig
from kserve.protocol.infer_type import InferInput, InferRequest

image = Path("samples/red-circle.png").read_bytes()
IMAGE_URL = os.environ.get("IMAGE_PREDICTOR_URL", "http://localhost:8001")
TEXT_URL = os.environ.get("TEXT_PREDICTOR_URL", "http://localhost:8002")
IMAGE_GRPC = os.environ.get("IMAGE_PREDICTOR_GRPC", "localhost:9001")
TEXT_GRPC = os.environ.get("TEXT_PREDICTOR_GRPC", "localhost:9002")
texts = ["a photo of a red circle", "a photo of a blue square"]


def request(model: str, name: str, items: list) -> InferRequest:
    tensor = InferInput(name, [len(items)], "BYTES")
    tensor.set_data_from_numpy(np.array(items, dtype=np.object_))
    return InferRequest(model_name=model, infer_inputs=[tensor])


async def main() -> None:
    rest = InferenceRESTClient(RESTConfig(protocol="v2"))
    image_result = await rest.infer(
        IMAGE_URL, request("clip-image", "image", [image]), model_name="clip-image"
    )
    text_result = await rest.infer(TEXT_URL, request("clip-text", "text", texts), model_name="clip-text")
    rest_sims = text_result.outputs[0].as_numpy() @ image_result.outputs[0].as_numpy()[0]

    grpc_image, grpc_text = InferenceGRPCClient(IMAGE_GRPC), InferenceGRPCClient(TEXT_GRPC)
    image_result = await grpc_image.infer(request("clip-image", "image", [image]))
    text_result = await grpc_text.infer(request("clip-text", "text", texts))
    grpc_sims = text_result.outputs[0].as_numpy() @ image_result.outputs[0].as_numpy()[0]
    await rest.close()
    for text, a, b in zip(texts, rest_sims, grpc_sims, strict=True):
        print(f"REST {a:.4f}  gRPC {b:.4f}  {text}")


asyncio.run(main())
