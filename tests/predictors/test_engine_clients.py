"""Each engine, forced by flag, serves open_clip's own embeddings of the demo model through a real
predictor process to every client form (REST JSON, the binary extension, gRPC); the default chooses one
by a trial it shows; a forced engine that cannot serve stops the process with one clear line."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
from kserve import InferenceGRPCClient

from devtools.procs import PYTHON, ROOT, Program
from tests.support.models import DEMO_MODEL_DIR
from tests.support.predictor_servers import start_predictor
from tests.support.tiers import process_fixture

from .media import TEXTS, Reference, assert_same_embeddings, sample_images
from .test_clients import Tower, kserve_request

ENGINES = {  # what is forced: the flags, and the config's engine and cpu_kernels then
    "torch/onednn": (["--engine", "torch", "--cpu_kernels", "onednn"], "torch", "onednn"),
    "torch": (["--engine", "torch", "--cpu_kernels", "torch"], "torch", "torch"),
    "onnxruntime": (["--engine", "onnxruntime"], "onnxruntime", "onnxruntime"),
    "openvino": (["--engine", "openvino"], "openvino", "openvino"),
}


@pytest.fixture(scope="module")
def demo_ref() -> Reference:
    return Reference(DEMO_MODEL_DIR)


@process_fixture(scope="module", params=[(e, k) for e in ENGINES for k in ("image", "text")], ids=str)
def forced(request: pytest.FixtureRequest, demo_ref: Reference, log_dir: Path) -> Iterator[Tower]:
    engine, kind = request.param
    server = start_predictor(kind, DEMO_MODEL_DIR, log_dir, [*event_loop_flags(engine), *ENGINES[engine][0]])
    try:
        if kind == "image":
            images = sample_images()
            yield Tower(
                server,
                "clip-image",
                "image",
                images,
                demo_ref.images(images),
                demo_ref.logit_scale,
                str(DEMO_MODEL_DIR),
            )
        else:
            yield Tower(
                server,
                "clip-text",
                "text",
                TEXTS,
                demo_ref.texts(TEXTS),
                demo_ref.logit_scale,
                str(DEMO_MODEL_DIR),
            )
    finally:
        server.stop()


def event_loop_flags(engine: str) -> list[str]:
    # The torch servers run on asyncio, the others on the default (uvloop): every client form on both.
    return ["--event-loop", "asyncio"] if engine == "torch" else []


def engine_of(tower: Tower) -> str:
    argv = tower.server.argv
    return next(name for name, (flags, _, _) in ENGINES.items() if argv[-len(flags) :] == flags)


def test_rest_json(forced: Tower) -> None:
    data = [base64.b64encode(i).decode() if isinstance(i, bytes) else i for i in forced.items]
    body = {"inputs": [{"name": forced.input_name, "datatype": "BYTES", "shape": [len(data)], "data": data}]}
    r = httpx.post(f"http://{forced.http}/v2/models/{forced.model}/infer", json=body, timeout=60)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert_same_embeddings(np.array(out["data"]).reshape(out["shape"]), forced.expected)
    one = {"inputs": [{**body["inputs"][0], "shape": [1], "data": data[-1:]}]}  # another batch size (length)
    out = httpx.post(f"http://{forced.http}/v2/models/{forced.model}/infer", json=one, timeout=60).json()
    assert_same_embeddings(np.array(out["outputs"][0]["data"]).reshape(1, -1), forced.expected[-1:])


def test_binary_extension(forced: Tower) -> None:
    client = httpclient.InferenceServerClient(forced.http)
    tensor = httpclient.InferInput(forced.input_name, [len(forced.items)], "BYTES")
    tensor.set_data_from_numpy(forced.as_object_array(), binary_data=True)
    wanted = httpclient.InferRequestedOutput("embedding", binary_data=True)
    result = client.infer(forced.model, [tensor], outputs=[wanted])
    assert_same_embeddings(result.as_numpy("embedding"), forced.expected)


def test_grpc(forced: Tower) -> None:
    async def call() -> Any:
        client = InferenceGRPCClient(forced.grpc, timeout=60)
        try:
            return await client.infer(kserve_request(forced))
        finally:
            await client.close()

    assert_same_embeddings(asyncio.run(call()).outputs[0].as_numpy(), forced.expected)


def test_the_start_line_names_the_event_loop_served_on(forced: Tower) -> None:
    assert forced.server.log_path is not None
    serving = next(ln for ln in forced.server.log_path.read_text().splitlines() if "serving clip-" in ln)
    wanted = "asyncio" if event_loop_flags(engine_of(forced)) else "uvloop"
    assert serving.endswith(f"gRPC :{forced.grpc.rsplit(':', 1)[1]} on {wanted}"), serving


def test_config_names_the_forced_engine(forced: Tower) -> None:
    flags, engine, kernels = ENGINES[engine_of(forced)]
    params = httpx.get(f"http://{forced.http}/v2/models/{forced.model}/config").json()["parameters"]
    assert (params["engine"], params["cpu_kernels"], params["precision"]) == (engine, kernels, "fp32")
    assert params["engine_trial"] == f"none ({' '.join(flags)})"


@process_fixture(scope="module")
def chosen(log_dir: Path) -> Iterator[Program]:
    server = start_predictor("image", DEMO_MODEL_DIR, log_dir, ["--num_threads", "2"])
    try:
        yield server
    finally:
        server.stop()


def test_the_default_shows_its_trial_in_the_config_and_the_log(chosen: Program) -> None:
    params = httpx.get(f"{chosen.url}/v2/models/clip-image/config").json()["parameters"]
    parts = params["engine_trial"].split(", ")
    timed = [re.fullmatch(r"(.+) [\d.]+ ms \(alone [\d.]+ ms\)", part) for part in parts]
    labels = {m.group(1) for m in timed if m}
    assert len(labels) == len(timed), params["engine_trial"]  # each timed under load and alone
    assert labels == {"torch/onednn fp32", "torch fp32", "onnxruntime fp32", "openvino fp32"}, labels
    onednn = params["cpu_kernels"] == "onednn"
    label = f"{params['engine']}/onednn" if onednn else params["engine"]
    assert params["engine_trial"].startswith(f"{label} fp32 ")  # the fastest first: the one chosen
    log = chosen.log_path.read_text()
    trial_lines = [ln for ln in log.splitlines() if "engine trial" in ln]
    assert len(trial_lines) == 1 and f"chose {label} fp32" in trial_lines[0]
    assert "2 pass(es) at once" in trial_lines[0]  # two forward workers on two threads
    serving = next(ln for ln in log.splitlines() if "serving clip-image" in ln)
    assert f"with {label} fp32 (by trial)" in serving


@pytest.mark.usefixtures("starts_processes")
def test_a_forced_engine_that_cannot_serve_exits_with_one_clear_line() -> None:
    done = subprocess.run(
        [PYTHON, "-m", "predictors.text", "--model_dir", str(DEMO_MODEL_DIR), "--engine", "openvino",
         "--precision", "bf16"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    errors = [ln for ln in (done.stdout + done.stderr).splitlines() if "ERROR" in ln]
    assert len(errors) == 1, errors
    assert "cannot serve clip-text: --engine openvino runs on a CPU at fp32 or int8 only" in errors[0]
