"""Russian word-form matching for routing keywords.

A keyword matches a text when every word of the keyword appears in the text in some form:
both sides are case-folded (ё → е), split into letter/digit tokens and reduced to their
Snowball stems, so «ямы», «яму», «ямой» and «ЯМА» all match the keyword «яма».
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from functools import lru_cache

import snowballstemmer

MAX_KEYWORDS = 100
MAX_KEYWORD_LENGTH = 100

_TOKEN = re.compile(r"[^\W_]+")
_local = threading.local()


def _stemmer():
    # Snowball stemmers keep state between calls: one per thread.
    stemmer = getattr(_local, "stemmer", None)
    if stemmer is None:
        stemmer = _local.stemmer = snowballstemmer.stemmer("russian")
    return stemmer


@lru_cache(maxsize=65536)
def stem_word(token: str) -> str:
    """The stem of one normalized token."""
    return _stemmer().stemWord(token)


def normalize(text: str) -> list[str]:
    """Case-folded tokens of letters and digits, with ё read as е."""
    return _TOKEN.findall(text.casefold().replace("ё", "е"))


def stems(text: str) -> frozenset[str]:
    """The set of word stems in a text."""
    return frozenset(stem_word(token) for token in normalize(text))


class KeywordMatcher:
    """Compiled keywords: `matches(text)` returns the first keyword (as written) whose every
    word occurs in the text in some form, or None. Keywords without any letter or digit are
    ignored (they would otherwise match everything)."""

    __slots__ = ("_compiled", "keywords")

    def __init__(self, keywords: Iterable[str]):
        compiled: list[tuple[str, frozenset[str]]] = []
        for keyword in keywords:
            keyword_stems = stems(keyword[:MAX_KEYWORD_LENGTH])
            if keyword_stems:
                compiled.append((keyword, keyword_stems))
        self._compiled = tuple(compiled)
        self.keywords = tuple(k for k, _ in compiled)

    def __bool__(self) -> bool:
        return bool(self._compiled)

    def matches(self, text: str) -> str | None:
        return self.matches_stems(stems(text)) if self._compiled else None

    def matches_stems(self, text_stems: frozenset[str]) -> str | None:
        """As `matches`, for a text already reduced with `stems` (stem once, test many rules)."""
        for keyword, keyword_stems in self._compiled:
            if keyword_stems <= text_stems:
                return keyword
        return None
