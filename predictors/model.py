"""The part of `clip-image` and `clip-text` that is the same: a KServe model over a dynamic batcher.

Every infer response carries response-level `parameters`: `arch` (str), `pretrained` (str),
`embed_dim` (int) and `logit_scale` (the factor CLIP multiplies cosines by; a JSON number over REST, a
decimal string over gRPC, whose `InferParameter` has no floating-point field).
"""

from __future__ import annotations

import logging
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
from .loading import LoadedModel, load_model
from .metrics import INFERENCE_ERRORS, INVALID_INPUT, expose_at_zero
from .settings import Settings
from .threads import ThreadSplit, thread_count
from .v2wire import OUTPUT_NAME, embedding_response, read_elements

T = TypeVar("T")

logger = logging.getLogger(__name__)


class ClipModel(Model, Generic[T]):
    """One CLIP tower served over the Open Inference Protocol with dynamic batching.

    As in KServe, `load()` loads: the open_clip model, then the batcher sized for its device, then one
    warm-up pass; the model is ready after it. What it loaded is `loaded`.
    """

    input_name: ClassVar[str]
    loaded: LoadedModel
    threads: ThreadSplit
    batcher: DynamicBatcher[T]
    admission: Admission
    info: dict[str, Any]

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.model_name)
        self.settings = settings
        self._wedged = False
        expose_at_zero(settings.model_name)

    def load(self) -> bool:
        """Load the model, set up batching and warm up; raises `ModelLoadError` if it cannot be served."""
        s = self.settings
        threads = thread_count(s.num_threads)
        torch.set_num_threads(threads.count)  # loading and warm-up run on this thread
        self.loaded = loaded = load_model(s)
        self.info = {
            "arch": loaded.arch,
            "pretrained": loaded.pretrained,
            "embed_dim": loaded.embed_dim,
            "logit_scale": loaded.logit_scale,
        }
        self.threads = ThreadSplit.of(s.num_threads, s.forward_workers, loaded.device, threads)
        self._encode_numpy(self.warmup_items())
        self.threads = self.threads.one_thread_if_short(lambda: self._encode_numpy(self.warmup_items()))
        self.batcher = DynamicBatcher(
            self._encode_numpy,
            model_name=s.model_name,
            max_batch_size=s.max_batch_size,
            max_delay_s=s.max_batch_delay_ms / 1000,
            workers=self.threads.workers,
            before_pass=lambda alone: self.threads.before_pass(alone),
        )
        self.admission = Admission(s.model_name, s.max_queue_items)
        self.ready = True
        return self.ready

    def stall(self) -> str | None:
        """Why this model's forward passes are wedged (see `predictors.liveness`), or None."""
        if not self.ready:
            return None
        reason = self.batcher.progress.stall(self.settings.stall_timeout_s)
        if (reason is not None) != self._wedged:
            self._wedged = reason is not None
            if reason is not None:
                logger.error("%s is wedged, liveness fails until it progresses: %s", self.name, reason)
            else:
                logger.warning("%s progresses again; liveness passes", self.name)
        return None if reason is None else f"{self.name} is wedged: {reason}"

    @abstractmethod
    def warmup_items(self) -> list[T]:
        """Valid items for the warm-up forward pass."""

    @abstractmethod
    async def prepare(self, elements: list[Any]) -> list[T]:
        """Turn request elements into batchable items; raise `InvalidInput` naming a bad element."""

    @abstractmethod
    def encode(self, items: list[T]) -> torch.Tensor:
        """Embeddings [len(items), D] of one batch; runs in the batcher's thread."""

    def stop(self) -> None:
        if self.ready:
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
            INFERENCE_ERRORS.labels(self.name, INVALID_INPUT).inc()
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
                "torch_threads_source": self.threads.source,
                "stall_timeout_s": s.stall_timeout_s,
                "max_items": s.max_items,
                "max_queue_items": s.max_queue_items,
                **self.limits(),
            },
        }

    def limits(self) -> dict[str, int]:
        return {}
