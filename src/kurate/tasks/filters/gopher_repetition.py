"""Gopher repetition filter (Rae et al. 2021, appendix A.1.1, table A1).

Repetitive documents (navigation repeated per item, spam, generated boilerplate) are removed when
any of these exceeds its threshold (the paper's defaults):

- duplicate paragraphs: 30% of paragraphs, 20% of the text's characters;
- duplicate lines: 30% of lines, 20% of the text's characters;
- the most frequent 2-, 3-, 4-gram covers 20%, 18%, 16% of the text;
- characters covered by repeated 5…10-grams: 15%, 14%, 13%, 12%, 11%, 10%.

The statistics are datatrove's (FineWeb 2 tuned its thresholds on them), every fraction over the
length of the whole text:

- paragraphs are the stripped text split at runs of 2+ newlines, lines the text split at runs of
  newlines, both as written (not stripped); "duplicate" counts second and later occurrences;
- n-grams are over ``word_tokens`` (punctuation tokens included). The most frequent n-gram's
  characters are its tokens joined by single spaces, times its count (a count of 1 counts too).
  Repeated n-grams are found by one left-to-right scan: an n-gram seen before adds its characters
  (tokens joined without spaces) and the scan jumps past it; a new one is remembered and the scan
  moves one token on. (datatrove compares the joined strings, so ("ab", "c") equals ("a", "bc")
  there; here n-grams compare token by token — a rare difference.)

A fraction threshold of 1 switches its check off (a fraction never exceeds 1); FineWeb 2 switches
off the paragraph checks and the line-character check this way (filter_params.yaml).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kurate.tasks.filters.base import KEEP, LanguageFilter, Verdict, reject
from kurate.tasks.filters.text import Analysed

PARAGRAPH_SPLIT = re.compile(r"\n{2,}")
LINE_SPLIT = re.compile(r"\n+")


class GopherRepetitionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_dup_line_frac: float = Field(0.30, ge=0, le=1, description="most duplicate lines, as a fraction of lines")
    max_dup_line_char_frac: float = Field(0.20, ge=0, le=1, description="most text characters in duplicate lines")
    max_dup_para_frac: float = Field(0.30, ge=0, le=1, description="most duplicate paragraphs")
    max_dup_para_char_frac: float = Field(0.20, ge=0, le=1, description="most text characters in duplicate paragraphs")
    max_top_ngram_char_frac: dict[int, float] = Field(
        {2: 0.20, 3: 0.18, 4: 0.16}, description="n → most text characters in the most frequent n-gram"
    )
    max_dup_ngram_char_frac: dict[int, float] = Field(
        {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n → most text characters covered by repeated n-grams",
    )

    @field_validator("max_top_ngram_char_frac", "max_dup_ngram_char_frac")
    @classmethod
    def _valid_ngram_thresholds(cls, thresholds: dict[int, float]) -> dict[int, float]:
        for n, frac in thresholds.items():
            if n < 2 or not 0 <= frac <= 1:
                raise ValueError(f"n-gram threshold {n}: {frac} needs n >= 2 and 0 <= fraction <= 1")
        return thresholds


def duplicates(items: Iterable[str]) -> tuple[int, int, int, int]:
    """(items, duplicate items, characters, characters in duplicate items); first occurrences are originals."""
    seen: set[str] = set()
    n_items = n_dup = n_chars = dup_chars = 0
    for item in items:
        n_items += 1
        n_chars += len(item)
        if item in seen:
            n_dup += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return n_items, n_dup, n_chars, dup_chars


class RepeatedPositions:
    """n → (start positions of n-grams that occur at least twice, in text order; the counts of the
    n-grams starting at the previous length's positions), built lazily for n = 1, 2, ….

    An n-gram can only occur twice where its first n-1 tokens do, so each length looks only at the
    positions that repeated at the length before: on prose the candidates shrink fast, a page of
    distinct words costs one pass, and a page rejected at n = 2 never builds n = 10. An n-gram that
    occurs once never matches anything, so the statistics below need only these positions.
    """

    def __init__(self, tokens: tuple[str, ...]):
        self.tokens = tokens
        counts: Counter = Counter(tokens)
        self._by_n = {1: ([i for i, token in enumerate(tokens) if counts[token] > 1], counts)}

    def __getitem__(self, n: int) -> tuple[list[int], Counter]:
        tokens = self.tokens
        for m in range(len(self._by_n) + 1, n + 1):
            grams = [(i, tokens[i : i + m]) for i in self._by_n[m - 1][0] if i + m <= len(tokens)]
            counts = Counter(gram for _, gram in grams)
            self._by_n[m] = ([i for i, gram in grams if counts[gram] > 1], counts)
        return self._by_n[n]


def top_ngram_chars(tokens: tuple[str, ...], n: int, repeated: RepeatedPositions | None = None) -> int:
    """Characters of the most frequent n-gram (tokens joined by spaces) times its count; 0 without
    n-grams. With no repeated n-gram, datatrove's Counter gives the first n-gram (count 1)."""
    if len(tokens) < n:
        return 0
    positions, counts = (repeated or RepeatedPositions(tokens))[n]
    if positions:
        gram, count = counts.most_common(1)[0]  # ties: the first to occur, as in datatrove
    else:
        gram, count = tokens[:n], 1
    return (sum(map(len, gram)) + n - 1) * count


def duplicate_ngram_chars(tokens: tuple[str, ...], n: int, repeated: RepeatedPositions | None = None) -> int:
    """Characters (spaces not counted) covered by repeated n-grams, by datatrove's greedy scan.

    The scan visits only positions whose n-gram occurs twice or more: at any other position
    datatrove's scan remembers an n-gram that never comes back and moves one token on.
    """
    positions = (repeated or RepeatedPositions(tokens))[n][0]
    seen: set[tuple[str, ...]] = set()
    total = 0
    next_free = 0  # the scan has jumped past every position before this one
    for i in positions:
        if i < next_free:
            continue
        gram = tokens[i : i + n]
        if gram in seen:
            total += sum(map(len, gram))
            next_free = i + n
        else:
            seen.add(gram)
    return total


def evaluate_gopher_repetition(doc: Analysed, s: GopherRepetitionSettings, language: str) -> Verdict:
    text = doc.text
    if not text:
        return reject("gopher_repetition:empty", 0, "empty text")
    for unit, items in (("para", PARAGRAPH_SPLIT.split(text.strip())), ("line", LINE_SPLIT.split(text))):
        n_items, n_dup, _, dup_chars = duplicates(items)
        max_frac = s.max_dup_line_frac if unit == "line" else s.max_dup_para_frac
        max_char_frac = s.max_dup_line_char_frac if unit == "line" else s.max_dup_para_char_frac
        if n_dup / n_items > max_frac:
            return reject(
                f"gopher_repetition:dup_{unit}_frac",
                n_dup / n_items,
                f"{n_dup} of {n_items} {unit}s are duplicates > {max_frac:.0%}",
            )
        if dup_chars / len(text) > max_char_frac:
            return reject(
                f"gopher_repetition:dup_{unit}_char_frac",
                dup_chars / len(text),
                f"{dup_chars / len(text):.0%} of the text is in duplicate {unit}s > {max_char_frac:.0%}",
            )

    tokens = doc.tokens
    repeated = RepeatedPositions(tokens)
    for n, max_frac in sorted(s.max_top_ngram_char_frac.items()):
        frac = top_ngram_chars(tokens, n, repeated) / len(text)
        if frac > max_frac:
            return reject(
                f"gopher_repetition:top_{n}gram_char_frac",
                frac,
                f"the most frequent {n}-gram covers {frac:.0%} of the text > {max_frac:.0%}",
            )
    for n, max_frac in sorted(s.max_dup_ngram_char_frac.items()):
        frac = duplicate_ngram_chars(tokens, n, repeated) / len(text)
        if frac > max_frac:
            return reject(
                f"gopher_repetition:dup_{n}gram_char_frac",
                frac,
                f"repeated {n}-grams cover {frac:.0%} of the text > {max_frac:.0%}",
            )
    return KEEP


class GopherRepetitionFilter(LanguageFilter[GopherRepetitionSettings]):
    name = "gopher_repetition"
    settings_type = GopherRepetitionSettings
    statistics = ("empty", "dup_para_frac", "dup_para_char_frac", "dup_line_frac", "dup_line_char_frac")

    def statistics_for(self, settings: GopherRepetitionSettings) -> Iterable[str]:
        """The fixed statistics plus one per configured n-gram length."""
        yield from self.statistics
        yield from (f"top_{n}gram_char_frac" for n in settings.max_top_ngram_char_frac)
        yield from (f"dup_{n}gram_char_frac" for n in settings.max_dup_ngram_char_frac)

    def evaluate(self, doc: Analysed, settings: GopherRepetitionSettings, language: str) -> Verdict:
        return evaluate_gopher_repetition(doc, settings, language)
