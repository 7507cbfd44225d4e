"""Gopher repetition filter (Rae et al. 2021, appendix A.1.1, table A1).

Repetitive documents (navigation repeated per item, spam, generated boilerplate) are removed when
any of these exceeds its threshold (the paper's defaults):

- duplicate lines: 30% of lines, 20% of line characters;
- duplicate paragraphs: 30% of paragraphs, 20% of paragraph characters;
- the most frequent 2-, 3-, 4-gram covers 20%, 18%, 16% of word characters;
- characters covered by repeated 5…10-grams: 15%, 14%, 13%, 12%, 11%, 10%.

"Duplicate" counts the second and later occurrences only (the first is the original). N-grams
are over ``alnum_words`` words, compared as written; characters are word characters, each
counted once even where repeated n-grams overlap. A most frequent n-gram that occurs only once is
not repetition and is ignored (matters only for very short documents).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import accumulate
from typing import Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kurate.tasks.filters.base import KEEP, LanguageFilter, Verdict, reject
from kurate.tasks.filters.text import Analysed, split_paragraphs


class GopherRepetitionSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_dup_line_frac: float = Field(0.30, ge=0, le=1, description="most duplicate lines, as a fraction of lines")
    max_dup_line_char_frac: float = Field(0.20, ge=0, le=1, description="most characters in duplicate lines")
    max_dup_para_frac: float = Field(0.30, ge=0, le=1, description="most duplicate paragraphs")
    max_dup_para_char_frac: float = Field(0.20, ge=0, le=1, description="most characters in duplicate paragraphs")
    max_top_ngram_char_frac: dict[int, float] = Field(
        {2: 0.20, 3: 0.18, 4: 0.16}, description="n → most word characters in the most frequent n-gram"
    )
    max_dup_ngram_char_frac: dict[int, float] = Field(
        {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n → most word characters covered by repeated n-grams",
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


@dataclass(frozen=True)
class RepeatedNgrams:
    """The n-grams of one length that occur at least twice, with where they start (in text order)."""

    n: int
    starts: list[tuple[int, tuple[str, ...]]]  # (word index, n-gram), only repeated n-grams
    counts: Counter[tuple[str, ...]]

    def top_chars(self) -> int:
        """Word characters in all occurrences of the most frequent n-gram (0 when none repeats)."""
        if not self.starts:
            return 0
        gram, count = self.counts.most_common(1)[0]
        return count * sum(map(len, gram))

    def duplicate_chars(self, prefix_chars: list[int]) -> int:
        """Word characters covered by second and later occurrences, each character counted once.

        ``prefix_chars[i]`` is the number of word characters before word i, so a span costs O(1).
        """
        seen: set[tuple[str, ...]] = set()
        covered_until = 0  # words before this index are already counted
        dup_chars = 0
        for i, gram in self.starts:
            if gram in seen:
                start = max(i, covered_until)
                dup_chars += prefix_chars[i + self.n] - prefix_chars[start]
                covered_until = i + self.n
            else:
                seen.add(gram)
        return dup_chars


def repeated_ngrams(words: tuple[str, ...]) -> Iterator[RepeatedNgrams]:
    """Repeated n-grams for n = 2, 3, … until none repeats.

    An n-gram can only occur twice where its first n-1 words do, so each length looks only at the
    positions that repeated at the length before: on prose the candidates shrink fast, and the
    work for n = 2…10 is a fraction of ten full passes.
    """
    unigram_counts = Counter(words)
    positions = [i for i, word in enumerate(words) if unigram_counts[word] > 1]
    n = 1
    while positions:
        n += 1
        grams = [(i, words[i : i + n]) for i in positions if i + n <= len(words)]
        counts = Counter(gram for _, gram in grams)
        starts = [(i, gram) for i, gram in grams if counts[gram] > 1]
        yield RepeatedNgrams(n, starts, counts)
        positions = [i for i, _ in starts]


def evaluate_gopher_repetition(doc: Analysed, s: GopherRepetitionSettings, language: str) -> Verdict:
    for unit, items in (("line", doc.lines), ("para", split_paragraphs(doc.text))):
        n_items, n_dup, n_chars, dup_chars = duplicates(items)
        max_frac = s.max_dup_line_frac if unit == "line" else s.max_dup_para_frac
        max_char_frac = s.max_dup_line_char_frac if unit == "line" else s.max_dup_para_char_frac
        if n_items and n_dup / n_items > max_frac:
            return reject(
                f"gopher_repetition:dup_{unit}_frac",
                n_dup / n_items,
                f"{n_dup} of {n_items} {unit}s are duplicates > {max_frac:.0%}",
            )
        if n_chars and dup_chars / n_chars > max_char_frac:
            return reject(
                f"gopher_repetition:dup_{unit}_char_frac",
                dup_chars / n_chars,
                f"{dup_chars / n_chars:.0%} of {unit} characters are in duplicates > {max_char_frac:.0%}",
            )

    words = doc.words
    prefix_chars = list(accumulate(map(len, words), initial=0))
    total_chars = prefix_chars[-1]
    longest = max(s.max_top_ngram_char_frac.keys() | s.max_dup_ngram_char_frac.keys(), default=0)
    if not total_chars or not longest:
        return KEEP
    for repeated in repeated_ngrams(words):
        n = repeated.n
        if n in s.max_top_ngram_char_frac:
            frac = repeated.top_chars() / total_chars
            if frac > s.max_top_ngram_char_frac[n]:
                return reject(
                    f"gopher_repetition:top_{n}gram_char_frac",
                    frac,
                    f"the most frequent {n}-gram covers {frac:.0%} of word characters "
                    f"> {s.max_top_ngram_char_frac[n]:.0%}",
                )
        if n in s.max_dup_ngram_char_frac:
            frac = repeated.duplicate_chars(prefix_chars) / total_chars
            if frac > s.max_dup_ngram_char_frac[n]:
                return reject(
                    f"gopher_repetition:dup_{n}gram_char_frac",
                    frac,
                    f"repeated {n}-grams cover {frac:.0%} of word characters > {s.max_dup_ngram_char_frac[n]:.0%}",
                )
        if n >= longest:
            break
    return KEEP


class GopherRepetitionFilter(LanguageFilter[GopherRepetitionSettings]):
    name = "gopher_repetition"
    settings_type = GopherRepetitionSettings
    statistics = ("dup_line_frac", "dup_line_char_frac", "dup_para_frac", "dup_para_char_frac")

    def statistics_for(self, settings: GopherRepetitionSettings) -> Iterable[str]:
        """The fixed statistics plus one per configured n-gram length."""
        yield from self.statistics
        yield from (f"top_{n}gram_char_frac" for n in settings.max_top_ngram_char_frac)
        yield from (f"dup_{n}gram_char_frac" for n in settings.max_dup_ngram_char_frac)

    def evaluate(self, doc: Analysed, settings: GopherRepetitionSettings, language: str) -> Verdict:
        return evaluate_gopher_repetition(doc, settings, language)
