import colorsys

import numpy as np
import pytest
from PIL import Image

from demo import shapes

_HUE = {"red": 0, "orange": 30, "yellow": 57, "green": 120, "blue": 225, "purple": 280}


def _hsv(pixel: np.ndarray) -> tuple[float, float, float]:
    r, g, b = (float(v) / 255 for v in pixel)
    return colorsys.rgb_to_hsv(r, g, b)


def _hue_gap(a: float, b: float) -> float:
    d = abs(a - b) % 360
    return min(d, 360 - d)


def test_captions_cover_every_colour_shape_pair_in_a_fixed_order():
    assert len(shapes.COLOURS) >= 6 and len(shapes.SHAPES) >= 4
    caps = shapes.captions()
    assert len(caps) == len(set(caps)) == len(shapes.COLOURS) * len(shapes.SHAPES)
    assert caps == [shapes.caption(c, s) for c, s in shapes.classes()]
    assert shapes.caption("red", "circle") == "a photo of a red circle"
    assert shapes.caption("orange", "star") == "a photo of an orange star"


def test_unknown_class_is_refused():
    with pytest.raises(ValueError, match="pink"):
        shapes.caption("pink", "circle")
    with pytest.raises(ValueError, match="hexagon"):
        shapes.draw("red", "hexagon", 0)


@pytest.mark.parametrize(("colour", "shape"), shapes.classes())
def test_every_class_draws_its_colour_on_a_background_that_cannot_be_mistaken_for_it(colour, shape):
    for seed in range(5):
        pixels = np.asarray(shapes.draw(colour, shape, seed, size=64))
        assert pixels.shape == (64, 64, 3)
        for corner in (pixels[0, 0], pixels[0, -1], pixels[-1, 0], pixels[-1, -1]):
            assert _hsv(corner)[1] < 0.3, "background corners must be near-grey"
        hsv = [_hsv(p) for p in pixels.reshape(-1, 3)]
        shape_pixels = [h for h in hsv if h[1] > 0.6]
        assert len(shape_pixels) > 0.03 * 64 * 64, "the shape must cover a visible area"
        assert all(_hue_gap(h[0] * 360, _HUE[colour]) < 15 for h in shape_pixels)


def test_drawing_is_deterministic_for_a_seed_and_varies_across_seeds():
    a = shapes.draw("blue", "star", 42).tobytes()
    assert shapes.draw("blue", "star", 42).tobytes() == a
    others = {shapes.draw("blue", "star", s).tobytes() for s in range(43, 53)}
    assert a not in others and len(others) == 10


def test_non_square_drawings_keep_the_shape_inside_the_centre_crop():
    image = shapes.draw("green", "triangle", 3, size=(640, 480))
    assert image.size == (640, 480)
    pixels = np.asarray(image.convert("HSV"))
    saturated = pixels[..., 1] > 0.6 * 255
    assert saturated.any()
    assert not saturated[:, :80].any() and not saturated[:, 560:].any()


def test_heldout_gives_each_class_n_distinct_images_from_seeds_training_never_uses():
    items = shapes.heldout(3, seed=5)
    assert [(c, s) for c, s, _ in items] == [cls for cls in shapes.classes() for _ in range(3)]
    assert all(isinstance(im, Image.Image) and im.size == (64, 64) for _, _, im in items)
    assert len({im.tobytes() for _, _, im in items}) == len(items)
    train = {
        shapes.train_seed(run, i) for run in (0, 1, 65535, 2**20) for i in (0, 1, 10**6, 2**24 - 1, 2**30)
    }
    held = {shapes.heldout_seed(s, i) for s in (0, 1, 65535, 2**20) for i in (0, 1, 10**6, 2**24 - 1, 2**30)}
    assert max(train) < shapes.HELDOUT_BASE <= min(held)
