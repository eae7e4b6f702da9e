"""The part of `clip-image` and `clip-text` that is the same: a KServe model over a dynamic batcher.

Every infer response carries response-level `parameters`: `arch` (str), `pretrained` (str),
`embed_dim` (int) and `logit_scale` (the factor CLIP multiplies cosines by; a JSON number over REST, a
decimal string over gRPC, whose `InferParameter` has no floating-point field).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import torch
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest, InferResponse

from .admission import Admission
from .batching import DynamicBatcher
from .dataplane import PLATFORM
from .loading import LoadedModel
from .metrics import INFERENCE_ERRORS
from .protocol import OUTPUT_NAME, embedding_response, read_elements
from .settings import Settings
from .threads import ThreadSplit

T = TypeVar("T")


class ClipModel(Model, Generic[T]):
    """One CLIP tower served over the Open Inference Protocol with dynamic batching."""

    input_name: ClassVar[str]

    def __init__(self, settings: Settings, loaded: LoadedModel) -> None:
        super().__init__(settings.model_name)
        self.settings = settings
        self.loaded = loaded
        self.threads = ThreadSplit.of(settings.num_threads, settings.forward_workers, loaded.device)
        self.batcher: DynamicBatcher[T] = DynamicBatcher(
            self._encode_numpy,
            model_name=settings.model_name,
            max_batch_size=settings.max_batch_size,
            max_delay_s=settings.max_batch_delay_ms / 1000,
            workers=self.threads.workers,
            before_pass=lambda alone: self.threads.before_pass(alone),
        )
        self.admission = Admission(settings.model_name, settings.max_queue_items)
        self.info: dict[str, Any] = {
            "arch": loaded.arch,
            "pretrained": loaded.pretrained,
            "embed_dim": loaded.embed_dim,
            "logit_scale": loaded.logit_scale,
        }

    @abstractmethod
    def warmup_items(self) -> list[T]:
        """Valid items for the warm-up forward pass."""

    @abstractmethod
    async def prepare(self, elements: list[Any]) -> list[T]:
        """Turn request elements into batchable items; raise `InvalidInput` naming a bad element."""

    @abstractmethod
    def encode(self, items: list[T]) -> torch.Tensor:
        """Embeddings [len(items), D] of one batch; runs in the batcher's thread."""

    def load(self) -> bool:
        """Warm up with one forward pass (and choose the threads of a pass alone); then ready."""
        self._encode_numpy(self.warmup_items())
        self.threads = self.threads.fastest(lambda: self._encode_numpy(self.warmup_items()))
        self.ready = True
        return self.ready

    def stop(self) -> None:
        self.batcher.close()
        super().stop()

    def _encode_numpy(self, items: list[T]) -> np.ndarray:
        with torch.inference_mode():
            embeddings = self.encode(items).float()
            embeddings = torch.nn.functional.normalize(embeddings, dim=-1)
        return embeddings.cpu().numpy()

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> InferResponse:
        if not isinstance(payload, InferRequest):
            raise InvalidInput(
                "this model speaks the v2 Open Inference Protocol: POST /v2/models/{name}/infer"
            )
        try:
            elements = read_elements(payload, self.input_name, self.settings.max_items)
            with self.admission.slot(len(elements)):  # Overloaded (503) at once when too much is held
                items = await self.prepare(elements)
                embeddings = await self.batcher.submit(items)
        except InvalidInput:
            INFERENCE_ERRORS.labels(self.name, "invalid_input").inc()
            raise
        parameters = dict(self.info)
        if payload.from_grpc:
            parameters["logit_scale"] = repr(self.loaded.logit_scale)
        return embedding_response(payload, self.name, embeddings, parameters)

    def get_input_types(self) -> list[dict[str, Any]]:
        return [{"name": self.input_name, "datatype": "BYTES", "shape": [-1]}]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [{"name": OUTPUT_NAME, "datatype": "FP32", "shape": [-1, self.loaded.embed_dim]}]

    def config(self) -> dict[str, Any]:
        """What `GET /v2/models/{name}/config` answers: Triton-style config plus the CLIP parameters."""
        s = self.settings
        return {
            "name": self.name,
            "platform": PLATFORM,
            "max_batch_size": s.max_batch_size,
            "dynamic_batching": {"max_queue_delay_microseconds": int(s.max_batch_delay_ms * 1000)},
            "input": self.get_input_types(),
            "output": self.get_output_types(),
            "parameters": {
                **self.info,
                "device": str(self.loaded.device),
                "precision": str(self.loaded.dtype).removeprefix("torch."),
                "cpu_kernels": self.loaded.kernels,
                "forward_workers": self.threads.workers,
                "torch_threads": self.threads.total,
                "max_items": s.max_items,
                "max_queue_items": s.max_queue_items,
                **self.limits(),
            },
        }

    def limits(self) -> dict[str, int]:
        return {}
