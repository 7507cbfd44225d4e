"""Gopher quality filter (Rae et al. 2021, "Scaling Language Models", appendix A.1.1).

Does the document look like prose in its language? Defaults are the paper's values: 50–100,000
words, mean word length 3–10, at most 0.1 hash symbols and 0.1 ellipses per word, at most 90% of
lines starting with a bullet and 30% ending with an ellipsis, at least 80% of words containing a
letter, and at least 2 of the language's stop words. Checks run in that order; the first failure
decides.

Deviation from the paper: words come from ``alnum_words`` (letters/digits), not whitespace, so a
token made only of punctuation is not a word; "alpha words" therefore measures how much of the
text is numbers rather than how much is punctuation. A language without a stop-word list skips
the stop-word check (FineWeb 2 tunes lists per language; we ship lists for a few).
"""

from __future__ import annotations

import re
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field, field_validator

from kurate.tasks.filters.base import KEEP, LanguageFilter, Verdict, reject
from kurate.tasks.filters.text import Analysed

# Characters that open a bulleted list item.
BULLETS: tuple[str, ...] = (
    "-", "*", "•", "‣", "◦", "▪", "▫", "●", "○", "■", "□", "►", "▶", "➢", "→", "–", "—", "·", "⁃", "✓", "✔",
)  # fmt: skip
ELLIPSES: tuple[str, ...] = ("...", "…")
# Patterns over words joined by spaces (words never contain spaces). Possessive quantifiers and
# the word-start lookbehind keep both linear: no backtracking into a word.
LETTERLESS_WORD = re.compile(r"(?<!\S)(?:\d|[^\w\s])++(?!\S)")  # only digits, marks, joiners
ELIDED_WORD = re.compile(r"(?<!\S)[^\s']++'\S*")  # a word with an inner apostrophe


class GopherQualitySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_words: int = Field(50, ge=0, description="fewest words a document may have")
    max_words: int = Field(100_000, ge=0, description="most words a document may have")
    min_mean_word_length: float = Field(3, ge=0, description="shortest mean word length in characters")
    max_mean_word_length: float = Field(10, ge=0, description="longest mean word length in characters")
    max_hash_word_ratio: float = Field(0.1, ge=0, description="most '#' per word")
    max_ellipsis_word_ratio: float = Field(0.1, ge=0, description="most '...'/'…' per word")
    max_bullet_line_frac: float = Field(0.9, ge=0, le=1, description="most lines starting with a bullet")
    max_ellipsis_line_frac: float = Field(0.3, ge=0, le=1, description="most lines ending with an ellipsis")
    min_alpha_word_frac: float = Field(0.8, ge=0, le=1, description="fewest words containing a letter")
    min_stop_words: int = Field(2, ge=0, description="fewest stop-word occurrences")
    stop_words: frozenset[str] = Field(frozenset(), description="the language's stop words; empty skips the check")

    @field_validator("stop_words")
    @classmethod
    def _casefold(cls, words: frozenset[str]) -> frozenset[str]:
        return frozenset(w.casefold().replace("’", "'") for w in words)


def count_stop_words(words: tuple[str, ...], stop_words: frozenset[str]) -> int:
    """Occurrences of stop words; an elided article counts too ("l'homme" → "l'")."""
    # One casefold and one C-level count over the joined words instead of a Python call per word.
    folded = " ".join(words).casefold().replace("’", "'")
    counts = Counter(folded.split(" "))
    count = sum(counts[w] for w in stop_words)
    for word in ELIDED_WORD.findall(folded) if "'" in folded else ():
        if word not in stop_words and word[: word.index("'") + 1] in stop_words:
            count += 1
    return count


def count_alpha_words(words: tuple[str, ...]) -> int:
    """Words with at least one letter (counted as all words minus the rare letterless ones)."""
    return len(words) - len(LETTERLESS_WORD.findall(" ".join(words)))


def evaluate_gopher_quality(doc: Analysed, s: GopherQualitySettings, language: str) -> Verdict:
    n_words = doc.estimated_word_count
    if n_words < s.min_words:
        return reject("gopher_quality:too_few_words", n_words, f"{n_words} words < {s.min_words} required ({language})")
    if n_words > s.max_words:
        return reject("gopher_quality:too_many_words", n_words, f"{n_words} words > {s.max_words} allowed ({language})")

    words = doc.words
    if not words:  # only reachable with min_words = 0: nothing left to measure
        return KEEP
    mean_length = sum(map(len, words)) / len(words)
    if mean_length < s.min_mean_word_length:
        return reject(
            "gopher_quality:mean_word_length",
            mean_length,
            f"mean word length {mean_length:.2f} < {s.min_mean_word_length} ({language})",
        )
    if mean_length > s.max_mean_word_length:
        return reject(
            "gopher_quality:mean_word_length",
            mean_length,
            f"mean word length {mean_length:.2f} > {s.max_mean_word_length} ({language})",
        )

    hash_ratio = doc.text.count("#") / len(words)
    if hash_ratio > s.max_hash_word_ratio:
        return reject(
            "gopher_quality:hash_ratio", hash_ratio, f"{hash_ratio:.3f} '#' per word > {s.max_hash_word_ratio}"
        )
    ellipsis_ratio = sum(doc.text.count(e) for e in ELLIPSES) / len(words)
    if ellipsis_ratio > s.max_ellipsis_word_ratio:
        return reject(
            "gopher_quality:ellipsis_ratio",
            ellipsis_ratio,
            f"{ellipsis_ratio:.3f} ellipses per word > {s.max_ellipsis_word_ratio}",
        )

    lines = doc.lines
    if lines:
        bullet_frac = sum(line.startswith(BULLETS) for line in lines) / len(lines)
        if bullet_frac > s.max_bullet_line_frac:
            return reject(
                "gopher_quality:bullet_lines",
                bullet_frac,
                f"{bullet_frac:.0%} of lines start with a bullet > {s.max_bullet_line_frac:.0%}",
            )
        ellipsis_line_frac = sum(line.endswith(ELLIPSES) for line in lines) / len(lines)
        if ellipsis_line_frac > s.max_ellipsis_line_frac:
            return reject(
                "gopher_quality:ellipsis_lines",
                ellipsis_line_frac,
                f"{ellipsis_line_frac:.0%} of lines end with an ellipsis > {s.max_ellipsis_line_frac:.0%}",
            )

    alpha_frac = count_alpha_words(words) / len(words)
    if alpha_frac < s.min_alpha_word_frac:
        return reject(
            "gopher_quality:alpha_words",
            alpha_frac,
            f"{alpha_frac:.0%} of words contain a letter < {s.min_alpha_word_frac:.0%}",
        )

    if s.stop_words:
        n_stop = count_stop_words(words, s.stop_words)
        if n_stop < s.min_stop_words:
            return reject(
                "gopher_quality:stop_words", n_stop, f"{n_stop} stop words < {s.min_stop_words} required ({language})"
            )
    return KEEP


class GopherQualityFilter(LanguageFilter[GopherQualitySettings]):
    name = "gopher_quality"
    settings_type = GopherQualitySettings
    statistics = (
        "too_few_words", "too_many_words", "mean_word_length", "hash_ratio", "ellipsis_ratio",
        "bullet_lines", "ellipsis_lines", "alpha_words", "stop_words",
    )  # fmt: skip

    def evaluate(self, doc: Analysed, settings: GopherQualitySettings, language: str) -> Verdict:
        return evaluate_gopher_quality(doc, settings, language)
