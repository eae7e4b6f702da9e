"""CLIP's byte-pair-encoding tokenizer without torch or open_clip, for the lean CPU predictor image.

It gives the same ids as open_clip 3.3.0's `SimpleTokenizer` with the settings every OpenAI-style CLIP
uses (`clean="lower"`, no `reduction_mask`, no additional special tokens): text cleaned by ftfy, HTML
unescaped twice, whitespace collapsed and lowercased; split by CLIP's pattern; each word's UTF-8 bytes
merged by the ranked merges of CLIP's vocabulary file; framed by the start and end tokens; cut to the
context with the end token kept last; padded with zeros. Only the standard library, numpy, `regex` and
`ftfy` are imported.
"""

from __future__ import annotations

import gzip
import html
from collections.abc import Sequence
from functools import lru_cache
from itertools import pairwise
from pathlib import Path

import ftfy
import numpy as np
import regex

VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"  # shipped in open_clip's package directory
START, END = "<start_of_text>", "<end_of_text>"
MERGES = 49152 - 256 - 2  # the merges CLIP reads: its 49152-token BPE vocabulary less bytes and specials
CACHE_WORDS = 1 << 16  # distinct words whose merged ids are kept


def bytes_to_unicode() -> dict[int, str]:
    """Each byte's stand-in character: printable Latin-1 bytes stand for themselves, the others for
    characters from U+0100 on, so that no word holds whitespace or control characters."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]  # "!".."~", "¡".."¬", "®".."ÿ"
    others = [b for b in range(256) if b not in printable]
    chars = [*map(chr, printable), *(chr(256 + n) for n in range(len(others)))]
    return dict(zip([*printable, *others], chars, strict=True))


def clean(text: str) -> str:
    """open_clip's `lower` cleaning: mojibake fixed, HTML unescaped twice, whitespace collapsed,
    lowercased."""
    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return " ".join(text.split()).strip().lower()


class BpeTokenizer:
    """Texts to CLIP token ids, as open_clip's `SimpleTokenizer(context_length=...)` gives them.

    Only open_clip's defaults for OpenAI-style models are reproduced (`clean="lower"`, no reduction mask,
    no extra special tokens); the lean bundle refuses a model whose tokenizer is configured otherwise.
    """

    pad_token_id = 0

    def __init__(self, vocab_path: str | Path, context_length: int) -> None:
        """`vocab_path`: CLIP's gzipped merges file (`VOCAB_FILE`); `context_length`: ids per text."""
        if context_length < 1:
            raise ValueError(f"context_length must be at least 1, not {context_length}")
        self.context_length = context_length
        with gzip.open(vocab_path) as f:
            lines = f.read().decode("utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1 : MERGES + 1]]  # line 0 is a version header
        self._bytes = bytes_to_unicode()
        symbols = list(self._bytes.values())
        vocab = [*symbols, *(s + "</w>" for s in symbols), *("".join(m) for m in merges), START, END]
        self._ids = {token: i for i, token in enumerate(vocab)}
        self._ranks = {merge: i for i, merge in enumerate(merges)}
        self._special = {START: self._ids[START], END: self._ids[END]}
        self.sot_token_id = self._ids[START]
        self.eot_token_id = self._ids[END]
        self._pattern = regex.compile(
            rf"{START}|{END}|'s|'t|'re|'ve|'m|'ll|'d|[\p{{L}}]+|[\p{{N}}]|[^\s\p{{L}}\p{{N}}]+",
            regex.IGNORECASE,
        )
        self._word_ids = lru_cache(maxsize=CACHE_WORDS)(self._merge)

    def _merge(self, word: str) -> tuple[int, ...]:
        """The ids of one word (its bytes as stand-in characters): the lowest-ranked adjacent pair is
        merged everywhere, left to right, until no pair of the word has a rank."""
        parts = [*word[:-1], word[-1] + "</w>"]
        ranks = self._ranks
        while len(parts) > 1:
            pairs = set(pairwise(parts))
            best = min(pairs, key=lambda pair: ranks.get(pair, MERGES))
            if best not in ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return tuple(self._ids[part] for part in parts)

    def encode(self, text: str) -> list[int]:
        """The ids of `text`, without start and end tokens or truncation."""
        ids: list[int] = []
        for match in self._pattern.findall(clean(text)):
            word = "".join(self._bytes[b] for b in match.encode("utf-8"))
            special = self._special.get(word)
            ids.extend((special,) if special is not None else self._word_ids(word))
        return ids

    def __call__(self, texts: str | Sequence[str]) -> np.ndarray:
        """int64 ids [len(texts), context_length]: start, the text's ids, end, zeros; a text too long for
        the context is cut and ends with the end token."""
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in zip(out, texts, strict=True):
            ids = [self.sot_token_id, *self.encode(text), self.eot_token_id]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot_token_id
            row[: len(ids)] = ids
        return out
