"""The gateway as users run it: `python -m gateway` over both real predictors on a tiny CLIP, on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import math
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from devtools.procs import Program
from tests.gateway.stall import StallingServer
from tests.support.predictor_servers import start_predictor
from tests.support.stack import gateway_server
from tests.support.tiers import process_fixture

KEY = "test-key-1"
AUTH = {"authorization": f"Bearer {KEY}"}
MAX_BYTES = 3_000_000
TEXTS = ["a red square", "a blue circle", "a green triangle"]


def image_file(colour: str = "red", size: int = 48, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, fmt)
    return buf.getvalue()


def noise_png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, "PNG")
    return buf.getvalue()


@process_fixture(scope="module")
def api(predictors: dict[str, Program], logs: Path) -> Iterator[httpx.Client]:
    server = gateway_server(
        predictors["image"].url,
        predictors["text"].url,
        logs,
        GATEWAY_API_KEYS=f"{KEY},other-key",
        GATEWAY_MAX_IMAGE_BYTES=str(MAX_BYTES),
    ).start()
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=30) as client:
        yield client
    # Graceful: uvicorn finishes, then re-raises the SIGTERM it caught (no SIGKILL was needed).
    assert server.stop() in (0, -signal.SIGTERM), server.log_tail()


@pytest.mark.usefixtures("starts_processes")
def test_a_fresh_gateway_exports_the_series_alerts_and_panels_read_at_zero(logs: Path) -> None:
    # /metrics needs no predictor: nothing listens at these URLs, and no request has been served yet.
    server = gateway_server("http://127.0.0.1:9", "http://127.0.0.1:9", logs).start()
    try:
        text = httpx.get(f"{server.url}/metrics", timeout=10).text
    finally:
        server.stop()
    values: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            values.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    reasons = ("unreachable", "timeout", "not_ready", "bad_request", "not_found", "server_error")
    reasons += ("bad_response", "overloaded")
    assert values["predictor_errors_total"] == {
        (("predictor", p), ("reason", r)): 0.0 for p in ("image", "text") for r in reasons
    }
    assert values["predictor_request_duration_seconds_count"] == {
        (("predictor", "image"),): 0.0,
        (("predictor", "text"),): 0.0,
    }
    routes = ("/compare/", "/embed/", "/embed_text/")
    api = {k: v for k, v in values["http_requests_total"].items() if dict(k)["handler"] in routes}
    assert api == {
        (("handler", h), ("http_status", code), ("method", "POST")): 0.0
        for h in routes
        for code in ("200", "500", "502", "503", "504")
    }
    durations = values["http_request_duration_seconds_count"]
    assert all(durations[(("handler", h), ("method", "POST"))] == 0.0 for h in routes)
    for name in ("gateway_rejected_requests_total", "gateway_text_cache_hits_total"):
        assert values[name] == {(): 0.0}
    assert values["gateway_text_cache_misses_total"] == values["gateway_text_cache_entries"] == {(): 0.0}


def direct_embeddings(server: Program, name: str, data: list[str]) -> tuple[list[list[float]], dict]:
    body = {"inputs": [{"name": name, "datatype": "BYTES", "shape": [len(data)], "data": data}]}
    r = httpx.post(f"{server.url}/v2/models/clip-{name}/infer", json=body, timeout=30)
    r.raise_for_status()
    out = r.json()["outputs"][0]
    n, d = out["shape"]
    return [out["data"][i * d : (i + 1) * d] for i in range(n)], r.json().get("parameters", {})


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


def compare_multipart(client: httpx.Client, image: bytes, texts: list[str], **kw) -> httpx.Response:
    return client.post(
        "/compare/", files={"image": ("x.png", image, "image/png")}, data={"text": texts}, **kw
    )


def test_similarity_is_the_cosine_of_the_predictors_embeddings(api: httpx.Client, predictors) -> None:
    image = image_file("red")
    r = compare_multipart(api, image, ["a red square"])
    assert r.status_code == 200, r.text
    (image_vec,), _ = direct_embeddings(predictors["image"], "image", [base64.b64encode(image).decode()])
    (text_vec,), _ = direct_embeddings(predictors["text"], "text", ["a red square"])
    assert r.json().keys() == {"similarity"}
    assert math.isclose(r.json()["similarity"], cosine(image_vec, text_vec), abs_tol=1e-5)
    timing = r.headers["server-timing"]
    assert "image;dur=" in timing and "text;dur=" in timing


def test_probabilities_are_softmax_of_the_predictors_logit_scale(api: httpx.Client, predictors) -> None:
    image = image_file("blue")
    r = compare_multipart(api, image, TEXTS)
    assert r.status_code == 200, r.text
    (image_vec,), _ = direct_embeddings(predictors["image"], "image", [base64.b64encode(image).decode()])
    text_vecs, params = direct_embeddings(predictors["text"], "text", TEXTS)
    sims = [cosine(image_vec, t) for t in text_vecs]
    assert all(math.isclose(a, b, abs_tol=1e-5) for a, b in zip(r.json()["similarities"], sims, strict=True))
    exps = [math.exp(params["logit_scale"] * s) for s in sims]
    probs = r.json()["probabilities"]
    assert all(math.isclose(p, e / sum(exps), abs_tol=1e-4) for p, e in zip(probs, exps, strict=True))
    assert math.isclose(sum(probs), 1.0, abs_tol=1e-9)


def test_json_and_multipart_agree(api: httpx.Client) -> None:
    image = image_file("green", fmt="JPEG")
    b64 = base64.b64encode(image).decode()
    by_form = compare_multipart(api, image, TEXTS).json()
    by_json = api.post("/compare/", json={"image": b64, "text": TEXTS}).json()
    by_uri = api.post("/compare/", json={"image": f"data:image/jpeg;base64,{b64}", "text": TEXTS}).json()
    for a, b in ((by_form, by_json), (by_form, by_uri)):
        assert all(
            math.isclose(x, y, abs_tol=1e-6)
            for x, y in zip(a["similarities"], b["similarities"], strict=True)
        )
    one = compare_multipart(api, image, TEXTS[:1]).json()
    assert math.isclose(
        one["similarity"],
        api.post("/compare/", json={"image": b64, "text": TEXTS[0]}).json()["similarity"],
        abs_tol=1e-6,
    )


def test_embed_endpoints_return_the_predictors_embeddings(api: httpx.Client, predictors) -> None:
    image = image_file("yellow")
    (image_vec,), _ = direct_embeddings(predictors["image"], "image", [base64.b64encode(image).decode()])
    got = api.post("/embed/", files={"image": ("y.png", image, "image/png")}).json()["embedding"]
    assert all(math.isclose(a, b, abs_tol=1e-5) for a, b in zip(got, image_vec, strict=True))
    text_vecs, _ = direct_embeddings(predictors["text"], "text", TEXTS[:2])
    assert len(api.post("/embed_text/", json={"text": TEXTS[0]}).json()["embedding"]) == len(text_vecs[0])
    got_many = api.post("/embed_text/", json={"text": TEXTS[:2]}).json()["embeddings"]
    assert all(
        math.isclose(a, b, abs_tol=1e-5)
        for row, ref in zip(got_many, text_vecs, strict=True)
        for a, b in zip(row, ref, strict=True)
    )


def test_a_large_image_under_the_limit_goes_through(api: httpx.Client) -> None:
    big = noise_png(950)  # ~2.7 MB: over the 1 MB the form parser would spool to disk, under MAX_BYTES
    assert 2_000_000 < len(big) < MAX_BYTES
    r = compare_multipart(api, big, ["noise"])
    assert r.status_code == 200, r.text
    r = api.post("/compare/", json={"image": base64.b64encode(big).decode(), "text": ["noise", "a"]})
    assert r.status_code == 200, r.text


def error(r: httpx.Response, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    assert r.json().keys() == {"error"}
    assert words in r.json()["error"], r.json()["error"]


def test_bad_requests_get_their_status_codes(api: httpx.Client) -> None:
    png = image_file()
    error(compare_multipart(api, noise_png(1050), ["a"]), 413, str(MAX_BYTES))
    error(
        api.post("/compare/", content=b"x" * 50_000_000, headers={"content-type": "application/json"}),
        413,
        "limit",
    )
    error(compare_multipart(api, b"GIF89a but not really", ["a"]), 400, "not an image")
    error(api.post("/compare/", content=png, headers={"content-type": "image/png"}), 415, "image/png")
    error(api.post("/compare/", files={"image": ("x.png", png, "image/png")}), 422, "'text'")
    error(api.post("/compare/", json={"image": base64.b64encode(png).decode(), "text": " "}), 400, "empty")
    error(
        compare_multipart(api, png, ["a"], headers={"authorization": "Bearer wrong"}), 401, "invalid API key"
    )
    error(compare_multipart(api, png, ["a"], headers={"authorization": ""}), 401, "missing API key")


def test_a_predictor_rejection_is_400_with_its_message(api: httpx.Client) -> None:
    truncated = image_file(size=64)[
        :60
    ]  # a valid PNG header: the gateway passes it, the predictor cannot decode it
    r = compare_multipart(api, truncated, ["a"])
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("the image predictor rejected the input: ")


def test_metrics_count_the_traffic_by_status(api: httpx.Client) -> None:
    def counts() -> dict[str, float]:
        text = api.get("/metrics").text
        return {
            s.labels["http_status"]: s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "http_requests_total"
            and s.labels["handler"] == "/compare/"
            and s.labels["method"] == "POST"
        }

    before = counts()
    compare_multipart(api, image_file(), ["a"])
    compare_multipart(api, image_file(), ["a"])
    api.post("/compare/", json={"text": "a"})
    compare_multipart(api, image_file(), ["a"], headers={"authorization": "Bearer wrong"})
    after = counts()
    delta = {k: after[k] - before.get(k, 0) for k in after}
    assert {k: v for k, v in delta.items() if v} == {"200": 2, "422": 1, "401": 1}
    text = api.get("/metrics").text
    assert 'predictor_request_duration_seconds_count{predictor="image"}' in text
    assert "predictor_errors_total" in text


@process_fixture(scope="module")
def stalled(predictors: dict[str, Program], logs: Path) -> Iterator[httpx.Client]:
    """A gateway whose text predictor never answers and whose image model name is wrong."""
    with StallingServer() as stall:
        server = gateway_server(
            predictors["image"].url,
            stall.url,
            logs,
            PREDICTOR_TIMEOUT_S="0.5",
            IMAGE_MODEL_NAME="clip-nope",
        ).start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                yield client
        finally:
            server.stop()


def test_a_stalled_predictor_is_504(stalled: httpx.Client) -> None:
    error(stalled.post("/embed_text/", json={"text": "a"}), 504, "did not answer within 0.5 s")
    r = stalled.get("/readyz")
    assert r.status_code == 503
    assert r.json()["predictors"]["text"].startswith("unreachable")


def test_a_wrong_model_name_is_502(stalled: httpx.Client) -> None:
    error(
        stalled.post("/embed/", files={"image": ("x.png", image_file(), "image/png")}),
        502,
        "IMAGE_MODEL_NAME",
    )


def test_a_stopped_predictor_is_503(predictors: dict[str, Program], tiny_dir: Path, logs: Path) -> None:
    text = start_predictor("text", tiny_dir, logs)
    server = gateway_server(predictors["image"].url, text.url, logs).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/readyz").status_code == 200
            assert compare_multipart(client, image_file(), ["a"]).status_code == 200
            text.stop()
            # A fresh text: "a" is in the gateway's text cache and would be answered without the predictor.
            error(compare_multipart(client, image_file(), ["b"]), 503, "text predictor at")
            error(client.post("/embed_text/", json={"text": "a"}), 503, "unreachable")
            # /readyz answers from its cache for up to GATEWAY_READINESS_CACHE_S (2 s) before it looks again.
            deadline = time.monotonic() + 10
            while (r := client.get("/readyz")).status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert r.status_code == 503
            assert "text predictor unreachable" in r.json()["error"]
    finally:
        text.stop()
        server.stop()
