"""Decontamination: drop training prompts that overlap an evaluation benchmark by word n-grams.

    decontaminate:
      ngram: 13                       # the common practice (GPT-3, OLMo, ...)
      benchmarks:
        - {path: data/math500.jsonl, name: math500}
        - {card: aime24, src: ../shared/benchmarks/qwen2.5-math/aime24.jsonl}

Texts are lower-cased and split into words (letters/digits runs; LaTeX commands and punctuation
separate words). A training prompt is contaminated when any of its question's word n-grams is an
n-gram of a benchmark question; a benchmark question shorter than n words (at least ``min_words``)
counts as one n-gram of its own length. The benchmark index holds 8-byte hashes of the n-grams
(about 100 bytes each in memory: a 10k-question benchmark set is a few tens of MB). Removed prompts
are written to ``decontaminated.jsonl`` with ``meta.decontamination`` = {benchmark, benchmark id,
the matching words}, and counted per benchmark in the report.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator

from ..schema import Sample

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased word tokens.

    >>> words("Find $x$ if 2x+3 = 11, i.e. \\\\frac{a}{b}.")
    ['find', 'x', 'if', '2x', '3', '11', 'i', 'e', 'frac', 'a', 'b']
    """
    return _WORD.findall((text or "").lower())


def _h(ws: Iterable[str]) -> int:
    return int.from_bytes(hashlib.blake2b(" ".join(ws).encode("utf-8"), digest_size=8).digest(), "big")


class NgramIndex:
    """Word n-grams of benchmark questions; ``match(text)`` finds an overlap."""

    def __init__(self, n: int = 13, min_words: int = 6):
        if n < 1:
            raise ValueError("ngram must be >= 1")
        self.n, self.min_words = n, min_words
        self.grams: dict[int, tuple[str, str]] = {}
        self.short_lengths: set[int] = set()
        self.questions = 0
        self.ignored_short = 0

    def add(self, text: str, benchmark: str, ref: str) -> None:
        ws = words(text)
        self.questions += 1
        if len(ws) < self.n:
            if len(ws) < self.min_words:
                self.ignored_short += 1
                return
            self.short_lengths.add(len(ws))
            self.grams.setdefault(_h(ws), (benchmark, ref))
            return
        for i in range(len(ws) - self.n + 1):
            self.grams.setdefault(_h(ws[i:i + self.n]), (benchmark, ref))

    def match(self, text: str) -> tuple[str, str, str] | None:
        """(benchmark, benchmark id, matching words) of the first overlap, or ``None``.

        >>> ix = NgramIndex(n=4, min_words=3)
        >>> ix.add("what is the area of the triangle ABC", "bench", "q1")
        >>> ix.match("Tell me: what is the area of the square?")
        ('bench', 'q1', 'what is the area')
        >>> ix.match("the triangle is red") is None
        True
        """
        ws = words(text)
        for L in [self.n, *sorted(self.short_lengths)]:
            for i in range(len(ws) - L + 1):
                hit = self.grams.get(_h(ws[i:i + L]))
                if hit is not None:
                    return hit[0], hit[1], " ".join(ws[i:i + L])
        return None

    def __len__(self) -> int:
        return len(self.grams)


def build_index(benchmarks: Iterable[tuple[str, Iterable[Sample]]], n: int = 13, min_words: int = 6) -> NgramIndex:
    """An index over ``(name, samples)`` benchmark sets (the question text of each sample)."""
    ix = NgramIndex(n, min_words)
    for name, samples in benchmarks:
        for s in samples:
            ix.add(s.question, name, str(s.meta.get("orig_id", s.id)))
    return ix


def decontaminate(samples: Iterable[Sample], index: NgramIndex | None, removed=None) -> Iterator[Sample]:
    """Pass through samples that overlap no benchmark; ``removed(sample, (benchmark, ref, words))`` gets the rest."""
    for s in samples:
        hit = index.match(s.question) if index is not None and len(index) else None
        if hit is None:
            yield s
        else:
            s.meta["decontamination"] = {"benchmark": hit[0], "benchmark_id": hit[1], "ngram": hit[2]}
            if removed is not None:
                removed(s, hit)
