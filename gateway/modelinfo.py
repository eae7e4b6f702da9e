"""The served model as `/v1/models` names it: an id made of the architecture and the weights."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import PurePosixPath

from gateway.predictor import PredictorClient

# How long a look at the predictor's model config is reused (a model swap shows within this).
TTL_S = 10.0


@dataclass(frozen=True)
class Model:
    """The served model: `id` (e.g. `ViT-B-32/laion2b_s34b_b79k`) and its embedding size."""

    id: str
    embed_dim: int | None


def model_id(arch: str, pretrained: str) -> str:
    """`arch/pretrained`; weights given as a file or directory are named by its last path part (no
    paths of the serving machine in an id), and random weights (`none`) by the architecture alone."""
    if pretrained in ("", "none"):
        return arch
    return f"{arch}/{PurePosixPath(pretrained.rstrip('/')).name or pretrained}"


class ModelInfo:
    """The text predictor's model, looked up at most every `TTL_S` seconds (both predictors serve the
    same model; a mismatch shows in the embeddings' dimensions)."""

    def __init__(self, client: PredictorClient) -> None:
        self.client = client
        self._model: Model | None = None
        self._at = 0.0
        self.created = int(time.time())

    async def model(self) -> Model:
        """The served model, or PredictorError when the predictor cannot say."""
        now = time.monotonic()
        if self._model is None or now - self._at > TTL_S:
            parameters = (await self.client.config())["parameters"]
            dim = parameters.get("embed_dim")
            self._model = Model(
                model_id(str(parameters.get("arch", "clip")), str(parameters.get("pretrained", ""))),
                dim if isinstance(dim, int) else None,
            )
            self._at = now
        return self._model
