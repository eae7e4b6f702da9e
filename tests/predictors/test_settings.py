"""Flags beat CLIP_* environment variables, which beat the defaults; bad values are refused."""

from __future__ import annotations

import pytest
from kserve import model_server

from predictors.settings import Settings, build_parser, read_settings


def test_defaults_per_predictor(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("CLIP_MAX_BATCH_SIZE", "CLIP_MAX_ITEMS", "CLIP_MAX_IMAGE_PIXELS", "CLIP_DEVICE"):
        monkeypatch.delenv(var, raising=False)
    image, text = read_settings("image", []), read_settings("text", [])
    assert (image.model_name, image.http_port, image.grpc_port) == ("clip-image", 8001, 9001)
    assert (text.model_name, text.http_port, text.grpc_port) == ("clip-text", 8002, 9002)
    assert (image.max_items, image.max_image_pixels, text.max_text_chars) == (64, 40_000_000, 2000)
    assert image.device == "auto" and image.precision == "auto" and not image.enable_latency_logging
    assert (image.forward_workers, text.forward_workers) == (0, 1)  # 0: chosen by device


def test_every_clip_flag_is_a_typed_setting() -> None:
    kserve_flags = {a.dest for a in model_server.parser._actions} | {"help"}  # private, Python 3.11.7
    clip_flags = {a.dest for a in build_parser("image")._actions} - kserve_flags
    assert clip_flags <= set(Settings.__dataclass_fields__)
    s = read_settings("image", ["--workers", "1", "--timeout-keep-alive", "7", "--enable_grpc", "false"])
    assert (s.workers, s.timeout_keep_alive, s.enable_grpc) == (1, 7, False)


def test_stall_timeout_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIP_STALL_TIMEOUT_S", raising=False)
    assert read_settings("image", []).stall_timeout_s == 120.0
    monkeypatch.setenv("CLIP_STALL_TIMEOUT_S", "30")
    assert read_settings("text", []).stall_timeout_s == 30.0
    assert read_settings("text", ["--stall_timeout_s", "5.5"]).stall_timeout_s == 5.5


def test_forward_workers_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIP_FORWARD_WORKERS", "3")
    assert read_settings("image", []).forward_workers == 3
    assert read_settings("image", ["--forward_workers", "2"]).forward_workers == 2


def test_cpu_kernels_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIP_CPU_KERNELS", raising=False)
    assert read_settings("image", []).cpu_kernels == "auto"  # decided at load (predictors.engines)
    monkeypatch.setenv("CLIP_CPU_KERNELS", "torch")
    assert read_settings("text", []).cpu_kernels == "torch"
    assert read_settings("text", ["--cpu_kernels", "onednn"]).cpu_kernels == "onednn"


def test_engine_flag_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLIP_ENGINE", raising=False)
    assert read_settings("image", []).engine == "auto"  # decided at load (predictors.engines)
    monkeypatch.setenv("CLIP_ENGINE", "openvino")
    assert read_settings("image", []).engine == "openvino"
    assert read_settings("text", ["--engine", "onnxruntime"]).engine == "onnxruntime"


def test_flag_beats_env_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLIP_MAX_BATCH_SIZE", "7")
    monkeypatch.setenv("CLIP_MAX_BATCH_DELAY_MS", "2.5")
    monkeypatch.setenv("CLIP_MODEL_DIR", "/models/from-env")
    s = read_settings("image", ["--max_batch_delay_ms", "9", "--http_port", "1234", "--model_name", "m"])
    assert (s.max_batch_size, s.max_batch_delay_ms) == (7, 9.0)
    assert str(s.model_dir) == "/models/from-env"
    assert (s.http_port, s.model_name) == (1234, "m")


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({"CLIP_MAX_ITEMS": "many"}, []),
        ({}, ["--max_batch_size", "0"]),
        ({"CLIP_DEVICE": "tpu"}, []),
        ({}, ["--forward_workers", "-1"]),
        ({"CLIP_NUM_THREADS": "-2"}, []),
        ({}, ["--cpu_kernels", "mkl"]),
        ({"CLIP_CPU_KERNELS": "mkl"}, []),
        ({}, ["--engine", "tensorrt"]),
        ({"CLIP_ENGINE": "tensorrt"}, []),
        ({"CLIP_PRECISION": "int4"}, []),
        ({}, ["--stall_timeout_s", "0"]),
    ],
)
def test_bad_values_are_refused(
    env: dict[str, str], args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as exit_info:
        read_settings("text", args)
    assert exit_info.value.code == 2
