"""Image URLs (GATEWAY_IMAGE_URLS): refused addresses never get a connection, allowed fetches are
guarded (redirects, size, time, type), and the endpoints take URLs where an image is expected.

No test opens a connection outside 127.0.0.0/8: names resolve through a stub resolver, every
connection goes through a backend that records it (and fails on any other address), and the servers
that answer are on 127.0.0.1, admitted through the allow list."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Iterator
from ipaddress import ip_network

import httpx
import pytest
from fastapi.testclient import TestClient

from gateway.app import create_app
from gateway.errors import GatewayError
from gateway.imagefetch import ImageFetcher
from gateway.settings import Settings
from gateway.urlguard import AddressPolicy, CheckedBackend
from tests.gateway.fakes import IMAGE_URL, TEXT_URL, FakePredictors
from tests.gateway.urlservers import RED, ImageServer, RecordingBackend, StubResolver

LOOPBACK = ip_network("127.0.0.1/32")
MAX_BYTES = 64 * 1024
NAMES = {
    "images.test": ["127.0.0.1"],
    "internal.test": ["10.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "loop6.test": ["::1"],
    "mapped.test": ["::ffff:127.0.0.1"],
    "mixed.test": ["93.184.216.34", "10.0.0.1"],  # one public address does not admit the other
}


class Net:
    """A fetcher over the stub resolver and the recording backend."""

    def __init__(self, allow: tuple = (LOOPBACK,), total_timeout_s: float = 5.0) -> None:
        self.resolver = StubResolver(NAMES)
        self.backend = RecordingBackend()
        self.fetcher = ImageFetcher(
            CheckedBackend(AddressPolicy(allow), self.resolver, self.backend),
            max_bytes=MAX_BYTES,
            max_pixels=10_000,
            connect_timeout_s=2.0,
            total_timeout_s=total_timeout_s,
        )

    def fetch(self, url: str) -> bytes:
        async def run() -> bytes:
            try:
                return await self.fetcher.fetch(url)
            finally:
                await self.fetcher.aclose()

        return asyncio.run(run())

    def error(self, url: str) -> GatewayError:
        with pytest.raises(GatewayError) as info:
            self.fetch(url)
        return info.value


@pytest.fixture
def server() -> Iterator[ImageServer]:
    with ImageServer() as s:
        yield s


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:{port}/red.png", "a loopback address"),  # not in this test's allow list
        ("http://10.0.0.1/cat.png", "a private address"),
        ("http://169.254.169.254/latest/meta-data/", "a link-local address"),
        ("http://[::1]:{port}/red.png", "a loopback address"),
        ("http://[::ffff:127.0.0.1]:{port}/red.png", "an IPv4-mapped IPv6 address"),
        ("http://2130706433:{port}/red.png", "127.0.0.1, which is a loopback address"),  # decimal
        ("http://0177.0.0.1:{port}/red.png", "127.0.0.1, which is a loopback address"),  # octal
        ("http://0x7f.1:{port}/red.png", "127.0.0.1, which is a loopback address"),  # hex, short
        ("http://0.0.0.0:{port}/red.png", "an unspecified address"),
        ("http://224.0.0.1/x", "a multicast address"),
        ("http://100.64.0.1/x", "a special-purpose address"),  # carrier-grade NAT
        ("http://[fc00::1]/x", "a private address"),
        ("http://[fe80::1]/x", "a link-local address"),
        ("http://[2002:7f00:1::]/x", "a 6to4 or Teredo IPv6 address"),
        ("http://internal.test/x", "resolves to 10.0.0.1, which is a private address"),
        ("http://metadata.test/x", "resolves to 169.254.169.254, which is a link-local address"),
        ("http://loop6.test/x", "resolves to ::1, which is a loopback address"),
        ("http://mapped.test/x", "an IPv4-mapped IPv6 address"),
        ("http://mixed.test/x", "resolves to 10.0.0.1, which is a private address"),
    ],
)
def test_special_addresses_are_refused_before_any_connection(server: ImageServer, url: str, why: str) -> None:
    net = Net(allow=())
    error = net.error(url.format(port=server.server_address[1]))
    assert error.status == 400 and why in error.message and "does not fetch from it" in error.message
    assert net.backend.attempts == [] and server.paths == []


def test_allowed_names_connect_to_the_checked_address_only(server: ImageServer) -> None:
    net = Net()
    port = server.server_address[1]
    assert net.fetch(f"http://images.test:{port}/red.png") == RED  # served as text/plain: type from bytes
    assert net.resolver.lookups == ["images.test"]  # resolved once
    assert net.backend.attempts == [("127.0.0.1", port)]  # the address, never the name again
    assert Net().fetch(f"{server.url}/red.png") == RED  # a literal in the allow list


def test_the_allow_list_admits_its_networks_only(server: ImageServer) -> None:
    net = Net(allow=(ip_network("127.0.0.1/32"),))
    error = net.error(f"http://127.0.0.2:{server.server_address[1]}/red.png")
    assert error.status == 400 and "loopback" in error.message
    assert net.backend.attempts == []


@pytest.mark.parametrize("target", ["http://10.0.0.1/x", "http://metadata.test/x", "http://[::1]/x"])
def test_a_redirect_to_a_refused_address_is_refused_before_connecting_there(
    server: ImageServer, target: str
) -> None:
    net = Net()
    error = net.error(f"{server.url}/redirect?to={target}")
    assert error.status == 400 and "does not fetch from it" in error.message
    assert net.backend.attempts == [("127.0.0.1", server.server_address[1])]


def test_at_most_three_redirects_are_followed(server: ImageServer) -> None:
    assert Net().fetch(f"{server.url}/chain/2") == RED  # three redirects
    error = Net().error(f"{server.url}/chain/3")
    assert error.status == 502 and "more than 3 redirects" in error.message


@pytest.mark.parametrize("path", ["/big", "/big-declared"])
def test_a_body_over_the_cap_is_413(server: ImageServer, path: str) -> None:
    error = Net().error(f"{server.url}{path}")
    assert error.status == 413 and f"over the limit of {MAX_BYTES} bytes" in error.message


def test_a_stalling_server_is_504_and_the_url_is_logged_without_its_query(
    server: ImageServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "gateway")
    error = Net(total_timeout_s=0.3).error(f"{server.url}/stall?token=s3cret")
    assert error.status == 504 and error.message.startswith("fetching the image from")
    assert "failed" in error.message and "s3cret" not in error.message
    assert "/stall" in caplog.text and "s3cret" not in caplog.text


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/text", 400, "is not a usable image"),
        ("/missing", 502, "the server answered 404"),
    ],
)
def test_failed_fetches_say_so(server: ImageServer, path: str, status: int, words: str) -> None:
    error = Net().error(f"{server.url}{path}?q=secret")
    assert error.status == status and words in error.message and "secret" not in error.message


def test_an_unreachable_server_is_502() -> None:
    with ImageServer() as closed:
        url = f"{closed.url}/red.png"
    error = Net().error(url)
    assert error.status == 502 and "fetching the image from" in error.message


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://127.0.0.1/x", "not http:// or https://"),
        ("http:///x", "has no host"),
        ("http://x:99999/", "Port out of range"),
    ],
)
def test_bad_urls_are_400(url: str, words: str) -> None:
    net = Net()
    error = net.error(url)
    assert error.status == 400 and words in error.message and net.backend.attempts == []


def describe_model(request: httpx.Request) -> httpx.Response | None:
    """The fake text predictor's model config (for /v1)."""
    if request.url.path.endswith("/config"):
        return httpx.Response(200, json={"parameters": {"arch": "A", "pretrained": "w", "embed_dim": 8}})
    return None


@pytest.fixture
def api(server: ImageServer, fake: FakePredictors) -> Iterator[tuple[TestClient, Net]]:
    net = Net()
    settings = Settings(
        image_predictor_url=IMAGE_URL,
        text_predictor_url=TEXT_URL,
        gateway_image_urls=True,
        gateway_image_url_allow="127.0.0.1/32",  # type: ignore[arg-type]
    )
    app = create_app(settings, transport=fake.transport(), image_fetcher=net.fetcher)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, net


def test_endpoints_take_urls_where_an_image_is_expected(
    api: tuple[TestClient, Net], server: ImageServer, fake: FakePredictors
) -> None:
    client, _ = api
    uploaded = base64.b64encode(RED).decode()
    url = f"{server.url}/red.png"
    fetched = client.post("/embed/", json={"image": url})
    assert fetched.status_code == 200, fetched.text
    assert fetched.json() == client.post("/embed/", json={"image": uploaded}).json()
    compared = client.post("/compare/", json={"image": [uploaded, url], "text": "red"}).json()["results"]
    assert compared[0] == compared[1]
    fake.override["text"] = describe_model
    v1 = client.post("/v1/embeddings", json={"model": "A/w", "input": [url, uploaded], "modality": "image"})
    assert v1.status_code == 200, v1.text
    rows = [d["embedding"] for d in v1.json()["data"]]
    assert rows == [fetched.json()["embedding"]] * 2
    as_text = client.post("/v1/embeddings", json={"model": "A/w", "input": [url]})  # no modality: a text
    assert as_text.status_code == 502 and "token count" in as_text.text  # the fake counts no tokens


def test_endpoint_errors_name_the_url_image(
    api: tuple[TestClient, Net], server: ImageServer, fake: FakePredictors
) -> None:
    client, net = api
    refused = client.post("/embed/", json={"image": [base64.b64encode(RED).decode(), "http://10.0.0.1/x"]})
    assert refused.status_code == 400
    assert refused.json()["error"].startswith("image[1]: the image URL's host 10.0.0.1 is a private address")
    too_big = client.post("/compare/", json={"image": f"{server.url}/big", "text": "x"})
    assert too_big.status_code == 413
    assert fake.calls("image") == [] and ("10.0.0.1", 80) not in net.backend.attempts


def test_allow_list_setting_reads_cidr_networks() -> None:
    settings = Settings(gateway_image_url_allow="127.0.0.1/32, 10.1.0.0/16,::1/128")  # type: ignore[arg-type]
    assert [str(n) for n in settings.gateway_image_url_allow] == ["127.0.0.1/32", "10.1.0.0/16", "::1/128"]
    assert Settings().gateway_image_urls is False and Settings().gateway_image_url_allow == ()
    with pytest.raises(ValueError, match="CIDR"):
        Settings(gateway_image_url_allow="not-a-network")  # type: ignore[arg-type]
