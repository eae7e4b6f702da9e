"""The request both image tests send: a drawn demo shape and two captions, through `POST /compare/`."""

from __future__ import annotations

import io

import httpx

from demo import shapes


def shape_and_captions() -> tuple[bytes, list[str]]:
    """A held-out demo image as PNG, with its own caption first and a wrong-colour caption second."""
    colour, shape, image = shapes.heldout(n_per_class=1, seed=5)[0]
    other = next(c for c in shapes.COLOURS if c != colour)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue(), [shapes.caption(colour, shape), shapes.caption(other, shape)]


def compare(base_url: str, image: bytes, texts: list[str]) -> dict:
    """The gateway's JSON answer to a multipart `/compare/`; anything but 200 fails the test."""
    files = [("image", ("shape.png", image, "image/png"))]
    response = httpx.post(f"{base_url}/compare/", files=files, data={"text": texts}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()
