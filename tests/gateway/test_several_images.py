"""Several images in one request on /compare/ and /embed/, over fake predictors: one image call for
all of them, each result exactly what the image alone gets, the GATEWAY_MAX_IMAGES limit, and errors
that name the bad image."""

from __future__ import annotations

import base64
import io
import os

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.gateway.fakes import FakePredictors, infer_request, png
from tests.support.gateway_clients import MakeClient

COLOURS = ["red", "green", "blue"]
TEXTS = ["a red square", "a green square"]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def noise_png(side: int) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, "PNG")
    return buf.getvalue()


def files(*images: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("image", (f"{i}.png", image, "image/png")) for i, image in enumerate(images)]


@pytest.mark.parametrize("texts", [TEXTS[0], TEXTS], ids=["one text", "several texts"])
def test_compare_answers_each_image_as_if_alone_from_one_image_call(
    client: TestClient, fake: FakePredictors, texts: str | list[str]
) -> None:
    images = [png(colour=c) for c in COLOURS]
    alone = [client.post("/compare/", json={"image": b64(i), "text": texts}).json() for i in images]
    fake.requests.clear()
    together = client.post("/compare/", json={"image": [b64(i) for i in images], "text": texts})
    assert together.status_code == 200, together.text
    assert together.json() == {"results": alone}
    (call,) = fake.calls("image")
    assert infer_request(call)[1] == images  # all three files, in order, in one v2 call
    multipart = client.post("/compare/", files=files(*images), data={"text": texts})
    assert multipart.json() == {"results": alone}


def test_embed_answers_embeddings_in_order(client: TestClient) -> None:
    images = [png(colour=c) for c in COLOURS]
    alone = [client.post("/embed/", files=files(i)).json()["embedding"] for i in images]
    assert client.post("/embed/", files=files(*images)).json() == {"embeddings": alone}
    assert client.post("/embed/", json={"image": [b64(i) for i in images]}).json() == {"embeddings": alone}


def test_one_image_answers_as_before_and_a_list_of_one_in_the_list_form(client: TestClient) -> None:
    image = b64(png())
    assert client.post("/compare/", json={"image": image, "text": "x"}).json().keys() == {"similarity"}
    listed = client.post("/compare/", json={"image": [image], "text": "x"}).json()
    assert listed.keys() == {"results"} and listed["results"][0].keys() == {"similarity"}
    assert client.post("/embed/", json={"image": [image]}).json().keys() == {"embeddings"}


def test_more_images_than_gateway_max_images_is_413_before_any_call(
    make_client: MakeClient, fake: FakePredictors
) -> None:
    client = make_client(gateway_max_images=2)
    images = [png(colour=c) for c in COLOURS]
    for response in (
        client.post("/embed/", files=files(*images)),
        client.post("/embed/", json={"image": [b64(i) for i in images]}),
        client.post("/compare/", files=files(*images), data={"text": "x"}),
    ):
        assert response.status_code == 413, response.text
        assert "at most 2" in response.json()["error"] and "GATEWAY_MAX_IMAGES" in response.json()["error"]
    assert fake.calls("image") == []
    assert client.post("/embed/", files=files(*images[:2])).status_code == 200


def test_the_body_limit_grows_with_gateway_max_images(make_client: MakeClient) -> None:
    image = noise_png(128)  # ~50 KB: four of them pass one image's body cap, not four images'
    body = {"image": [b64(image)] * 4}
    small = make_client(gateway_max_image_bytes=len(image) + 10, gateway_max_images=1)
    large = make_client(gateway_max_image_bytes=len(image) + 10, gateway_max_images=4)
    refused = small.post("/embed/", json=body)
    assert refused.status_code == 413 and "request body is" in refused.json()["error"]
    assert large.post("/embed/", json=body).status_code == 200


@pytest.mark.parametrize("kind", ["json", "multipart"])
def test_a_bad_image_is_a_400_that_names_it(client: TestClient, fake: FakePredictors, kind: str) -> None:
    good, bad = png(), b"this is not an image"
    if kind == "json":
        response = client.post("/embed/", json={"image": [b64(good), b64(bad)]})
    else:
        response = client.post("/embed/", files=files(good, bad))
    assert response.status_code == 400
    assert response.json()["error"].startswith("image[1]: the upload is not an image file")
    assert fake.calls("image") == []


def test_each_image_error_keeps_its_status_and_names_its_image(make_client: MakeClient) -> None:
    client = make_client(gateway_max_image_pixels=100)
    response = client.post("/embed/", json={"image": [b64(png(4, 4)), b64(png(20, 20))]})
    assert response.status_code == 413
    assert response.json()["error"].startswith("image[1]: the image is 20x20")
    wrong = client.post("/embed/", json={"image": [b64(png()), "%%%"]})
    assert wrong.status_code == 400 and wrong.json()["error"] == "image[1]: field 'image' is not valid base64"
    mixed = client.post("/embed/", json={"image": [b64(png()), 3]})
    assert mixed.status_code == 422 and "list of such strings" in mixed.json()["error"]
    empty = client.post("/embed/", json={"image": []})
    assert empty.status_code == 400 and "empty list" in empty.json()["error"]


def test_image_urls_are_refused_while_off(client: TestClient, fake: FakePredictors) -> None:
    response = client.post("/embed/", json={"image": "http://127.0.0.1:1/cat.png"})
    assert response.status_code == 400
    assert "GATEWAY_IMAGE_URLS" in response.json()["error"]
    assert fake.calls("image") == []
