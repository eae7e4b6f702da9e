"""The OpenAI-compatible API and several images per request over the real stack (`python -m gateway`
over both real predictors on a tiny CLIP, on 127.0.0.1), driven by the real `openai` package."""

from __future__ import annotations

import base64
import io
import json
import math
import struct
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import openai
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc.grpc_predict_v2_pb2_grpc import GRPCInferenceServiceStub
from PIL import Image

from devtools.procs import Program
from tests.gateway.urlservers import RED, ImageServer
from tests.support.stack import gateway_server
from tests.support.tiers import process_fixture

KEY = "openai-test-key"
MAX_IMAGES = 3
MAX_TEXTS = 4


def png(colour: str, size: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buf, "PNG")
    return buf.getvalue()


def data_uri(image: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(image).decode()}"


def cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / math.sqrt(
        sum(x * x for x in a) * sum(y * y for y in b)
    )


@process_fixture(scope="module")
def gateway_process(predictors: dict[str, Program], logs: Path) -> Iterator[Program]:
    server = gateway_server(
        predictors["image"].url,
        predictors["text"].url,
        logs,
        GATEWAY_API_KEYS=KEY,
        GATEWAY_MAX_IMAGES=str(MAX_IMAGES),
        GATEWAY_MAX_TEXTS=str(MAX_TEXTS),
        GATEWAY_IMAGE_URLS="true",
        GATEWAY_IMAGE_URL_ALLOW="127.0.0.1/32",
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gateway(gateway_process: Program) -> str:
    return gateway_process.url


@pytest.fixture(scope="module")
def api(gateway: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway, headers={"authorization": f"Bearer {KEY}"}, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def client(gateway: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=KEY, max_retries=0, timeout=30)


@pytest.fixture(scope="module")
def model(client: openai.OpenAI) -> str:
    return client.models.list().data[0].id


def test_models_lists_the_served_model_by_architecture_and_weights(
    client: openai.OpenAI, model: str, tiny_dir: Path
) -> None:
    (listed,) = client.models.list().data
    assert listed.id == model and listed.object == "model"
    assert model.endswith(f"/{tiny_dir.name}")  # the weights: the model directory, not its path
    assert client.models.retrieve(model).id == model
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("text-embedding-3-small")
    assert info.value.code == "model_not_found"


def test_a_text_equals_embed_text_with_its_real_token_count(
    client: openai.OpenAI, model: str, api: httpx.Client, tiny_dir: Path
) -> None:
    # The SDK asks for base64 by default and decodes it: this also checks the encoding.
    response = client.embeddings.create(model=model, input="a red square")
    expected = api.post("/embed_text/", json={"text": "a red square"}).json()["embedding"]
    assert response.data[0].embedding == pytest.approx(expected, abs=1e-7)
    assert response.model == model and response.data[0].index == 0
    # Start token, the three words, end token: what CLIP's BPE tokenizer makes of it.
    assert response.usage.prompt_tokens == response.usage.total_tokens == 5
    context = json.loads((tiny_dir / "open_clip_config.json").read_text())["model_cfg"]["text_cfg"]
    long_text = " ".join(["square"] * 3 * context["context_length"])
    truncated = client.embeddings.create(model=model, input=[long_text, "a red square"])
    assert truncated.usage.prompt_tokens == context["context_length"] + 5


def test_an_image_data_uri_equals_embed(client: openai.OpenAI, model: str, api: httpx.Client) -> None:
    image = png("red")
    response = client.embeddings.create(model=model, input=[data_uri(image)])
    expected = api.post("/embed/", files={"image": ("r.png", image, "image/png")}).json()["embedding"]
    assert cos(response.data[0].embedding, expected) >= 0.9999
    assert response.usage.prompt_tokens == 0  # images count no tokens
    forced = client.embeddings.create(
        model=model, input=base64.b64encode(image).decode(), extra_body={"modality": "image"}
    )
    assert cos(forced.data[0].embedding, expected) >= 0.9999


def test_a_mixed_list_keeps_its_order(client: openai.OpenAI, model: str, api: httpx.Client) -> None:
    red, blue = png("red"), png("blue")
    items = ["a blue circle", data_uri(red), "a red square", data_uri(blue)]
    response = client.embeddings.create(model=model, input=items)
    assert [d.index for d in response.data] == [0, 1, 2, 3]
    texts = api.post("/embed_text/", json={"text": [items[0], items[2]]}).json()["embeddings"]
    images = api.post("/embed/", json={"image": [items[1], items[3]]}).json()["embeddings"]
    for got, want in zip(response.data, [texts[0], images[0], texts[1], images[1]], strict=True):
        assert cos(got.embedding, want) >= 0.9999
    forced_text = client.embeddings.create(
        model=model, input=[data_uri(red)], extra_body={"modality": "text"}
    )
    assert cos(forced_text.data[0].embedding, images[0]) < 0.9999  # read as a text, not an image


def test_base64_decodes_to_the_same_floats(api: httpx.Client, model: str) -> None:
    body = {"model": model, "input": ["a red square", data_uri(png("green"))]}
    floats = api.post("/v1/embeddings", json=body).json()["data"]
    packed = api.post("/v1/embeddings", json={**body, "encoding_format": "base64"}).json()["data"]
    for f, p in zip(floats, packed, strict=True):
        raw = base64.b64decode(p["embedding"])
        assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == f["embedding"]


BAD = [
    ("empty text", {"input": ""}, openai.BadRequestError, "input is empty"),
    ("empty item", {"input": ["a", " "]}, openai.BadRequestError, "input[1] is empty"),
    ("empty list", {"input": []}, openai.BadRequestError, "input is an empty list"),
    ("text too long", {"input": "x" * 2001}, openai.BadRequestError, "input has 2001 characters"),
    ("too many texts", {"input": ["a"] * (MAX_TEXTS + 1)}, openai.BadRequestError, "at most 4 are allowed"),
    (
        "not an image",
        {"input": ["a", "data:image/png;base64," + base64.b64encode(b"not a png").decode()]},
        openai.BadRequestError,
        "input[1]: the upload is not an image file",
    ),
    (
        "bad base64",
        {"input": "data:image/png;base64,%%%"},
        openai.BadRequestError,
        "input: field 'image' is not valid base64",
    ),
    (
        "too many images",
        {"input": [data_uri(png("red"))] * (MAX_IMAGES + 1)},
        openai.APIStatusError,
        "4 images sent, at most 3",
    ),
    ("token arrays", {"input": [[1, 2, 3]]}, openai.UnprocessableEntityError, "token id arrays"),
    ("encoding", {"input": "a", "encoding_format": "int8"}, openai.BadRequestError, "encoding_format must"),
    (
        "modality",
        {"input": "a", "extra_body": {"modality": "audio"}},
        openai.BadRequestError,
        "modality must",
    ),
    ("dimensions", {"input": "a", "dimensions": 3}, openai.BadRequestError, "not 3"),
    ("model", {"input": "a", "model": "text-embedding-3-small"}, openai.NotFoundError, "does not exist"),
]


@pytest.mark.parametrize(("name", "args", "error", "message"), BAD, ids=[b[0] for b in BAD])
def test_each_bad_input_raises_the_sdk_error_with_our_message(
    client: openai.OpenAI, model: str, name: str, args: dict, error: type[openai.APIStatusError], message: str
) -> None:
    with pytest.raises(error) as info:
        client.embeddings.create(**{"model": model, **args})
    assert isinstance(info.value.body, dict)
    assert message in info.value.body["message"] and message in str(info.value)
    assert info.value.status_code in (400, 404, 413, 422)
    assert info.value.type == "invalid_request_error"
    if name == "too many images":
        assert info.value.status_code == 413


def test_a_missing_key_is_an_authentication_error(gateway: str, model: str) -> None:
    anonymous = openai.OpenAI(base_url=f"{gateway}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        anonymous.embeddings.create(model=model, input="a")
    assert info.value.code == "invalid_api_key" and "invalid API key" in str(info.value)


def test_compare_with_several_images_answers_each_as_if_alone(api: httpx.Client) -> None:
    images = [png("red"), png("green"), png("blue")]
    texts = ["a red square", "a green square"]
    files = [("image", (f"{i}.png", image, "image/png")) for i, image in enumerate(images)]
    together = api.post("/compare/", files=files, data={"text": texts})
    assert together.status_code == 200, together.text
    for got, image in zip(together.json()["results"], images, strict=True):
        alone = api.post("/compare/", files={"image": ("x.png", image, "image/png")}, data={"text": texts})
        assert got.keys() == alone.json().keys()
        for key, values in got.items():
            assert values == pytest.approx(alone.json()[key], abs=1e-6)
    too_many = api.post("/embed/", files=[*files, ("image", ("3.png", images[0], "image/png"))])
    assert too_many.status_code == 413 and "GATEWAY_MAX_IMAGES" in too_many.json()["error"]


def test_image_urls_are_fetched_from_allowed_addresses_only(
    api: httpx.Client, client: openai.OpenAI, model: str, gateway_process: Program
) -> None:
    with ImageServer() as server:
        uploaded = api.post("/embed/", json={"image": base64.b64encode(RED).decode()}).json()["embedding"]
        fetched = api.post("/embed/", json={"image": f"{server.url}/red.png?sig=topsecret"})
        assert fetched.status_code == 200, fetched.text
        assert fetched.json()["embedding"] == uploaded
        v1 = client.embeddings.create(
            model=model, input=[f"{server.url}/red.png"], extra_body={"modality": "image"}
        )
        assert cos(v1.data[0].embedding, uploaded) >= 0.9999
        port = server.server_address[1]
        for url, words in [
            (f"http://127.0.0.2:{port}/red.png", "is a loopback address"),  # not in the allow list
            (f"http://[::1]:{port}/red.png", "is a loopback address"),
            (f"{server.url}/redirect?to=http://127.0.0.3:{port}/red.png", "is a loopback address"),
        ]:
            refused = api.post("/compare/", json={"image": url, "text": "a"})
            assert refused.status_code == 400 and words in refused.json()["error"], refused.text
        failed = api.post("/embed/", json={"image": f"{server.url}/missing?sig=topsecret"})
        assert failed.status_code == 502 and "fetching the image from" in failed.json()["error"]
        assert server.paths.count("/red.png?sig=topsecret") == 1
    assert gateway_process.log_path is not None
    log = gateway_process.log_path.read_text()
    assert "/missing" in log and "topsecret" not in log


def test_the_text_predictor_counts_tokens_over_rest_and_grpc_when_asked(
    predictors: dict[str, Program],
) -> None:
    text = predictors["text"]
    texts = ["a red square", "a cat"]
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": texts}]}
    url = f"{text.url}/v2/models/clip-text/infer"
    plain = httpx.post(url, json=body, timeout=30).json()
    assert "token_counts" not in plain["parameters"]  # only when asked
    asked = httpx.post(url, json={**body, "parameters": {"token_counts": True}}, timeout=30).json()
    assert asked["parameters"]["token_counts"] == "5,4"  # start, the words, end
    assert asked["outputs"][0]["data"] == plain["outputs"][0]["data"]
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text",
        datatype="BYTES",
        shape=[2],
        contents=pb.InferTensorContents(bytes_contents=[t.encode() for t in texts]),
    )
    request = pb.ModelInferRequest(
        model_name="clip-text",
        inputs=[tensor],
        parameters={"token_counts": pb.InferParameter(bool_param=True)},
    )
    with grpc.insecure_channel(f"127.0.0.1:{text.ports['grpc']}") as channel:
        reply = GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=30)
    assert reply.parameters["token_counts"].string_param == "5,4"
