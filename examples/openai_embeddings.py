"""Embed a text and an image through the gateway's OpenAI-compatible /v1/embeddings with the openai SDK.

python examples/openai_embeddings.py  # GATEWAY_URL, default http://localhost:8000
"""

import base64
import os

from openai import OpenAI

gateway = os.environ.get("GATEWAY_URL", "http://localhost:8000")
client = OpenAI(base_url=f"{gateway}/v1", api_key="unused")  # or one of GATEWAY_API_KEYS
model = client.models.list().data[0].id
with open("samples/red-circle.png", "rb") as f:
    image = "data:image/png;base64," + base64.b64encode(f.read()).decode()
response = client.embeddings.create(model=model, input=["a photo of a red circle", image])
text, picture = (d.embedding for d in response.data)
print(model, response.usage.prompt_tokens, len(text))
print("cosine:", round(sum(a * b for a, b in zip(text, picture, strict=True)), 4))
