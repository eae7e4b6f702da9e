"""The bad-input corpus: odd files, texts and bodies, with the status each target must answer.

A case names what goes to the gateway (`gateway`: httpx keyword arguments for POST /compare/) and
what goes straight to a predictor (`v2`: one tensor, sent as v2 JSON over REST and as a gRPC
ModelInfer). `None` means the case does not apply to that target.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from tests.predictors.media import png_header_only

TEXTS = ["a red square", "a blue circle"]


def encode(img: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(size[0] * 1000 + size[1])
    channels = len(mode)
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(), mode)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (40, 30), c) for c in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return buf.getvalue()


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    return encode(noise((48, 32)), "JPEG", exif=exif.tobytes())


def png_16bit() -> bytes:
    grey = (np.arange(40 * 30, dtype=np.uint16).reshape(30, 40) * 50).astype(np.uint16)
    return encode(Image.fromarray(grey), "PNG")  # mode I;16


def zero_width_png() -> bytes:
    """A PNG whose IHDR declares 0 x 16 pixels (CRC correct)."""
    good = encode(Image.new("RGB", (1, 16)), "PNG")
    ihdr = struct.pack(">IIBBBBB", 0, 16, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return good[:8] + chunk + good[33:]


def huge_gif() -> bytes:
    """A 1x1 GIF whose logical screen declares 65535 x 65535: 4.3 G pixels in ~40 bytes."""
    gif = encode(Image.new("RGB", (1, 1)), "GIF")
    return gif[:6] + struct.pack("<HH", 65535, 65535) + gif[10:]


PNG = encode(noise((48, 40)), "PNG")
B64 = base64.b64encode(PNG).decode()
B64_BAD = base64.b64encode(b"plain text, not an image").decode()
JPEG = encode(noise((48, 40)), "JPEG", quality=90)
IMAGES: dict[str, bytes] = {
    "empty-file": b"",
    "truncated-png": PNG[: len(PNG) // 2],
    "truncated-jpeg": JPEG[:200],
    "wrong-magic": b"\xff\xd8\xff\xe0" + PNG[4:],  # PNG body behind a JPEG signature
    "text-posing-as-image": b"hello, I am plain text in a file called cat.png\n" * 20,
    "decompression-bomb-png": png_header_only(60_000, 60_000),
    "huge-dimensions-gif": huge_gif(),
    "zero-size-png": zero_width_png(),
    "1x1": encode(Image.new("RGB", (1, 1), "red"), "PNG"),
    "animated-gif": animated_gif(),
    "cmyk-jpeg": encode(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG"),
    "16-bit-png": png_16bit(),
    "exif-rotated-jpeg": exif_rotated_jpeg(),
    "rgba-png": encode(noise((40, 30), "RGBA"), "PNG"),
    "palette-png-transparency": encode(Image.new("P", (20, 20)), "PNG", transparency=0),
}


@dataclass(frozen=True)
class Case:
    name: str
    gateway: dict[str, Any] | None = None
    gateway_status: int | None = None
    v2: dict[str, Any] | None = None  # {"model": "image"|"text", "name", "datatype", "shape", "data"}
    v2_status: int | None = None
    endpoint: str = "/compare/"  # where the gateway case is sent


def form(image: bytes, texts: list[str] | None = None, mime: str = "image/png") -> dict[str, Any]:
    return {"files": {"image": ("upload.png", image, mime)}, "data": {"text": texts or TEXTS}}


def tensor(model: str, data: list[Any], **over: Any) -> dict[str, Any]:
    return {"model": model, "name": model, "datatype": "BYTES", "shape": [len(data)], "data": data, **over}


def image_case(name: str, gateway_status: int, v2_status: int) -> Case:
    data = IMAGES[name]
    return Case(name, form(data), gateway_status, tensor("image", [data]), v2_status)


def text_case(name: str, texts: list[Any], gateway_status: int | None, v2_status: int | None) -> Case:
    body = {"image": base64.b64encode(PNG).decode(), "text": texts}
    return Case(
        name, {"json": body} if gateway_status else None, gateway_status, tensor("text", texts), v2_status
    )


LONG = "a very long caption " * 120  # 2400 characters, over the 2000 allowed
CASES: list[Case] = [
    image_case("empty-file", 400, 400),
    image_case("truncated-png", 400, 400),
    image_case("truncated-jpeg", 400, 400),
    image_case("wrong-magic", 400, 400),
    image_case("text-posing-as-image", 400, 400),
    image_case("decompression-bomb-png", 413, 400),
    image_case("huge-dimensions-gif", 413, 400),
    image_case("zero-size-png", 400, 400),
    image_case("1x1", 200, 200),
    image_case("animated-gif", 200, 200),
    image_case("cmyk-jpeg", 200, 200),
    image_case("16-bit-png", 200, 200),
    image_case("exif-rotated-jpeg", 200, 200),
    image_case("rgba-png", 200, 200),
    image_case("palette-png-transparency", 200, 200),
    Case("image-as-url-is-not-fetched", {"json": {"image": "http://127.0.0.1:9/cat.png", "text": "a"}}, 400),
    Case("image-not-base64", {"json": {"image": "%%% not base64 %%%", "text": "a"}}, 400),
    Case("image-is-a-number", {"json": {"image": 12, "text": "a"}}, 422),
    Case("missing-image", {"data": {"text": "a"}, "files": {"other": ("x", b"x", "text/plain")}}, 422),
    Case("missing-text", {"files": {"image": ("x.png", PNG, "image/png")}}, 422),
    Case(
        "multipart-part-without-disposition",
        {
            "content": b"--xyz\r\nX-Other: 1\r\n\r\nvalue\r\n--xyz--\r\n",
            "headers": {"content-type": "multipart/form-data; boundary=xyz"},
        },
        400,
    ),
    Case(  # the parser keeps what it read of an unterminated part; the image is what is missing
        "multipart-truncated",
        {
            "content": b'--xyz\r\nContent-Disposition: form-data; name="text"\r\n\r\nunterminated',
            "headers": {"content-type": "multipart/form-data; boundary=xyz"},
        },
        422,
    ),
    Case(
        "multipart-without-boundary",
        {"content": b"abc", "headers": {"content-type": "multipart/form-data"}},
        400,
    ),
    Case(  # chunked, no Content-Length: cut while streaming, at the cap (of texts alone: /compare/'s
        # grows with GATEWAY_MAX_IMAGES, and the gateway would hold that much before refusing)
        "oversized-streamed-body",
        {"content": [b"\x00" * 2**20] * 24, "headers": {"content-type": "application/json"}},
        413,
        endpoint="/embed_text/",
    ),
    Case("wrong-content-type", {"content": PNG, "headers": {"content-type": "image/png"}}, 415),
    Case("xml-content-type", {"content": b"<a/>", "headers": {"content-type": "application/xml"}}, 415),
    Case(
        "malformed-json",
        {"content": b'{"image": "abc", "text": ', "headers": {"content-type": "application/json"}},
        400,
    ),
    Case("json-array-body", {"json": ["image", "text"]}, 422),
    Case(
        "json-invalid-utf8",
        {"content": b'{"image": "", "text": "\xff\xfe"}', "headers": {"content-type": "application/json"}},
        400,
    ),
    text_case("empty-text", [""], 400, 400),
    text_case("blank-text", ["   \n\t"], 400, 400),
    text_case("very-long-text", [LONG], 400, 400),
    text_case("control-characters", ["a cat\x00\x07\x1b[31m red"], 200, 200),
    text_case("emoji", ["🐱 a cat 🐶 and a dog 🎉"], 200, 200),
    text_case("too-many-texts", [f"label {i}" for i in range(65)], 400, 400),
    text_case("text-is-a-number", [1], 422, 400),
    Case("invalid-utf8-text-v2", v2=tensor("text", [b"\xff\xfe bad"]), v2_status=400),
    Case("wrong-datatype", v2=tensor("image", [1.0], datatype="FP32"), v2_status=400),
    Case("wrong-input-name", v2=tensor("text", ["a"], name="prompt"), v2_status=400),
    Case("shape-mismatch", v2=tensor("text", ["a"], shape=[3]), v2_status=400),
    Case("empty-batch", v2=tensor("text", [], shape=[0]), v2_status=400),
    Case("shape-not-a-list", v2=tensor("text", ["a"], shape="x"), v2_status=422),
    *[  # several images per request (GATEWAY_MAX_IMAGES is 8 on the corpus's gateway)
        Case("images-one-bad", {"json": {"image": [B64, B64_BAD], "text": "a"}}, 400),
        Case("images-one-not-a-string", {"json": {"image": [B64, 7], "text": "a"}}, 422),
        Case("images-empty-list", {"json": {"image": [], "text": "a"}}, 400),
        Case("images-over-the-limit", {"json": {"image": [B64] * 9, "text": "a"}}, 413),
        Case(
            "images-multipart-one-bad",
            {
                "files": [("image", ("a.png", PNG, "image/png")), ("image", ("b.png", b"nope", "image/png"))],
                "data": {"text": "a"},
            },
            400,
        ),
        Case("images-several-embed", {"json": {"image": [B64, B64]}}, 200, endpoint="/embed/"),
        Case(
            "images-url-list-while-off",
            {"json": {"image": [B64, "https://127.0.0.1:9/x.png"]}},
            400,
            endpoint="/embed/",
        ),
    ],
    *[  # the OpenAI-compatible endpoint: checked before the model name is (so any name does here)
        Case(name, {"json": {"model": "m", **body}}, status, endpoint="/v1/embeddings")
        for name, body, status in [
            ("v1-input-missing", {}, 422),
            ("v1-input-empty-string", {"input": ""}, 400),
            ("v1-input-empty-list", {"input": []}, 400),
            ("v1-input-token-ids", {"input": [[1, 2, 3]]}, 422),
            ("v1-input-a-number", {"input": 5}, 422),
            ("v1-input-too-long", {"input": LONG}, 400),
            ("v1-input-too-many-texts", {"input": ["a"] * 33}, 400),
            ("v1-bad-data-uri-image", {"input": ["a", "data:image/png;base64," + B64_BAD]}, 400),
            ("v1-data-uri-not-base64", {"input": "data:image/png;base64,%%%"}, 400),
            ("v1-too-many-images", {"input": ["data:image/png;base64," + B64] * 9}, 413),
            ("v1-image-url-while-off", {"input": "http://127.0.0.1:9/x.png", "modality": "image"}, 400),
            ("v1-bad-encoding-format", {"input": "a", "encoding_format": "int8"}, 400),
            ("v1-bad-modality", {"input": "a", "modality": "audio"}, 400),
            ("v1-bad-dimensions", {"input": "a", "dimensions": -1}, 400),
            ("v1-model-not-a-string", {"input": "a", "model": 3}, 422),
            ("v1-unknown-model", {"input": "a", "model": "text-embedding-3-small"}, 404),
        ]
    ],
    Case("v1-json-array-body", {"json": ["a"]}, 422, endpoint="/v1/embeddings"),
    Case("v1-form-body", {"data": {"input": "a"}}, 415, endpoint="/v1/embeddings"),
]
