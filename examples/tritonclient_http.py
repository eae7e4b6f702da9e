"""Call both predictors with tritonclient.http (binary tensor data for inputs and outputs).

python examples/tritonclient_http.py  # IMAGE_/TEXT_PREDICTOR_URL, default http://localhost:8001 / :8002
"""

import os
from pathlib import Path

import numpy as np
import tritonclient.http as httpclient

image_url = os.environ.get("IMAGE_PREDICTOR_URL", "http://localhost:8001").split("://")[-1]
text_url = os.environ.get("TEXT_PREDICTOR_URL", "http://localhost:8002").split("://")[-1]
image = Path("samples/red-circle.png").read_bytes()
texts = ["a photo of a red circle", "a photo of a blue square"]


def embed(url: str, model: str, name: str, items: list) -> tuple[np.ndarray, dict]:
    client = httpclient.InferenceServerClient(url)
    tensor = httpclient.InferInput(name, [len(items)], "BYTES")
    tensor.set_data_from_numpy(np.array(items, dtype=np.object_), binary_data=True)
    output = httpclient.InferRequestedOutput("embedding", binary_data=True)
    result = client.infer(model, [tensor], outputs=[output])
    return result.as_numpy("embedding"), result.get_response().get("parameters", {})


image_embedding, _ = embed(image_url, "clip-image", "image", [image])
text_embeddings, params = embed(text_url, "clip-text", "text", texts)
similarities = text_embeddings @ image_embedding[0]
print("embedding shape:", image_embedding.shape, "logit_scale:", round(float(params["logit_scale"]), 2))
for text, similarity in zip(texts, similarities, strict=True):
    print(f"{similarity:.4f}  {text}")
