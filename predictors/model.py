"""The part of `clip-image` and `clip-text` that is the same: a KServe model over a dynamic batcher.

Every infer response carries response-level `parameters`: `arch` (str), `pretrained` (str),
`embed_dim` (int) and `logit_scale` (the factor CLIP multiplies cosines by; a JSON number over REST, a
decimal string over gRPC, whose `InferParameter` has no floating-point field).
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
from abc import abstractmethod
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from kserve import Model
from kserve.errors import InvalidInput
from kserve.protocol.infer_type import InferRequest, InferResponse

from .admission import Admission
from .batching import DynamicBatcher
from .bundle import load
from .dataplane import PLATFORM
from .engines import Tower, Trial, choose
from .loaded import LoadedModel
from .memory import release_freed_memory
from .metrics import INFERENCE_ERRORS, INVALID_INPUT, expose_at_zero
from .settings import Settings
from .threads import ThreadSplit, set_torch_threads, thread_count
from .v2wire import OUTPUT_NAME, embedding_response, read_elements

T = TypeVar("T")

logger = logging.getLogger(__name__)


class ClipModel(Model, Generic[T]):
    """One CLIP tower served over the Open Inference Protocol with dynamic batching.

    As in KServe, `load()` loads: the open_clip model (or an engine bundle: `predictors.bundle`), then
    the tower's engine (`predictors.engines`: chosen by a trial on the model, or forced by flag), the
    threads, the batcher sized for its device, then warm-up passes; the model is ready after them. What
    it loaded is `loaded`; what runs it, `tower`.
    """

    input_name: ClassVar[str]
    loaded: LoadedModel
    tower: Tower
    trial: Trial
    threads: ThreadSplit
    batcher: DynamicBatcher[T]
    admission: Admission
    info: dict[str, Any]

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.model_name)
        self.settings = settings
        self._wedged = False
        self._pass = threading.local()  # `alone` of the pass the calling forward worker is about to run
        expose_at_zero(settings.model_name)

    def load(self) -> bool:
        """Load the model, set up batching and warm up; raises `ModelLoadError` if it cannot be served."""
        s = self.settings
        threads = thread_count(s.num_threads)
        set_torch_threads(threads.count)  # loading and warm-up run on this thread
        self.loaded = loaded = load(s)
        self.info = {
            "arch": loaded.arch,
            "pretrained": loaded.pretrained,
            "embed_dim": loaded.embed_dim,
            "logit_scale": loaded.logit_scale,
        }
        split = ThreadSplit.of(s.num_threads, s.forward_workers, loaded.device, threads)
        self.tower, self.trial = choose(s, loaded, s.kind, split)
        self.threads = self._probe_threads(split)
        self.tower.prepare()
        for alone in (True, False):  # warms what both kinds of pass run on
            self._encode_numpy(self.warmup_items(), alone)
        if self.tower.choice.engine != "torch" and loaded.model is not None:
            self._free_torch_model()
        release_freed_memory()
        self.batcher = DynamicBatcher(
            self._encode_numpy,
            model_name=s.model_name,
            max_batch_size=s.max_batch_size,
            max_delay_s=s.max_batch_delay_ms / 1000,
            workers=self.threads.workers,
            before_pass=self._before_pass,
        )
        self.admission = Admission(s.model_name, s.max_queue_items)
        self.ready = True
        return self.ready

    def _probe_threads(self, split: ThreadSplit) -> ThreadSplit:
        """`split`, or one thread everywhere if the chosen tower's 1-item pass on one thread is short
        (`ThreadSplit.one_thread_if_short`); a cut that changes the threads the trial ran on runs the
        trial again on the new ones (the model is small, so that is quick)."""
        if not split.probe:
            return split
        self.tower.use(ThreadSplit(split.workers, 1, 1))
        self._encode_numpy(self.warmup_items(), True)  # the first pass on a new thread count makes it
        cut = split.one_thread_if_short(lambda: self._encode_numpy(self.warmup_items(), True))
        if cut.shared != split.shared and self.trial.seconds:
            self.tower.close()
            self.tower, self.trial = choose(self.settings, self.loaded, self.settings.kind, cut)
        self.tower.use(cut)
        return cut

    def _free_torch_model(self) -> None:
        """Free the torch model's weights (both towers': open_clip loads the whole CLIP) once another
        engine serves: it runs its own copy, and nothing after load runs torch. What requests need of
        the model (its preprocessing, tokenizer and sizes) is kept."""
        self.read_from_model()
        import torch

        weights = sum(t.numel() * t.element_size() for t in self.loaded.model.state_dict().values())
        self.loaded = dataclasses.replace(self.loaded, model=torch.nn.Module())
        gc.collect()
        logger.info("%s runs the tower: freed torch's copy of the weights (%.0f MB)", self.tower.choice,
                    weights / 2**20)  # fmt: skip

    def read_from_model(self) -> None:
        """Read now what serving needs of `loaded.model` later: it is freed when another engine serves."""

    def _before_pass(self, alone: bool) -> None:
        """Run by the batcher in the forward worker's thread before each pass."""
        self.threads.before_pass(alone)  # torch's thread count is per OS thread
        self._pass.alone = alone

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
    def encode(self, items: list[T], alone: bool) -> np.ndarray:
        """Features [len(items), D] of one batch through `tower.encode`; runs in the batcher's thread.
        `alone`: no other pass runs beside this one (see `predictors.batching`)."""

    def stop(self) -> None:
        if self.ready:
            self.batcher.close()
        super().stop()

    def _encode_numpy(self, items: list[T], alone: bool | None = None) -> np.ndarray:
        if alone is None:
            alone = getattr(self._pass, "alone", True)
        features = self.encode(items, alone).astype(np.float32, copy=False)
        norms = np.linalg.norm(features, axis=-1, keepdims=True)
        return features / np.maximum(norms, np.float32(1e-12))  # as torch's `F.normalize`

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
                "model_format": "open_clip" if self.loaded.bundle is None else "engine bundle",
                "engine": self.tower.choice.engine,
                "cpu_kernels": self.tower.choice.kernels,
                "precision": self.tower.choice.precision,
                "engine_trial": str(self.trial),
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
