"""Call both predictors with tritonclient.grpc (raw bytes on the wire).

python examples/tritonclient_grpc.py  # IMAGE_/TEXT_PREDICTOR_GRPC, default localhost:9001 / :9002
"""

import os
from pathlib import Path

import numpy as np
import tritonclient.grpc as grpcclient

image_url = os.environ.get("IMAGE_PREDICTOR_GRPC", "localhost:9001")
text_url = os.environ.get("TEXT_PREDICTOR_GRPC", "localhost:9002")
image = Path("samples/red-circle.png").read_bytes()
texts = ["a photo of a red circle", "a photo of a blue square"]


def embed(url: str, model: str, name: str, items: list) -> np.ndarray:
    client = grpcclient.InferenceServerClient(url)
    tensor = grpcclient.InferInput(name, [len(items)], "BYTES")
    tensor.set_data_from_numpy(np.array(items, dtype=np.object_))
    return client.infer(model, [tensor]).as_numpy("embedding")


image_embedding = embed(image_url, "clip-image", "image", [image])
text_embeddings = embed(text_url, "clip-text", "text", texts)
for text, similarity in zip(texts, text_embeddings @ image_embedding[0], strict=True):
    print(f"{similarity:.4f}  {text}")
