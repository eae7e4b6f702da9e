"""The torch-free BPE tokenizer gives open_clip's exact token ids and imports neither torch nor open_clip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.procs import ROOT
from predictors.bpe import VOCAB_FILE, BpeTokenizer
from tests.support.models import DEMO_MODEL_DIR

VOCAB = Path(open_clip.__file__).parent / VOCAB_FILE

CORPUS = [
    "a photo of a cat",
    "A Photo Of A RED Circle.",
    "two red squares and a blue circle on a white table",
    "Hello, world! What's up? It's the dog's ball; they'll've gone... (maybe) [yes] {no} #tag @user",
    "3 cats, 42 dogs, 3.14159 pies and 1,000,000 ants in 2024-06-01 at 12:30",
    "fish &amp; chips",
    "&amp;amp;amp;lt; three times escaped",  # ftfy unescapes once, then html.unescape twice
    "<b>&amp;amp;lt;</b> ftfy leaves entities next to markup",
    "&lt;b&gt;bold&lt;/b&gt; and &amp;amp;lt; twice escaped &quot;quoted&quot; &#39;single&#39; &nbsp;",
    "CafÃ© dÃ©jÃ  vu",  # mojibake ftfy repairs
    "â€œcurly quotesâ€\x9d and â€” dash",
    "ﬁne ligature and fullwidth \uff21\uff22\uff23",
    "a smiling face 😀👍🏽 and a family 👨‍👩‍👧 and a flag 🇫🇷",
    "一只猫坐在桌子上",
    "猫の写真 고양이 사진 Кошка на столе κάτι ελληνικό שלום مرحبا",
    "naïve café résumé Ångström Straße İstanbul ǅemal ΣΊΣΥΦΟΣ",
    "tabs\tand\nnewlines\r\nand   many    spaces \u00a0 nbsp \u2003 em \u2028 line sep ",
    "   leading and trailing   ",
    "",
    "   \t\n  ",
    "x",
    "!",
    "7",
    "é",
    "🐱",
    "word " * 100,
    "supercalifragilisticexpialidocious " * 20,
    "a" * 500,
    "0123456789" * 30,
    "<start_of_text>",
    "<end_of_text> inside <start_of_text> a caption",
    "<START_OF_TEXT> upper case",
    "<start_of_text<end_of_text>>",
    "<\u017ftart_of_text>",  # long s: case-insensitively an `s`
    "<|endoftext|> and [CLS] [SEP] </w> </w>x",
    "control \x00\x01\x1f\x7f chars and zero\u200bwidth",
    "combining e\u0301 vs é, Hangul jamo \u1100\u1161",
    "'s 't 're 've 'm 'll 'd 'S 'LL",
    "http://example.com/path?q=1&amp;r=2 user@example.com",
    "$100 € 50 £ ¥ ½ ² ٣ ൬",
]


@pytest.fixture(scope="module")
def ours() -> BpeTokenizer:
    return BpeTokenizer(VOCAB, 77)


@pytest.fixture(scope="module")
def reference() -> Any:
    return open_clip.get_tokenizer("ViT-B-32")


def same_ids(ours: BpeTokenizer, reference: Any, texts: str | list[str]) -> None:
    got, want = ours(texts), reference(texts).numpy()
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want, err_msg=repr(texts))


@pytest.mark.parametrize("text", CORPUS, ids=range(len(CORPUS)))
def test_each_text_has_open_clips_ids(ours: BpeTokenizer, reference: Any, text: str) -> None:
    same_ids(ours, reference, text)


def test_a_batch_has_open_clips_ids(ours: BpeTokenizer, reference: Any) -> None:
    assert reference.context_length == ours.context_length == 77
    same_ids(ours, reference, CORPUS)


def test_the_demo_models_tokenizer_is_reproduced() -> None:
    # What predictors.loading gets for the demo model dir: open_clip's SimpleTokenizer at its context.
    reference = open_clip.get_tokenizer(f"local-dir:{DEMO_MODEL_DIR}")
    assert type(reference) is open_clip.tokenizer.SimpleTokenizer
    assert reference.context_length == 16
    same_ids(BpeTokenizer(VOCAB, 16), reference, CORPUS)


@pytest.mark.parametrize("context_length", [1, 2, 3, 5])
def test_tiny_contexts_truncate_like_open_clip(context_length: int) -> None:
    reference = open_clip.tokenizer.SimpleTokenizer(context_length=context_length)
    same_ids(BpeTokenizer(VOCAB, context_length), reference, CORPUS)


def test_a_long_text_is_cut_to_the_context_and_ends_with_the_end_token(ours: BpeTokenizer) -> None:
    ids = ours(["word " * 100, "a cat"])
    assert ids.shape == (2, 77)
    assert ids[0, 0] == ours.sot_token_id
    assert ids[0, -1] == ours.eot_token_id
    assert (ids[0, 1:-1] != ours.pad_token_id).all()
    assert list(ids[1, 3:6]) == [ours.eot_token_id, ours.pad_token_id, ours.pad_token_id]


def test_no_texts_give_no_rows(ours: BpeTokenizer, reference: Any) -> None:
    assert ours([]).shape == (0, 77)
    same_ids(ours, reference, [])


@pytest.mark.parametrize("context_length", [0, -1])
def test_a_context_without_room_is_refused(context_length: int) -> None:
    with pytest.raises(ValueError, match="context_length"):
        BpeTokenizer(VOCAB, context_length)


# Pieces that exercise the cleaning and the special-token pattern, mixed into arbitrary text.
FRAGMENTS = ["&amp;", "&lt;", "&#39;", "Ã©", "â€™", "<start_of_text>", "<end_of_text>", "'s", " \t\n "]


@pytest.fixture(scope="module")
def by_context() -> dict[int, BpeTokenizer]:
    return {n: BpeTokenizer(VOCAB, n) for n in (4, 16, 77)}


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    texts=st.lists(
        st.lists(st.one_of(st.text(), st.sampled_from(FRAGMENTS))).map("".join), min_size=1, max_size=3
    ),
    context_length=st.sampled_from([4, 16, 77]),
)
def test_arbitrary_unicode_has_open_clips_ids(
    by_context: dict[int, BpeTokenizer], reference: Any, texts: list[str], context_length: int
) -> None:
    got = by_context[context_length](texts)
    np.testing.assert_array_equal(got, reference(texts, context_length=context_length).numpy())


@pytest.mark.usefixtures("starts_processes")
def test_importing_and_tokenizing_loads_neither_torch_nor_open_clip() -> None:
    code = (
        "import sys\n"
        "from predictors.bpe import BpeTokenizer\n"
        "ids = BpeTokenizer(sys.argv[1], 16)(['a photo of a cat'])\n"
        "assert ids.shape == (1, 16), ids.shape\n"
        "print(','.join(m for m in ('torch', 'open_clip') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(VOCAB)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""
